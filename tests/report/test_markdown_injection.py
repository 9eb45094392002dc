"""Capture strings in the Markdown report are inert (``../shared/robustness/security/md``, ``md_injection_*``):
no link, image, autolink, HTML, entity, emphasis, mention or line break that the capture chose; and no escape
where Markdown would read nothing (``ocpp_boot.pcap``, ``127.0.0.1``, parentheses)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from analyzer.cli import cli
from analyzer.report.markdown import _esc
from tests.conftest import ROOT

ROBUSTNESS = ROOT.parent / "shared" / "robustness"
CAPTURES = sorted((ROBUSTNESS / "security" / "md").glob("*.pcap")) + sorted(ROBUSTNESS.glob("md_injection_*.pcap"))
UNESCAPED = re.compile(r"(?<!\\)(?:\\\\)*([\[\]<>!&*|~@#`]|://|www\.)")
# an underscore that could open or close emphasis: not between two letters or digits, and not escaped
LOOSE_UNDERSCORE = re.compile(r"(?<!\\)(?:\\\\)*(?:(?<![^\W_])_|_(?![^\W_]))")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("CP1\r# Injected heading via CR\r- [click me](https://evil.example)\r",
         r"CP1 \# Injected heading via CR - \[click me\](https\://evil.example) "),
        ("<img src=x onerror=alert(1)>", r"\<img src=x onerror=alert(1)\>"),
        ("&lt;b&gt;", r"\&lt;b\&gt;"),
        ("![x](http://e/i.png)", r"\!\[x\](http\://e/i.png)"),
        ("see www.evil.example", r"see www\.evil.example"),
        ("a\u2028b\u2029c\nd\x0be\x85f", "a b c d e f"),
        ("- item", r"\- item"),
        ("1. item", r"\1. item"),
        ("1)", r"\1)"),
        ("127.0.0.1", "127.0.0.1"),
        ("===", r"\==="),
        ("**b** ~~s~~ `c` a|b", r"\*\*b\*\* \~\~s\~\~ \`c\` a\|b"),
        ("ocpp_boot_callerror.pcap", "ocpp_boot_callerror.pcap"),
        ("_x_ __y__ a_ _b a__b", r"\_x\_ \_\_y\_\_ a\_ \_b a\_\_b"),
        ("@team #12 !3", r"\@team \#12 \!3"),
    ],
)  # fmt: skip
def test_escaping(text: str, expected: str) -> None:
    assert _esc(text) == expected


def _ours(line: str) -> str:
    """``line`` without the Markdown ghostcap itself writes (headings, bold, code spans, tables, lists)."""
    if line in ("| frame | evidence | Wireshark filter |", "|---|---|---|"):
        return ""
    line = re.sub(r"`(?:frame\.number == [0-9]+|(?:tcp|udp)\.stream eq [0-9]+)`", "", line)  # display filters
    ours = r"^(#{2,3} |- also: |- warning \(nothing broke\): |- charger reported |- warning: |\d+\. |- )"
    line = re.sub(ours, "", line)
    line = re.sub(r"\*\*[^*\\]+\*\*", "", line)  # ghostcap's own bold verdicts and header names
    line = re.sub(r"`[a-z0-9_.]+`", "", line)  # fault ids and the sha256 in code spans
    line = re.sub(r"\b[a-z0-9]+\.[a-z0-9_]+ at frame", "", line)  # fault ids in "also" lines
    return re.sub(r"^\| [0-9]+ \| | \|(?: +-? *\|)?$", "", line)


@pytest.mark.skipif(not CAPTURES, reason="../shared/robustness not present")
@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.name)
def test_every_capture_string_is_inert(capture: Path, tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["analyze", str(capture), "-o", str(tmp_path), "--format", "md"])
    assert res.exit_code in (0, 1, 4), res.output
    (md_file,) = tmp_path.glob("*.md")
    raw = md_file.read_bytes()
    for bad in (b"\r", "\u2028".encode(), "\u2029".encode(), b"\x0b", b"\x0c", "\x85".encode()):
        assert bad not in raw
    for line in raw.decode().splitlines():
        assert not line.startswith(("#", "-", "=", "<", ">", "+")) or line.startswith(("## ", "### ", "- ")), line
        found = UNESCAPED.findall(_ours(line)) + LOOSE_UNDERSCORE.findall(_ours(line))
        assert not found, (line, found)


@pytest.mark.skipif(not CAPTURES, reason="../shared/robustness not present")
def test_reported_codes_are_escaped(tmp_path: Path) -> None:
    cap = ROBUSTNESS / "md_injection_vendorerrorcode_html.pcap"
    CliRunner().invoke(cli, ["analyze", str(cap), "-o", str(tmp_path), "--format", "md"])
    md = (tmp_path / "md_injection_vendorerrorcode_html.md").read_text()
    assert (
        r"- charger reported \<img src=x onerror=alert(1)\>\<script\>alert(2)\</script\> at frame 10 "
        "(StatusNotification.vendorErrorCode)" in md
    )
