// The fleet page's one script (allowed by its hash in the CSP): sort a table by a column (click a header button,
// again to reverse; numbers as numbers, empty last) and filter the table of every row by the text typed in its box.
(function () {
  "use strict";
  function key(row, col) {
    var cell = row.cells[col];
    return cell ? (cell.getAttribute("data-v") || cell.textContent.trim()) : "";
  }
  function empty(v) { return v === "" || v === "—"; }
  function sortable(table) {
    var body = table.tBodies[0];
    var buttons = table.querySelectorAll("thead button[data-col]");
    function sortBy(button) {
      var col = Number(button.getAttribute("data-col"));
      var numeric = button.getAttribute("data-type") === "num";
      var dir = button.getAttribute("aria-sort") === "ascending" ? -1 : 1;
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = key(a, col), y = key(b, col);
        if (empty(x)) { return empty(y) ? 0 : 1; }
        if (empty(y)) { return -1; }
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
  }
  document.querySelectorAll("table.sortable").forEach(sortable);
  document.querySelectorAll("input[data-filter]").forEach(function (box) {
    var table = document.getElementById(box.getAttribute("data-filter"));
    var count = document.getElementById(box.getAttribute("data-count"));
    if (!table) { return; }
    var rows = Array.prototype.slice.call(table.tBodies[0].rows);
    var texts = rows.map(function (r) { return r.textContent.toLowerCase(); });
    function apply() {
      var words = box.value.toLowerCase().split(/\s+/).filter(Boolean);
      var shown = 0;
      rows.forEach(function (r, i) {
        var hit = words.every(function (w) { return texts[i].indexOf(w) !== -1; });
        r.hidden = !hit;
        if (hit) { shown += 1; }
      });
      if (count) { count.textContent = shown === rows.length ? "" : shown + " of " + rows.length + " rows shown"; }
    }
    box.addEventListener("input", apply);
    box.hidden = false;
    apply();
  });
  document.documentElement.classList.add("js-sort");
})();
