// Sort the fleet table by a column: click a header button (again to reverse). Numbers sort as numbers, empty last.
(function () {
  "use strict";
  var table = document.getElementById("results");
  if (!table) { return; }
  var body = table.tBodies[0];
  var buttons = table.querySelectorAll("thead button[data-col]");
  function key(row, col) {
    var cell = row.cells[col];
    return cell ? (cell.getAttribute("data-v") || cell.textContent.trim()) : "";
  }
  function sortBy(button) {
    var col = Number(button.getAttribute("data-col"));
    var numeric = button.getAttribute("data-type") === "num";
    var dir = button.getAttribute("aria-sort") === "ascending" ? -1 : 1;
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a, col), y = key(b, col);
      if (x === "" || x === "—") { return (y === "" || y === "—") ? 0 : 1; }
      if (y === "" || y === "—") { return -1; }
      if (numeric) { return dir * (Number(x) - Number(y)); }
      return dir * (x < y ? -1 : x > y ? 1 : 0);
    });
    var frag = document.createDocumentFragment();
    rows.forEach(function (r) { frag.appendChild(r); });
    body.appendChild(frag);
    buttons.forEach(function (b) { b.parentNode.removeAttribute("aria-sort"); b.removeAttribute("aria-sort"); });
    button.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
    button.parentNode.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
  }
  buttons.forEach(function (b) { b.addEventListener("click", function () { sortBy(b); }); });
  document.documentElement.classList.add("js-sort");
})();
