"""``ghostcap analyze``'s work loop: analyse each capture, write its reports, compute the exit status.

The only module besides the CLI that writes files. One capture failing (unreadable, or an internal error) never stops
the others; an output directory that cannot be written stops them all (exit status 2).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING

from analyzer import progress
from analyzer.budgets import WRITE_CHUNK
from analyzer.config import Settings
from analyzer.cores import AUTO, auto_workers
from analyzer.errors import EXIT_INTERNAL, EXIT_USAGE, AnalyzerError, OutputError, debugging, internal_error_line
from analyzer.exiting import hold, holding
from analyzer.jsontext import NotPlain, dumps, indented_parts
from analyzer.meanwhile import Meanwhile
from analyzer.report.dispatch import capture_lines

if TYPE_CHECKING:
    from analyzer.engine import Analysis

if TYPE_CHECKING:
    from analyzer.engine import Analysis

EXIT_HEALTHY, EXIT_FAULT, EXIT_UNREADABLE, EXIT_INCONCLUSIVE = 0, 1, 3, 4
SEVERITY = [EXIT_HEALTHY, EXIT_INCONCLUSIVE, EXIT_FAULT, EXIT_USAGE, EXIT_UNREADABLE, EXIT_INTERNAL]  # least to most
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
    quiet: bool = False,
    verify: bool = False,
    line: Callable[[str], None] | None = None,
    chargers: Sequence[str] = (),
    annotate: str | None = None,
    workers: int = 1,
) -> int:
    """Analyse each capture (``workers`` processes each: ``engine.analyze``; ``cores.AUTO``: as many as
    ``cores.auto_workers`` gives each) and write its reports; the exit
    status. ``echo`` takes the messages (errors, warnings, the files written); ``line`` the per-charger lines
    (``CAPTURE: CHARGER VERDICT ...``), ``echo`` too when not given.

    With ``chargers`` (``--charger``), each report keeps only the chargers named: one capture must have every
    one (else a usage error naming its chargers); of several captures, one without any is skipped with a line
    naming its chargers, and a value that names no charger in any capture is a usage error. With ``annotate``
    (one capture), the capture is written back there as pcapng with the report's findings as packet comments."""
    from analyzer.engine import collector_thresholds

    say_line = line or echo
    settings = Settings(csms=csms, show_tokens=show_tokens, keylog_files=tuple(keylog_files))
    worst = EXIT_HEALTHY
    used: set[str] = set()
    verifier = _verifier(echo) if verify else None
    pick = _Pick(chargers, single=len(captures) == 1) if chargers else None
    try:
        if out_dir != "-":
            prepare_out_dir(out_dir)
        for i, cap in enumerate(captures):
            progress.start(f"analyze {cap}", quiet=quiet)
            try:
                # its reports too: they walk the timeline the reading made; the last capture's analysis is held
                with collector_thresholds(), holding(i == len(captures) - 1):
                    status = _analyze_one(
                        cap, settings, out_dir, formats, used, echo, say_line, verifier, pick, annotate, workers
                    )
            finally:
                progress.stop()
            worst = max(worst, status, key=SEVERITY.index)
    except OutputError as e:
        echo(f"error: {e}")
        return EXIT_USAGE
    if pick is not None and not pick.single and pick.nowhere():
        echo(f"error: no charger {', '.join(pick.nowhere())} in any of the {len(captures)} captures")
        worst = max(worst, EXIT_USAGE, key=SEVERITY.index)
    return worst


class _Pick:
    """``--charger`` across the captures of one run: which values named a charger somewhere."""

    def __init__(self, wanted: Sequence[str], single: bool) -> None:
        self.wanted = list(dict.fromkeys(wanted))
        self.single = single
        self.found: set[str] = set()

    def nowhere(self) -> list[str]:
        return [v for v in self.wanted if v not in self.found]

    def apply(self, analysis: Analysis, cap: str, echo: Callable[[str], None]) -> int | None:
        """Keep the chargers named in ``analysis``; a status when the capture gets no report."""
        from analyzer.diagnosis.pick import pick, unknown_line

        every = [r.charger for r in analysis.results]
        chosen, unknown = pick(every, self.wanted)
        self.found.update(v for v in self.wanted if v not in unknown)
        if self.single and unknown:
            echo("error: " + unknown_line(cap, unknown, every))
            return EXIT_USAGE
        if not chosen:
            echo(unknown_line(cap, unknown, every) + ": skipped")
            return EXIT_HEALTHY
        keep = {id(c) for c in chosen}
        analysis.results = [r for r in analysis.results if id(r.charger) in keep]
        return None


def _analyze_one(
    cap: str,
    settings: Settings,
    out_dir: str,
    formats: list[str],
    used: set[str],
    echo: Callable[[str], None],
    line: Callable[[str], None],
    verifier: Verifier | None = None,
    pick: _Pick | None = None,
    annotate: str | None = None,
    workers: int = 1,
) -> int:
    """Analyse one capture and write its reports; its exit status. An exception that is not an ``AnalyzerError``
    or ``OSError`` is a bug: one line (``internal_error_line``), status ``EXIT_INTERNAL``, and the formats that
    could still be rendered are written."""
    from analyzer.engine import analyze
    from analyzer.report.build import report_dict

    if workers == AUTO:
        workers = auto_workers(cap)
    try:
        analysis = analyze(cap, settings, salvage=True, workers=workers)
    except AnalyzerError as e:
        echo(f"error: {located(cap, str(e))}")
        return EXIT_UNREADABLE
    except OSError as e:
        echo(f"error: {located(cap, e.strerror or str(e))}")
        return EXIT_UNREADABLE
    except Exception as e:  # noqa: BLE001 - a bug: say so in one line and go on with the next capture
        return _internal(e, cap, echo)
    if pick is not None and analysis.internal_error is None:
        skipped = pick.apply(analysis, cap, echo)
        if skipped is not None:
            return skipped
    try:
        report = report_dict(analysis)
    except Exception as e:  # noqa: BLE001
        return _internal(e, cap, echo)
    hold(analysis, report)
    verify_failed = None
    if verifier is not None:
        try:
            verifier(report, analysis, cap)
        except Exception as e:  # noqa: BLE001 - the report is still written, without the second opinion
            verify_failed = _internal(e, f"{cap} (--verify)", echo)
    for w in report["capture"]["warnings"]:
        echo(f"warning: {cap}: {w}")
    status = status_of([c["verdict"] for c in report["chargers"]])
    if report["capture"]["packets"] == 0 and report["capture"]["warnings"]:
        status = EXIT_UNREADABLE  # damaged before its first packet: nothing could be read (the report says why)
    if analysis.internal_error is not None:  # the report of what was read is still written, with the warning
        status = _internal(analysis.internal_error, cap, echo)
    if verify_failed is not None:
        status = verify_failed
    for text in capture_lines(report):
        line(f"{cap}: {text}")
    if annotate is not None:
        _annotate(cap, report, annotate, echo)
    if out_dir == "-":
        try:
            text = dumps(report, indent=2) + "\n"
        except Exception as e:  # noqa: BLE001
            return _internal(e, cap, echo)
        sys.stdout.write(text)
        return status
    stem = _unique(report_stem(cap), used)
    written: dict[str, str] = {}
    html = None
    if workers > 1 and len(formats) > 1 and "html" in formats:  # the HTML page meanwhile, on another core
        html = Meanwhile(lambda: write_report_text(render_report(report, "html"), out_dir, stem, "html"))
    with html or contextlib.nullcontext():  # another format cannot be written: its process is not left running
        for fmt in formats:
            if fmt == "html" and html is not None:
                continue
            status = _write_one(report, fmt, out_dir, stem, cap, echo, written, status)
        path = html.result() if html is not None else None
    if html is not None:
        if path is None:  # its process failed: written here, an error met the way it would have been
            status = _write_one(report, "html", out_dir, stem, cap, echo, written, status)
        else:
            written["html"] = path
    paths = [written[fmt] for fmt in formats if fmt in written]
    echo(f"{cap}: wrote {', '.join(paths)}" if paths else f"{cap}: no report written")
    return status


def _write_one(
    report: dict, fmt: str, out_dir: str, stem: str, cap: str, echo: Callable[[str], None], written: dict, status: int
) -> int:
    """Render and write one format of ``report`` (its path into ``written``); the capture's status, ``status`` or
    the internal error's when it cannot be rendered (``OutputError`` when it cannot be written)."""
    if fmt == "json":
        try:
            written[fmt] = write_json_report(report, out_dir, stem)
        except OutputError:
            raise
        except Exception as e:  # noqa: BLE001 - the other formats are still written
            return _internal(e, f"{cap} ({fmt} report)", echo)
        return status
    try:
        text = render_report(report, fmt)
    except Exception as e:  # noqa: BLE001 - the other formats are still written
        return _internal(e, f"{cap} ({fmt} report)", echo)
    written[fmt] = write_report_text(text, out_dir, stem, fmt)
    return status


def write_json_report(report: dict, out_dir: str | Path, stem: str) -> str:
    """``render_report(report, "json")`` written to ``out_dir/stem.json`` atomically as it is made, a piece at a
    time (``jsontext.indented_parts``): the text is never held whole; its path. A value the pieces cannot write
    (``NotPlain``) has the whole text written instead. ``OutputError`` when it cannot be written."""
    path = Path(out_dir) / f"{stem}.json"
    try:
        try:
            _write_atomic_parts(path, chain(indented_parts(report), ("\n",)))
        except (NotPlain, RecursionError):
            _write_atomic(path, render_report(report, "json"))
    except OSError as e:
        raise OutputError(f"cannot write {path}: {e.strerror or e}") from None
    return str(path)


Verifier = Callable[[dict, "Analysis", str], None]


def _verifier(echo: Callable[[str], None]) -> Verifier:
    """What ``--verify`` does to each report: tshark's second opinion per charger (``analyzer.verify``), or, when
    tshark (or pyshark) cannot be used, one line saying so now and a report saying verification was not done."""
    from analyzer.verify.run import not_done, verify_analysis
    from analyzer.verify.tshark import VerifyUnavailable, find_tshark

    try:
        tshark = find_tshark()
    except VerifyUnavailable as e:
        echo(f"--verify: {e}; the reports say verification was not done")
        note = str(e)

        def unavailable(report: dict, analysis: Analysis, cap: str) -> None:
            for c in report["chargers"]:
                c["verification"] = not_done(note)

        return unavailable

    def verify(report: dict, analysis: Analysis, cap: str) -> None:
        results = verify_analysis(analysis, cap, tshark, analysis.settings.keylog_files)
        for c, v in zip(report["chargers"], results, strict=True):
            c["verification"] = v
        echo(f"{cap}: --verify: {_verify_line(results, tshark.title)}")

    return verify


def _verify_line(results: list[dict], tool: str) -> str:
    checks = [c for v in results for c in v["checks"]]
    failed = {v["note"] for v in results if not v["done"]}
    if failed:
        return f"not done: {'; '.join(sorted(failed))}"
    bad = [c for c in checks if not c["agree"]]
    if not checks:
        return f"nothing to check ({tool}): no root cause"
    if not bad:
        return f"{tool} agrees on all {len(checks)} checks" if len(checks) > 1 else f"{tool} agrees on the one check"
    first = bad[0]
    return (
        f"{tool} disagrees on {len(bad)} of {len(checks)} checks (frame {first['frame']} {first['field']}: "
        f"ghostcap {first['ghostcap']}, tshark {first['tshark'] if first['tshark'] is not None else 'nothing'})"
    )


def located(capture: str, message: str) -> str:
    """``CAPTURE: message``, the capture named once: a reader's message already starts with the path or the file
    name (``x.pcap: cannot open: ...``), which is replaced by the path as given."""
    names = {capture, Path(capture).name} if capture != "-" else {"-", "standard input"}
    for name in sorted(names, key=len, reverse=True):
        if message.startswith(f"{name}: "):
            message = message[len(name) + 2 :]
            break
    return f"{'standard input' if capture == '-' else capture}: {message}"


def _annotate(cap: str, report: dict, out: str, echo: Callable[[str], None]) -> None:
    """``--annotate``: the capture back as pcapng with the findings as packet comments (``OutputError`` when it
    cannot be written: the run stops with exit status 2, as for ``-o``)."""
    from analyzer.report.annotate import write_annotated

    done = write_annotated(cap, report, out)
    for w in done.warnings:
        echo(f"warning: {cap}: --annotate: {w}")
    echo(f"{cap}: annotated capture → {done.path} ({done.commented} of {done.packets} frames commented)")


def _internal(exc: BaseException, where: str, echo: Callable[[str], None]) -> int:
    if debugging():
        raise exc
    echo(internal_error_line(exc, where))
    return EXIT_INTERNAL


def prepare_out_dir(out_dir: str | Path) -> None:
    """Create ``out_dir`` if needed; ``OutputError`` (one sentence) when it is a file or cannot be written to."""
    path = Path(out_dir)
    if path.exists() and not path.is_dir():
        raise OutputError(f"-o {out_dir}: is a file, not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"-o {out_dir}: cannot create the directory: {e.strerror or e}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise OutputError(f"-o {out_dir}: cannot write there: permission denied")


def write_report_text(text: str, out_dir: str | Path, stem: str, fmt: str) -> str:
    """Write ``out_dir/stem.<fmt>`` atomically; its path. ``OutputError`` when it cannot be written."""
    path = Path(out_dir) / f"{stem}.{fmt}"
    try:
        _write_atomic(path, text)
    except OSError as e:
        raise OutputError(f"cannot write {path}: {e.strerror or e}") from None
    return str(path)


def write_file(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (``ghostcap export -o``), making its directory if needed;
    ``OutputError`` (one sentence) when it cannot be written there."""
    p = Path(path)
    if p.is_dir():
        raise OutputError(f"-o {path}: is a directory, not a file")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        _write_atomic(p, text)
    except OSError as e:
        raise OutputError(f"cannot write {path}: {e.strerror or e}") from None


def render_report(report: dict, fmt: str, compact: bool = False) -> str:
    """One report (a ``build.report_dict`` result) as text in ``fmt``: ``json``, ``md`` or ``html``; ``compact``
    JSON is one line (``ghostcap triage``: thousands of reports for scripts, and Python's encoder is three times as
    fast without indentation), else indented for a person."""
    if fmt == "json":
        if compact:
            return dumps(report, separators=(",", ":"), tree=True) + "\n"
        return dumps(report, indent=2) + "\n"
    if fmt == "md":
        from analyzer.report.markdown import report_markdown

        return report_markdown(report)
    from analyzer.report.html import report_html

    return report_html(report)


def write_reports(
    report: dict, out_dir: str | Path, stem: str, formats: Sequence[str], compact: bool = False
) -> list[str]:
    """Write ``out_dir/stem.<fmt>`` for each format, each atomically; the paths written, in order.

    What ``ghostcap analyze`` writes per capture; ``ghostcap triage`` writes through it too (``compact`` JSON)."""
    os.makedirs(out_dir, exist_ok=True)
    return write_texts(report_files(report, out_dir, stem, formats, compact))


def write_texts(files: Sequence[tuple[str, str]]) -> list[str]:
    """Write each ``(path, text)`` atomically (``_write_atomic``); the paths written, in order."""
    for path, text in files:
        _write_atomic(path, text)
    return [path for path, _ in files]


def report_files(
    report: dict, out_dir: str | Path, stem: str, formats: Sequence[str], compact: bool = False
) -> list[tuple[str, str]]:
    """``(out_dir/stem.<fmt>, its text)`` for each format: what ``write_reports`` writes."""
    return [(str(Path(out_dir) / f"{stem}.{fmt}"), render_report(report, fmt, compact)) for fmt in formats]


def _unique(stem: str, used: set[str]) -> str:
    name, n = stem, 1
    while name in used:
        n += 1
        name = f"{stem}-{n}"
    used.add(name)
    return name


def _write_atomic(path: Path | str, text: str) -> None:
    """Write ``text`` as UTF-8 (encoded once) to a temporary file beside ``path``, then move it there. With
    ``os.open`` and ``os.write``, not a Python file object: ``ghostcap triage`` writes two files per capture, and
    the buffered file object was about a third of the cost of writing them."""
    _write_atomic_parts(path, (text,))


def _write_atomic_parts(path: Path | str, parts: Iterable[str]) -> None:
    """``_write_atomic`` of the text the ``parts`` make, encoded and written ``WRITE_CHUNK`` characters or so at a
    time; an exception from ``parts`` is raised, and leaves ``path`` as it was and no temporary file."""
    path = os.fspath(path)
    head, name = os.path.split(path)
    tmp = os.path.join(head, f".{name}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        try:
            held: list[str] = []
            size = 0
            for part in parts:
                held.append(part)
                size += len(part)
                if size >= WRITE_CHUNK:
                    _write_all(fd, "".join(held).encode("utf-8", "replace"))
                    held, size = [], 0
            if held:
                _write_all(fd, "".join(held).encode("utf-8", "replace"))
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _write_all(fd: int, data: bytes) -> None:
    """Every byte of ``data`` to ``fd`` (``os.write`` may take fewer)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _clean(text: str) -> str:
    """Lone surrogates from hostile capture strings cannot be written as UTF-8: replace them."""
    return text.encode("utf-8", "replace").decode("utf-8")
