"""Progress on standard error: drawn only on a terminal, only after a moment of work, and wiped at the end."""

from __future__ import annotations

import io

import pytest

from analyzer import progress


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_silent_when_not_a_terminal_or_quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress, "AFTER_S", 0.0)
    for stream, quiet in ((io.StringIO(), False), (Tty(), True)):
        progress.start("analyze x.pcap", quiet=quiet, stream=stream)
        progress.tick(1000)
        progress.stop()
        assert stream.getvalue() == ""


def test_a_terminal_sees_packets_and_rate_then_a_clean_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress, "AFTER_S", 0.0)
    monkeypatch.setattr(progress, "EVERY_S", 0.0)
    tty = Tty()
    progress.start("analyze x.pcap", stream=tty)
    progress.tick(123_456)
    progress.stop()
    out = tty.getvalue()
    assert out.startswith("\ranalyze x.pcap: 123,456 packets, ")
    assert out.endswith("\r\x1b[K")
    progress.tick(1)  # after stop: nothing, no error
    assert tty.getvalue() == out


def test_the_line_counts_the_chargers_seen_while_a_gateway_capture_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """A real capture with four chargers (the lab's gateway): the line ends with how many were seen so far."""
    from pathlib import Path

    from analyzer.engine import analyze

    monkeypatch.setattr(progress, "AFTER_S", 0.0)
    monkeypatch.setattr(progress, "EVERY_S", 0.0)
    tty = Tty()
    progress.start("analyze gateway_mixed.pcap", stream=tty)
    try:
        analyze(Path(__file__).resolve().parents[1] / "captures" / "gateway_mixed.pcap")
        progress.tick(80)
    finally:
        progress.stop()
    assert "80 packets" in tty.getvalue()
    assert ", 4 chargers seen\x1b[K" in tty.getvalue()
