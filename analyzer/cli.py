"""The ``ghostcap`` command line: thin commands over the library; errors become one-line messages."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any, NoReturn

import click

from analyzer import __version__
from analyzer.capture import compiled
from analyzer.engine import FlowsResult, rebuild_flows, tls_status
from analyzer.errors import EXIT_INTERNAL, EXIT_USAGE, AnalyzerError, debugging, internal_error_line
from analyzer.exiting import exit_now, leaving

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from analyzer.engine import TimelineResult
    from analyzer.report.charger_view import ChargerView

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"]}


def _check_keylogs(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    """A key log must be a regular file of bounded size (``keylog.MAX_KEYLOG_BYTES``): a usage error otherwise,
    before anything reads it (``/dev/zero`` never ends, a FIFO blocks)."""
    from analyzer.tls.keylog import keylog_file_problem

    for path in value:
        problem = keylog_file_problem(path)
        if problem:
            raise click.BadParameter(problem, ctx=ctx, param=param)
    return value


KEYLOG_OPTION = click.option(
    "--keylog",
    "keylogs",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    callback=_check_keylogs,
    help="NSS key log (SSLKEYLOGFILE) to decrypt TLS with; repeatable. Keys embedded in a pcapng are used anyway.",
)


EXIT_UNREADABLE = 3  # a capture that cannot be read: the same status from every command


class CaptureUnreadable(click.ClickException):
    """A capture that cannot be read (missing, a directory, not a capture): one line, exit status 3."""

    exit_code = EXIT_UNREADABLE


class StdoutUnwritable(click.ClickException):
    """Standard output cannot be written (disk full, an I/O error; not a closed pipe): one line, exit status 2, as
    for reports that cannot be written where ``-o`` says (not 3, a capture that cannot be read; not 5, a bug)."""

    exit_code = EXIT_USAGE

    def __init__(self, e: OSError) -> None:
        super().__init__(f"cannot write to standard output: {e.strerror or e}")


class _Stdout:
    """``sys.stdout`` while a command runs: the same stream, except that a failed write or flush other than a
    closed pipe (``BrokenPipeError``, handled where it happens) raises ``StdoutUnwritable``."""

    def __init__(self, raw: Any) -> None:
        self._raw = raw

    def write(self, text: str) -> int:
        return self._guarded(self._raw.write, text)

    def writelines(self, lines: Iterable[str]) -> None:
        self._guarded(self._raw.writelines, lines)

    def flush(self) -> None:
        self._guarded(self._raw.flush)

    @staticmethod
    def _guarded(call: Callable[..., Any], *args: Any) -> Any:
        try:
            return call(*args)
        except BrokenPipeError:
            raise
        except OSError as e:
            raise StdoutUnwritable(e) from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


def error_line(e: click.ClickException) -> str:
    """``error: MESSAGE`` in one line; a usage error adds where help is (``(see: ghostcap analyze --help)``)."""
    text = " ".join(e.format_message().split())
    if isinstance(e, click.UsageError) and e.ctx is not None:
        return f"error: {text} (see: {e.ctx.command_path} --help)"
    return f"error: {text}"


def capture_problem(e: AnalyzerError | OSError) -> CaptureUnreadable:
    """A capture that cannot be read, as the one-line error every command gives (its message names the file)."""
    if isinstance(e, OSError):
        return CaptureUnreadable(f"{e.filename}: {e.strerror or e}")
    return CaptureUnreadable(str(e))


def _charger_option(help_text: str):  # type: ignore[no-untyped-def]
    return click.option("--charger", "chargers", multiple=True, metavar="ID|ADDRESS", help=help_text)


SHOW_CHARGER = _charger_option(
    "Show only this charger's flows (its address at either end): its station id or address, as analyze names "
    "it; repeatable. A charger the capture does not have: exit status 2."
)


def _whole_timeline(
    capture: str, keylogs: tuple[str, ...], chargers: tuple[str, ...]
) -> tuple[TimelineResult, ChargerView | None]:
    """The whole capture's timeline and, with ``--charger``, the view of those chargers (else None); a capture
    that cannot be read, or a charger it does not have, is one line and its exit status (3, 2)."""
    from analyzer.engine import build_timeline
    from analyzer.report.charger_view import UnknownCharger, charger_view

    try:
        built = build_timeline(capture, keylogs)
        return built, (charger_view(built.timeline, capture, chargers) if chargers else None)
    except UnknownCharger as e:
        _unknown_charger(str(e))
    except (AnalyzerError, OSError) as e:
        raise capture_problem(e) from None


def _warn(warnings: list[str]) -> None:
    for w in warnings:
        click.echo(f"warning: {w}", err=True)


def _unknown_charger(message: str) -> NoReturn:
    """``--charger`` names no charger of the capture: one line naming those it has, exit status 2."""
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_USAGE)


class _Commands(click.Group):
    """The one place that decides the exit status of an unexpected error, for every command: an exception that
    is not a usage error, an ``AnalyzerError`` or ``OSError`` the command reports itself, or an interruption is a
    bug in ghostcap: one line (``internal error: ...; please report``) and exit status 5, never 1 (which means
    "a fault was found"). ``GHOSTCAP_DEBUG=1`` shows the traceback instead. Ctrl-C is exit status 130."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        """As click's, except that a usage or I/O error is one line on standard error (``error: ...``), with the
        exit status the exception carries (2 usage, 3 a capture that cannot be read): never click's three-line
        usage banner, which a script reading standard error would have to parse."""
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            status = super().main(*args, standalone_mode=False, **kwargs)
        except click.exceptions.Abort:
            click.echo("ghostcap: interrupted", err=True)
            sys.exit(130)
        except click.exceptions.NoArgsIsHelpError as e:  # `ghostcap` alone: the help, as click shows it
            e.show()
            sys.exit(e.exit_code)
        except click.ClickException as e:
            click.echo(error_line(e), err=True)
            sys.exit(e.exit_code)
        sys.exit(status if isinstance(status, int) else 0)

    def invoke(self, ctx: click.Context) -> object:
        raw = sys.stdout
        sys.stdout = _Stdout(raw)  # type: ignore[assignment]
        try:
            status = super().invoke(ctx)
            sys.stdout.flush()  # a full disk shows here, not as a message at exit
            return status
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except BrokenPipeError:  # the reader of standard output went away (``| head``): what it wanted, it has
            output_gone()
            ctx.exit(0)
        except KeyboardInterrupt:  # click would make it "Aborted!" and exit 1, the status of a fault
            click.echo("ghostcap: interrupted", err=True)
            ctx.exit(130)
        except Exception as e:
            if debugging():
                raise
            click.echo(internal_error_line(e), err=True)
            ctx.exit(EXIT_INTERNAL)
        finally:
            sys.stdout = raw


def output_gone() -> None:
    """Standard output's reader closed the pipe: what is still written to it goes to /dev/null (so that neither
    a later line nor the flush at exit fails)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def stdout_line(text: str) -> None:
    """One line on standard output; once its reader is gone (``analyze ... | head -1``), the rest are dropped and
    the work goes on: every capture still gets its reports and the exit status its verdict."""
    try:
        click.echo(text)
    except BrokenPipeError:
        output_gone()


@click.group(cls=_Commands, context_settings=CONTEXT_SETTINGS)
@click.version_option(
    __version__, prog_name="ghostcap", message=f"%(prog)s, version %(version)s\ncapture reader: {compiled.describe()}"
)
def cli() -> None:
    """ghostcap: find where an EV charger's handshake with its CSMS failed, from a packet capture."""


READ_EXIT_HELP = """Exit status: 0 done; 2 usage error (also: standard output cannot be written); 3 the capture could
not be read; 5 internal error (a bug in ghostcap: please report it). Every error is one line on standard error."""


@cli.command(epilog=READ_EXIT_HELP)
@click.argument("capture", metavar="CAPTURE")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "ndjson"]),
    default="table",
    show_default=True,
    help="Output format (ndjson: one JSON object per flow and line).",
)
@KEYLOG_OPTION
@SHOW_CHARGER
def flows(capture: str, fmt: str, keylogs: tuple[str, ...], chargers: tuple[str, ...]) -> None:
    """List the flows rebuilt from CAPTURE (pcap/pcapng, compressed or not, or - for stdin).

    Shows Wireshark's stream number (tcp.stream / udp.stream), client, server, packets and bytes each way, TCP
    state and history (Zeek-style letters: upper case from the client) and anomalies with the frame where each
    first shows.

    With --keylog (or keys embedded in the capture) each TLS flow also shows whether it was decrypted.

    Example: ghostcap flows captures/demo.pcap --format json
    """
    from analyzer.report.flows import flows_json, flows_ndjson, flows_table

    if keylogs or chargers:
        built, view = _whole_timeline(capture, keylogs, chargers)
        kept, orphans = built.flows, built.orphan_icmp
        if view is not None:
            kept, orphans = [f for f in kept if view.keeps(built.timeline.flows[f.id])], []
        result = FlowsResult(built.capture, kept, orphans, tls_status(built.timeline) if keylogs else None)
    else:
        try:
            result = rebuild_flows(capture)
        except (AnalyzerError, OSError) as e:
            raise capture_problem(e) from None
    _warn(result.capture.warnings)
    if fmt == "json":
        sys.stdout.writelines(flows_json(result))
    elif fmt == "ndjson":
        sys.stdout.writelines(flows_ndjson(result))
    else:
        click.echo(flows_table(result), nl=False)


@cli.command(epilog=READ_EXIT_HELP)
@click.argument("capture", metavar="CAPTURE")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "ndjson"]),
    default="table",
    show_default=True,
    help="table: one line per event; ndjson (or json): one JSON object per line with every field.",
)
@KEYLOG_OPTION
@click.option("--show-tokens", is_flag=True, help="Show idTokens in OCPP payloads (hidden by default).")
@SHOW_CHARGER
def timeline(capture: str, fmt: str, keylogs: tuple[str, ...], show_tokens: bool, chargers: tuple[str, ...]) -> None:
    """Decode CAPTURE and print one timeline of DNS, TCP, TLS, HTTP, WebSocket and OCPP events.

    Each line: capture time, frame number (as Wireshark numbers it), Wireshark's stream (tcp 3 is the display
    filter tcp.stream eq 3), the charger the flow belongs to, layer, event and a one-line summary. Lines are
    printed as the capture is read, in frame order (a connection's end comes when it ends; an event that arrives
    too late for its place is printed at once, with its frame number); memory stays flat. The charger column then
    shows the station id a connection's WebSocket upgrade names; with --charger, which needs the whole capture's
    chargers, the timeline is printed once the capture is read.

    Example: ghostcap timeline captures/ocpp_boot_callerror.pcap
    """
    from analyzer.engine import build_timeline
    from analyzer.events.base import Event
    from analyzer.report.timeline_out import event_json, event_line, table_header, timeline_json, timeline_table
    from analyzer.timeline.stream import EventStream
    from analyzer.timeline.timeline import Stream

    if chargers:  # the chargers are known once the whole capture is read: no streaming
        result, view = _whole_timeline(capture, keylogs, chargers)
        _warn(result.capture.warnings)
        if fmt == "table":
            click.echo(timeline_table(result, view=view), nl=False)
        else:
            sys.stdout.writelines(timeline_json(result, redact=not show_tokens, view=view))
        return

    out = sys.stdout
    if fmt == "table":
        started = False

        def write(e: Event, stream: Stream, charger: str | None) -> None:
            nonlocal started
            if not started:  # the header with the first line: nothing on stdout when the capture cannot be read
                started = True
                out.write(table_header())
            out.write(event_line(e, stream, charger))

        stream = EventStream(write)
    else:
        redact = not show_tokens

        def write_json(e: Event, stream: Stream, charger: str | None) -> None:
            out.write(event_json(e, redact, stream, charger))

        stream = EventStream(write_json)
    try:
        result = build_timeline(capture, keylogs, stream)
    except BrokenPipeError:
        raise  # the reader went away (``| head``): ``main`` ends quietly
    except (AnalyzerError, OSError) as e:
        raise capture_problem(e) from None
    if fmt == "table" and not stream.written:
        out.write(table_header())
    out.flush()
    _warn(result.capture.warnings)


EXIT_HELP = """Output: one line per charger on standard output, CAPTURE: CHARGER VERDICT [FAULT @FRAME CXnnn Name
fix:SIDE [site-visit]] (a capture without a charger gets one line too); progress, warnings and the files written
on standard error (-q keeps only errors there). With -o - the JSON report goes to standard output and the
per-charger lines to standard error.

Exit status: 0 every charger healthy; 1 a fault was found; 2 usage error (also: the reports cannot be written
where -o or --annotate says, or standard output cannot be written; a --charger the capture does not have); 3 a
capture could not be read; 4 no fault, but a verdict is inconclusive (or no charger was found); 5 internal error
(a bug in ghostcap: please report it).
With several captures the most severe status wins (5, then 3, then 2, then 1, then 4). Every error is one line on
standard error."""

DEFAULT_FORMATS = "html,json,md"


class Workers(click.ParamType):
    """``--workers``: a number of processes (1 to 256), or ``auto`` (``cores.AUTO``: ``cores.auto_workers`` decides
    per capture)."""

    name = "N|auto"

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return self.name

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        from analyzer.cores import AUTO

        if isinstance(value, int):
            return value
        text = str(value).strip().lower()
        if text == "auto":
            return AUTO
        try:
            n = int(text)
        except ValueError:
            self.fail(f"{value!r} is not a number of processes or auto", param, ctx)
        if not 1 <= n <= 256:
            self.fail(f"{n} is not in the range 1<=x<=256 (or auto)", param, ctx)
        return n


@cli.command(epilog=EXIT_HELP)
@click.argument("captures", metavar="CAPTURE...", nargs=-1, required=True)
@click.option(
    "-o",
    "--output",
    "out_dir",
    default="reports",
    show_default=True,
    help="Directory for the reports, or - to print the JSON report of one capture to standard output.",
)
@click.option(
    "--format",
    "formats",
    default=None,
    help=f"Comma-separated report formats: html, json, md.  [default: {DEFAULT_FORMATS}; json with -o -]",
)
@KEYLOG_OPTION
@click.option("--csms", metavar="HOST[:PORT]", help="The CSMS's host name or address (and port), if known.")
@click.option("--show-tokens", is_flag=True, help="Show idTokens in the reports (hidden by default).")
@click.option(
    "-q",
    "--quiet",
    is_flag=True,
    help="Nothing on standard error but errors (no progress, warnings or files written); the per-charger lines "
    "on standard output stay.",
)
@click.option(
    "--verify",
    is_flag=True,
    help="Ask tshark (through pyshark) to dissect the frames each root cause and its evidence name, and report "
    "where it agrees (TLS alert, DNS rcode, HTTP status, close code, OCPP message, TCP flags).",
)
@_charger_option(
    "Report only this charger: its station id or address; repeatable. One capture must have it (else exit status "
    "2, naming the chargers it has); of several captures, those without it are skipped."
)
@click.option(
    "--annotate",
    metavar="OUT.pcapng",
    help="Also write CAPTURE back as pcapng with a packet comment (ghostcap's verdict, fault, CX code, who acts) "
    "on every frame a finding or its evidence names; one capture file (not stdin). Wireshark shows the comments; "
    "tshark -Y frame.comment lists them.",
)
@click.option(
    "-j",
    "--workers",
    type=Workers(),
    default="auto",
    show_default=True,
    help="Processes to read each capture file with, its chargers shared out among them: a big gateway capture is "
    "read faster on a machine with cores to spare. auto: one for a capture under 8 MiB, else one per core this "
    "process may use, at most 4. The report is the same, but for what the memory budgets release in a flood (they "
    "hold per process). Standard input is read by one.",
)
def analyze(
    captures: tuple[str, ...],
    out_dir: str,
    formats: str | None,
    keylogs: tuple[str, ...],
    csms: str | None,
    show_tokens: bool,
    quiet: bool,
    verify: bool,
    chargers: tuple[str, ...],
    annotate: str | None,
    workers: int,
) -> None:
    """Find where each charger's handshake with its CSMS failed, and write a report per capture.

    For each charger in CAPTURE: the verdict, the root cause with its fault id, frame and ChargeX MREC code, the
    evidence and what to do. Writes DIR/<capture name>.html, .json and .md, and prints one line per charger. Each
    finding and evidence item gives the Wireshark display filters of its frame and connection (frame.number == 12,
    tcp.stream eq 3).

    Example: ghostcap analyze captures/tls12_cert_not_yet_valid.pcap -o reports/
    """
    from analyzer.report.writer import run_analyze

    to_stdout = out_dir == "-"
    fmts = [f.strip().lower() for f in (formats or ("json" if to_stdout else DEFAULT_FORMATS)).split(",") if f.strip()]
    bad = [f for f in fmts if f not in ("html", "json", "md")]
    if bad or not fmts:
        raise click.UsageError(f"unknown report format {', '.join(bad) or '(none)'}: use html, json, md")
    if annotate is not None and (len(captures) != 1 or captures[0] == "-"):
        raise click.UsageError("--annotate writes one capture back: give it one capture file (not standard input)")
    if to_stdout and fmts != ["json"]:
        raise click.UsageError("-o - prints the JSON report: leave out --format or give --format json")
    if to_stdout and len(captures) != 1:
        raise click.UsageError(f"-o - prints the JSON report of one capture, not {len(captures)}: give -o DIR")
    settings_csms = None
    if csms:
        from analyzer.config import parse_csms

        try:
            settings_csms = parse_csms(csms)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--csms") from None

    def message(m: str) -> None:  # standard error; --quiet keeps only the errors
        if not quiet or m.startswith(("error", "internal")):
            click.echo(m, err=True)

    status = run_analyze(
        captures,
        out_dir,
        fmts,
        settings_csms,
        show_tokens,
        echo=message,
        keylog_files=keylogs,
        quiet=quiet,
        verify=verify,
        line=message if to_stdout else stdout_line,
        chargers=chargers,
        annotate=annotate,
        workers=workers,
    )
    sys.exit(status)


EXPORT_EXIT_HELP = """Exit status: 0 the trace was written (a capture without OCPP gives an empty trace); 2 usage
error (also: the trace cannot be written where -o says); 3 the capture could not be read; 5 internal error (a bug in
ghostcap: please report it)."""


@cli.command(epilog=EXPORT_EXIT_HELP)
@click.argument("capture", metavar="CAPTURE")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["open-ocpp-trace"]),
    default="open-ocpp-trace",
    show_default=True,
    help="open-ocpp-trace: the Open OCPP Trace Format v1.1 (JSONL, one record per OCPP-J message).",
)
@click.option("-o", "--output", default="-", show_default=True, help="File to write, or - for standard output.")
@KEYLOG_OPTION
@click.option("--csms", metavar="HOST[:PORT]", help="The CSMS's host name or address (and port), if known.")
@click.option("--show-tokens", is_flag=True, help="Show idTokens and configuration secrets (hidden by default).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors on stderr.")
def export(
    capture: str, fmt: str, output: str, keylogs: tuple[str, ...], csms: str | None, show_tokens: bool, quiet: bool
) -> None:
    """Write the OCPP messages decoded from CAPTURE in an interchange format other tools read.

    open-ocpp-trace: the vendor-neutral Open OCPP Trace Format v1.1 (specification: the public
    open-ocpp-trace/specification repository), as read by ocpp-debugkit and OCPP simulators: one JSON record per
    line, grouped by charger, with chargePointId, direction, messageType, messageId, action, payload (or error),
    the message text as sent (raw) when ghostcap kept all of it and it shows no secret, and the frame number in
    meta. idTokens and secrets are hidden as in the reports, unless --show-tokens.

    \b
    Example: ghostcap export captures/ocpp_boot_rejected.pcap --format open-ocpp-trace -o boot-rejected.jsonl
    """
    from analyzer.config import Settings
    from analyzer.engine import analyze as analyze_capture
    from analyzer.export.open_ocpp_trace import trace
    from analyzer.report.writer import write_file

    settings = Settings(keylog_files=keylogs, show_tokens=show_tokens)
    if csms:
        from analyzer.config import parse_csms

        try:
            settings = Settings(keylog_files=keylogs, show_tokens=show_tokens, csms=parse_csms(csms))
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--csms") from None
    try:
        analysis = analyze_capture(capture, settings)
    except (AnalyzerError, OSError) as e:
        why = e.strerror if isinstance(e, OSError) and e.strerror else e
        click.echo(f"error: {capture}: {why}", err=True)
        sys.exit(3)
    say = (lambda m: None) if quiet else (lambda m: click.echo(m, err=True))
    for w in analysis.capture.warnings:
        say(f"warning: {capture}: {w}")
    result = trace(analysis, show_tokens=show_tokens)
    text = "".join(result.lines())
    if output == "-":
        sys.stdout.write(text)
    else:
        try:
            write_file(output, text)
        except AnalyzerError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(2)
    chargers = len({r.get("chargePointId") for r in result.records})
    where = "standard output" if output == "-" else output
    say(f"{capture}: {len(result.records)} OCPP messages of {chargers} charger(s) → {where} ({fmt})")
    if result.left_out:
        left = ", ".join(f"{n} {why}" for why, n in result.left_out.items())
        say(f"{capture}: left out of the trace (the format cannot carry them): {left}")


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def catalogue(fmt: str) -> None:
    """List the fault ids ghostcap reports, with their nearest ChargeX MREC code and what to do.

    Example: ghostcap catalogue --format json
    """
    import json

    from analyzer.diagnosis.catalogue import FAULTS, cx_label

    if fmt == "json":
        rows = [
            {
                "fault": f.id,
                "layer": f.layer,
                "meaning": f.meaning,
                "failure_point": f.failure_point,
                "cx_code": f.cx_code,
                "cx_label": cx_label(f.cx_code),
                "remediation": list(f.remediation),
            }
            for f in FAULTS.values()
        ]
        click.echo(json.dumps(rows, indent=2))
        return
    for f in FAULTS.values():
        click.echo(f"{f.id:<26} {cx_label(f.cx_code) or '-':<22} {f.meaning}")
        for step in f.remediation:
            click.echo(f"{'':<49} - {step}")


def main() -> None:
    """The ``ghostcap`` command: its status is the process's, which ends without freeing its heap
    (``exiting.exit_now``)."""
    code: object = 0
    leaving()
    try:
        cli(prog_name="ghostcap")
    except SystemExit as e:
        code = e.code
    except KeyboardInterrupt:
        click.echo("ghostcap: interrupted", err=True)
        code = 130
    except BrokenPipeError:
        code = 0
    exit_now(code)


from analyzer.triage.command import triage  # noqa: E402 - registered last, beside the commands above

cli.add_command(triage)
