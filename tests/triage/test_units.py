"""The small parts of triage: PATH expansion, sizes, key-log matching, the store's replace semantics, the
progress output on and off a terminal, the query table."""

from __future__ import annotations

import io
import sqlite3
import time
from pathlib import Path

import pytest

from analyzer import __version__
from analyzer.budgets import TRIAGE_COMMIT_CAPTURES
from analyzer.triage.command import format_table, keylog_names, keylogs_for, parse_size, shared_keylogs
from analyzer.triage.discover import DiscoverError, discover, is_capture_name
from analyzer.triage.progress import Progress
from analyzer.triage.store import CaptureMeta, Store, charger_rows, open_readonly


def test_capture_names() -> None:
    for good in ("a.pcap", "a.PCAPNG", "a.cap", "a.pcap.gz", "a.pcapng.zst", "a.pcap.xz", "a.pcap.bz2"):
        assert is_capture_name(good), good
    for bad in ("a.txt", "a.gz", "a.pcap.txt", "a.keys.txt", "pcap"):
        assert not is_capture_name(bad), bad


def test_discover_files_directories_and_globs(tmp_path: Path) -> None:
    (tmp_path / "d" / "sub").mkdir(parents=True)
    for rel in ("d/a.pcap", "d/sub/b.pcapng.gz", "d/notes.txt", "d/sub/c.keys.txt", "top.pcap", "odd.bin"):
        (tmp_path / rel).write_bytes(b"x")
    found = discover([str(tmp_path / "d"), str(tmp_path / "*.pcap"), str(tmp_path / "odd.bin")])
    assert [Path(f.path).relative_to(tmp_path).as_posix() for f in found] == [
        "d/a.pcap",
        "d/sub/b.pcapng.gz",
        "top.pcap",
        "odd.bin",  # named explicitly: the engine decides
    ]
    assert [f.name for f in found][:2] == ["d/a.pcap", "d/sub/b.pcapng.gz"]
    # the same file through two arguments counts once; ** recurses
    again = discover([str(tmp_path / "d" / "a.pcap"), str(tmp_path / "**" / "*.pcap*")])
    assert sorted(Path(f.path).name for f in again) == ["a.pcap", "b.pcapng.gz", "top.pcap"]
    with pytest.raises(DiscoverError, match="no such file"):
        discover([str(tmp_path / "missing.pcap")])
    with pytest.raises(DiscoverError, match="no capture matches"):
        discover([str(tmp_path / "*.pcapng")])


def test_sizes() -> None:
    assert parse_size("4GiB") == 4 << 30
    assert parse_size("512M") == 512 << 20
    assert parse_size("300mib") == 300 << 20
    assert parse_size("1.5k") == 1536
    assert parse_size("1000") == 1000
    assert parse_size("0") == 0
    with pytest.raises(ValueError, match="not a size"):
        parse_size("4 gallons")


def test_key_logs_by_capture_name_and_shared(tmp_path: Path) -> None:
    for n in ("tls_a.keys.txt", "tls_b.keylog", "sslkeylog.log", "other.txt", "readme.md"):
        (tmp_path / n).write_text("x")
    shared = shared_keylogs(tmp_path)
    assert shared == (str(tmp_path / "sslkeylog.log"),)
    assert keylogs_for(tmp_path, "tls_a", shared) == (str(tmp_path / "tls_a.keys.txt"), shared[0])
    assert keylogs_for(tmp_path, "tls_b", shared) == (str(tmp_path / "tls_b.keylog"), shared[0])
    assert keylogs_for(tmp_path, "plain", shared) == shared
    assert keylogs_for(None, "tls_a", shared) == ()
    assert shared_keylogs(None) == ()
    (tmp_path / "tls_c.keys").mkdir()  # a directory is no key log, listed or looked up
    names = keylog_names(tmp_path)
    assert "tls_c.keys" not in names
    assert "tls_a.keys.txt" in names
    for stem in ("tls_a", "tls_b", "tls_c", "plain", "other"):
        assert keylogs_for(tmp_path, stem, shared, names) == keylogs_for(tmp_path, stem, shared)
    assert keylog_names(None) == frozenset()


def test_charger_rows() -> None:
    report = {
        "chargers": [
            {"id": "CP-1", "address": "10.0.0.1", "verdict": "healthy", "root_cause": None},
            {
                "id": None,
                "address": "10.0.0.2",
                "verdict": "fault",
                "root_cause": {"fault": "tcp.refused", "cx_code": "CX013", "frame": 6, "time": "2026-01-01T00:00:00Z"},
            },
        ]
    }
    rows = charger_rows(report)
    assert rows[0] == {
        "charger_id": "CP-1",
        "charger_address": "10.0.0.1",
        "verdict": "healthy",
        "fault": None,
        "cx_code": None,
        "frame": None,
        "fault_time": None,
        "fix_side": None,
        "severity": None,
        "site_visit": 0,
        "connected_at_end": None,
        "stage": "none",
        "csms_endpoint": None,
        "signature": None,
        "signature_detail": None,
        "resolver": None,
        "fix": None,
    }
    assert (rows[1]["fault"], rows[1]["cx_code"], rows[1]["frame"]) == ("tcp.refused", "CX013", 6)
    assert charger_rows({"chargers": []}) == [{"verdict": "no_charger"}]


def test_store_commits_in_batches_and_on_close(tmp_path: Path) -> None:
    store = Store(tmp_path / "t.db")

    def durable() -> int:
        ro = open_readonly(tmp_path / "t.db")
        try:
            return ro.execute("SELECT count(*) FROM results").fetchone()[0]
        finally:
            ro.close()

    store._committed_at = time.monotonic() + 3600  # the clock never reaches TRIAGE_COMMIT_S in this test
    for i in range(TRIAGE_COMMIT_CAPTURES - 1):
        store.put(CaptureMeta(f"{i}.pcap", f"/x/{i}.pcap", f"{i:064x}"), [{"verdict": "healthy"}])
    assert len(store.rows()) == TRIAGE_COMMIT_CAPTURES - 1  # the supervisor sees its own rows at once
    assert durable() == 0
    store.put(CaptureMeta("last.pcap", "/x/last.pcap", "f" * 64), [{"verdict": "healthy"}])
    assert durable() == TRIAGE_COMMIT_CAPTURES
    store.put(CaptureMeta("after.pcap", "/x/after.pcap", "e" * 64), [{"verdict": "healthy"}])
    assert durable() == TRIAGE_COMMIT_CAPTURES
    store.close()
    assert durable() == TRIAGE_COMMIT_CAPTURES + 1


def test_a_stored_row_holds_each_column_given_and_null_for_the_rest(tmp_path: Path) -> None:
    """``put`` inserts by column name: the capture's fields, the row's own (which win), the charger key, and NULL
    for every other column."""
    from analyzer.triage.store import EXPORTED

    store = Store(tmp_path / "t.db")
    meta = CaptureMeta("s/a.pcap", "/x/s/a.pcap", "ab" * 32, first="2026-01-01T00:00:00Z", analysis_s=0.5)
    given = {"verdict": "fault", "fault": "tcp.reset", "cx_code": "CX013", "frame": 7, "charger_address": "10.0.0.9"}
    store.put(meta, [given, {"verdict": "healthy", "charger_id": "CP-1", "site": "own"}])
    first, second = store.rows()
    store.close()
    expected = {n: None for n in EXPORTED} | given
    expected |= {"capture": "s/a.pcap", "path": "/x/s/a.pcap", "sha256": "ab" * 32, "site": "s"}
    expected |= {"capture_first": "2026-01-01T00:00:00Z", "analysis_s": 0.5, "ghostcap_version": __version__}
    expected["charger_key"] = f"addr:10.0.0.9@{'ab' * 32}"
    assert first.pop("analysed_at").endswith("Z")
    assert first.pop("id") == 1
    del expected["analysed_at"]
    assert first == expected
    assert (second["charger_key"], second["site"], second["fault"]) == ("id:CP-1", "own", None)


def test_store_replaces_a_captures_rows_and_opens_read_only(tmp_path: Path) -> None:
    store = Store(tmp_path / "t.db")
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    a = CaptureMeta("a.pcap", "/x/a.pcap", "aa" * 32)
    store.put(a, [{"verdict": "healthy", "charger_id": "CP-1"}, {"verdict": "fault", "fault": "tcp.reset"}])
    store.put(CaptureMeta("u.pcap", "/x/u.pcap", None), error="Permission denied")
    assert store.known_sha256() == {"aa" * 32}
    store.put(a, error="timed out")
    store.put(CaptureMeta("u.pcap", "/x/u.pcap", None), error="Permission denied again")
    rows = store.rows()
    assert [(r["capture"], r["verdict"], r["error"]) for r in rows] == [
        ("a.pcap", "error", "timed out"),
        ("u.pcap", "error", "Permission denied again"),
    ]
    store.close()
    ro = open_readonly(tmp_path / "t.db")
    assert ro.execute("SELECT count(*) FROM results").fetchone()[0] == 2
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        ro.execute("DELETE FROM results")
    ro.close()


def test_progress_off_a_terminal_is_one_line_per_capture() -> None:
    buf = io.StringIO()
    p = Progress(2, stream=buf, tty=False)
    p.step("a.pcap: CP-1 healthy")
    p.step("b.pcap: error: boom", failed=True)
    p.close()
    assert buf.getvalue().splitlines() == ["[1/2] a.pcap: CP-1 healthy", "[2/2] b.pcap: error: boom"]
    assert p.failed == 1


def test_progress_on_a_terminal_is_a_redrawn_bar() -> None:
    buf = io.StringIO()
    p = Progress(3, stream=buf, tty=True)
    for i in range(3):
        p.step(f"c{i}.pcap", failed=i == 1)
    p.note("warning: something")
    p.close()
    out = buf.getvalue()
    assert "\n[" not in out.split("warning: something")[0]  # no log lines, only redraws
    last = out.rstrip("\n").split("\r")[-1]
    assert "] 3/3 " in last
    assert "/s ETA 0:00:00 failures 1" in last
    assert "warning: something\n" in out


def test_query_table_format() -> None:
    text = format_table(["a", "bb"], [(1, None), ("long value", "x\ny")])
    assert text.splitlines() == ["a           bb", "----------  ---", "1", "long value  x y", "(2 rows)"]


def test_a_workers_peak_rss_is_its_own_not_the_supervisors_it_was_spawned_from() -> None:
    """A process that grew to 300 MB then exec's a fresh Python (as a spawned worker starts): the new program's
    ``peak_rss_kb`` is its own few MB, though Linux carries ``ru_maxrss`` over ``execve``."""
    import subprocess
    import sys

    child = (
        "import resource; from analyzer.triage.worker import peak_rss_kb; "
        "print(peak_rss_kb(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    parent = f"import os, sys; hog = bytearray(300 << 20); os.execv(sys.executable, [sys.executable, '-c', {child!r}])"
    done = subprocess.run([sys.executable, "-c", parent], capture_output=True, text=True, timeout=60, check=True)
    own, carried = (int(x) for x in done.stdout.split())
    assert 5_000 < own < 150_000
    assert carried >= own


def _discover_by_os_walk(args: list[str]) -> list[tuple[str, str]]:
    """The reference: ``discover`` for directory arguments as it was written first, with ``os.walk``, ``Path`` and a
    ``realpath`` per file."""
    import os

    from analyzer.triage.discover import is_capture_name

    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for arg in args:
        p = Path(arg)
        for dirpath, dirnames, filenames in os.walk(p, followlinks=False):
            dirnames.sort()
            for name in sorted(filenames):
                if not is_capture_name(name):
                    continue
                f = Path(dirpath) / name
                real = os.path.realpath(f)
                if real not in seen:
                    seen.add(real)
                    shown = str(Path(p.name or arg) / f.relative_to(p)) if p.name else str(f.relative_to(p))
                    out.append((os.path.abspath(f), shown))
    return out


def test_discover_walks_directories_as_os_walk_did(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tree = tmp_path / "fleet"
    for rel in ("b/2.pcap", "b/1.pcapng", "a/z/9.cap", "a/3.pcap.zst", "0.pcap", "notes.txt", "c d/ü.pcap"):
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_bytes(b"x")
    (tree / "link-to-b").symlink_to(tree / "b")  # a link to a directory: not followed
    (tree / "a" / "same.pcap").symlink_to(tree / "0.pcap")  # a link to a file found already: once
    (tree / "dangling.pcap").symlink_to(tree / "gone.pcap")
    (tmp_path / "outside.pcap").write_bytes(b"x")
    (tree / "b" / "out.pcap").symlink_to(tmp_path / "outside.pcap")
    monkeypatch.chdir(tmp_path)
    for args in (
        [str(tree)],
        ["fleet"],
        ["fleet/"],
        ["./fleet//a", "fleet"],
        ["fleet/link-to-b", "fleet/b"],
        ["."],
    ):
        got = [(f.path, f.name) for f in discover(args)]
        assert got == _discover_by_os_walk(args), args
    monkeypatch.chdir(tree / "a")
    assert [(f.path, f.name) for f in discover([".."])] == _discover_by_os_walk([".."])


@pytest.mark.parametrize(
    "capture",
    [
        "cp.pcap",
        "site-03/cp.pcap",
        "a/b/c.pcapng.gz",
        "/abs/dir/x.pcap",
        "/x.pcap",
        "//x.pcap",
        "//srv/share/x.pcap",
        "a//b/./c/x.pcap",
        "./x.pcap",
        "../up/x.pcap",
        "a/../b/x.pcap",
        "win\\site\\x.pcap",
        "ünï/çødé/x.pcap",
        "a/..",
        "a/b/..x",
    ],
)
def test_site_of_is_the_parent_directory_taken_once_per_directory(capture: str) -> None:
    """``site_of`` caches by directory; each answer is the parent of the whole name, as ``PurePosixPath`` gives
    it (``None`` at the top)."""
    from pathlib import PurePosixPath

    from analyzer.triage.store import site_of

    parent = str(PurePosixPath(capture.replace("\\", "/")).parent)
    assert site_of(capture) == (None if parent in (".", "/", "") else parent)
    assert site_of(capture) == site_of(capture)
