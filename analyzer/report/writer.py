"""``ghostcap analyze``'s work loop: analyse each capture, write its reports, compute the exit status.

The only module besides the CLI that writes files. One capture failing never stops the others.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from analyzer.config import Settings
from analyzer.errors import AnalyzerError
from analyzer.jsontext import dumps

EXIT_HEALTHY, EXIT_FAULT, EXIT_USAGE, EXIT_UNREADABLE, EXIT_INCONCLUSIVE = 0, 1, 2, 3, 4
SEVERITY = [EXIT_HEALTHY, EXIT_INCONCLUSIVE, EXIT_FAULT, EXIT_UNREADABLE]
SUFFIXES = (".gz", ".bz2", ".xz", ".zst", ".zstd", ".pcapng", ".pcap", ".cap", ".dmp")


def report_stem(capture: str) -> str:
    """``x/tcp_refused.pcap.gz`` → ``tcp_refused``; standard input → ``stdin``."""
    if capture == "-":
        return "stdin"
    name = Path(capture).name
    changed = True
    while changed:
        changed = False
        for suf in SUFFIXES:
            if name.lower().endswith(suf) and len(name) > len(suf):
                name, changed = name[: -len(suf)], True
    return name


def status_of(verdicts: list[str]) -> int:
    if "fault" in verdicts:
        return EXIT_FAULT
    if "inconclusive" in verdicts or not verdicts:
        return EXIT_INCONCLUSIVE
    return EXIT_HEALTHY


def run_analyze(
    captures: Sequence[str],
    out_dir: str,
    formats: list[str],
    csms: tuple[str, int | None] | None,
    show_tokens: bool,
    echo: Callable[[str], None],
    keylog_files: Sequence[str] = (),
) -> int:
    from analyzer.engine import analyze
    from analyzer.report.build import report_dict

    settings = Settings(csms=csms, show_tokens=show_tokens, keylog_files=tuple(keylog_files))
    worst = EXIT_HEALTHY
    used: set[str] = set()
    for cap in captures:
        try:
            analysis = analyze(cap, settings)
        except AnalyzerError as e:
            echo(f"error: {cap}: {e}")
            worst = max(worst, EXIT_UNREADABLE, key=SEVERITY.index)
            continue
        except OSError as e:
            echo(f"error: {cap}: {e.strerror or e}")
            worst = max(worst, EXIT_UNREADABLE, key=SEVERITY.index)
            continue
        report = report_dict(analysis)
        for w in report["capture"]["warnings"]:
            echo(f"warning: {cap}: {w}")
        status = status_of([c["verdict"] for c in report["chargers"]])
        worst = max(worst, status, key=SEVERITY.index)
        if out_dir == "-":
            sys.stdout.write(dumps(report, indent=2) + "\n")
            continue
        stem = _unique(report_stem(cap), used)
        written = write_reports(report, out_dir, stem, formats)
        echo(f"{cap}: {_headline(report)} → {', '.join(written)}")
    return worst


def render_report(report: dict, fmt: str) -> str:
    """One report (a ``build.report_dict`` result) as text in ``fmt``: ``json``, ``md`` or ``html``."""
    if fmt == "json":
        return dumps(report, indent=2) + "\n"
    if fmt == "md":
        from analyzer.report.markdown import report_markdown

        return report_markdown(report)
    from analyzer.report.html import report_html

    return report_html(report)


def write_reports(report: dict, out_dir: str | Path, stem: str, formats: Sequence[str]) -> list[str]:
    """Write ``out_dir/stem.<fmt>`` for each format, each atomically; the paths written, in order.

    What ``ghostcap analyze`` writes per capture; ``ghostcap triage`` writes through it too."""
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for fmt in formats:
        path = Path(out_dir) / f"{stem}.{fmt}"
        _write_atomic(path, render_report(report, fmt))
        written.append(str(path))
    return written


def _unique(stem: str, used: set[str]) -> str:
    name, n = stem, 1
    while name in used:
        n += 1
        name = f"{stem}-{n}"
    used.add(name)
    return name


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(_clean(text), encoding="utf-8")
    os.replace(tmp, path)


def _clean(text: str) -> str:
    """Lone surrogates from hostile capture strings cannot be written as UTF-8: replace them."""
    return text.encode("utf-8", "replace").decode("utf-8")


def _headline(report: dict) -> str:
    from analyzer.report.dispatch import cli_line

    return "; ".join(cli_line(c) for c in report["chargers"]) or "no charger found"
