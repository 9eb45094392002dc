"""``_write_atomic``: the text's UTF-8 bytes (a lone surrogate from a hostile capture as ``?``, as ``_clean`` makes
it), written beside the target and moved there, nothing left behind when it fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from analyzer.report.writer import _clean, _write_atomic


@pytest.mark.parametrize("text", ["", "plain\n", "CP-\u00e9\u2192\u4e2d\U0001f50c\r\n", "lone \ud800 and \udfff end"])
def test_bytes_written_are_the_clean_text(tmp_path: Path, text: str) -> None:
    path = tmp_path / "r.html"
    _write_atomic(path, text)
    assert path.read_bytes() == _clean(text).encode("utf-8")
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"]


def test_an_existing_report_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text("old, and longer than the new text")
    _write_atomic(path, "new")
    assert path.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_a_failed_write_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "r.html"
    target.mkdir()  # cannot be replaced by a file
    with pytest.raises(IsADirectoryError):
        _write_atomic(target, "text")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]


def test_every_byte_is_written_when_the_system_takes_a_few_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    real = os.write
    calls = []

    def some(fd: int, data: bytes) -> int:
        calls.append(len(data))
        return real(fd, bytes(data[:3]))

    monkeypatch.setattr(os, "write", some)
    path = tmp_path / "r.json"
    _write_atomic(str(path), "0123456789\u00e9")
    assert path.read_bytes() == "0123456789\u00e9".encode()
    assert calls == [12, 9, 6, 3]


def test_a_write_that_fails_midway_leaves_the_old_report_and_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    path = tmp_path / "r.json"
    path.write_text("old")

    def full(fd: int, data: bytes) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(OSError, match="No space"):
        _write_atomic(path, "new")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]
