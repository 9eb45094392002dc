"""The ``ghostcap`` command line: thin commands over the library; errors become one-line messages."""

from __future__ import annotations

import sys

import click

from analyzer import __version__
from analyzer.engine import FlowsResult, rebuild_flows, tls_status
from analyzer.errors import EXIT_INTERNAL, AnalyzerError, debugging, internal_error_line

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


def _charger_option(help_text: str):  # type: ignore[no-untyped-def]
    return click.option("--charger", "chargers", multiple=True, metavar="ID|ADDRESS", help=help_text)


SHOW_CHARGER = _charger_option(
    "Show only this charger's flows (its address at either end): its station id or address, as analyze names "
    "it; repeatable. A charger the capture does not have: exit status 2."
)


def _unknown_charger(message: str) -> None:
    """``--charger`` names no charger of the capture: one line naming those it has, exit status 2."""
    from analyzer.errors import EXIT_USAGE

    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_USAGE)


class _Commands(click.Group):
    """The one place that decides the exit status of an unexpected error, for every command: an exception that
    is not a usage error, an ``AnalyzerError`` or ``OSError`` the command reports itself, or an interruption is a
    bug in ghostcap: one line (``internal error: ...; please report``) and exit status 5, never 1 (which means
    "a fault was found"). ``GHOSTCAP_DEBUG=1`` shows the traceback instead. Ctrl-C is exit status 130."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort, BrokenPipeError):
            raise
        except KeyboardInterrupt:  # click would make it "Aborted!" and exit 1, the status of a fault
            click.echo("ghostcap: interrupted", err=True)
            ctx.exit(130)
        except Exception as e:
            if debugging():
                raise
            click.echo(internal_error_line(e), err=True)
            ctx.exit(EXIT_INTERNAL)


@click.group(cls=_Commands, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, prog_name="ghostcap")
def cli() -> None:
    """ghostcap: find where an EV charger's handshake with its CSMS failed, from a packet capture."""


@cli.command()
@click.argument("capture", metavar="CAPTURE")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="Output format.",
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
    from analyzer.report.charger_view import UnknownCharger, charger_view
    from analyzer.report.flows import flows_json, flows_table

    try:
        if keylogs or chargers:
            from analyzer.engine import build_timeline

            built = build_timeline(capture, keylogs)
            kept, orphans = built.flows, built.orphan_icmp
            if chargers:
                view = charger_view(built.timeline, capture, chargers)
                kept, orphans = [f for f in kept if view.keeps(built.timeline.flows[f.id])], []
            result = FlowsResult(built.capture, kept, orphans, tls_status(built.timeline) if keylogs else None)
        else:
            result = rebuild_flows(capture)
    except UnknownCharger as e:
        _unknown_charger(str(e))
    except AnalyzerError as e:
        raise click.ClickException(str(e)) from None
    except OSError as e:
        raise click.ClickException(f"{e.filename}: {e.strerror}") from None
    for w in result.capture.warnings:
        click.echo(f"warning: {w}", err=True)
    if fmt == "json":
        sys.stdout.writelines(flows_json(result))
    else:
        click.echo(flows_table(result), nl=False)


@cli.command()
@click.argument("capture", metavar="CAPTURE")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="table: one line per event; json: one JSON object per line with every field.",
)
@KEYLOG_OPTION
@click.option("--show-tokens", is_flag=True, help="Show idTokens in OCPP payloads (hidden by default).")
@SHOW_CHARGER
def timeline(capture: str, fmt: str, keylogs: tuple[str, ...], show_tokens: bool, chargers: tuple[str, ...]) -> None:
    """Decode CAPTURE and print one timeline of DNS, TCP, TLS, HTTP, WebSocket and OCPP events.

    Each line: capture time, frame number (as Wireshark numbers it), Wireshark's stream (tcp 3 is the display
    filter tcp.stream eq 3), the charger the flow belongs to, layer, event and a one-line summary.

    Example: ghostcap timeline captures/ocpp_boot_callerror.pcap
    """
    from analyzer.engine import build_timeline
    from analyzer.report.charger_view import UnknownCharger, charger_view
    from analyzer.report.timeline_out import timeline_json, timeline_table

    try:
        result = build_timeline(capture, keylogs)
        view = charger_view(result.timeline, capture, chargers)
    except UnknownCharger as e:
        _unknown_charger(str(e))
    except AnalyzerError as e:
        raise click.ClickException(str(e)) from None
    except OSError as e:
        raise click.ClickException(f"{e.filename}: {e.strerror}") from None
    for w in result.capture.warnings:
        click.echo(f"warning: {w}", err=True)
    if fmt == "json":
        sys.stdout.writelines(timeline_json(result, redact=not show_tokens, view=view))
    else:
        click.echo(timeline_table(result, view=view), nl=False)


EXIT_HELP = """Exit status: 0 every charger healthy; 1 a fault was found; 2 usage error (also: the reports cannot be
written where -o says; a --charger the capture does not have); 3 a capture could not be read; 4 no fault, but a
verdict is inconclusive (or no charger was found); 5 internal error (a bug in ghostcap: please report it). With
several captures the most severe status wins (5, then 3, then 2, then 1, then 4)."""


@cli.command(epilog=EXIT_HELP)
@click.argument("captures", metavar="CAPTURE...", nargs=-1, required=True)
@click.option(
    "-o",
    "--output",
    "out_dir",
    default="reports",
    show_default=True,
    help="Directory for the reports, or - to print one JSON report to standard output.",
)
@click.option(
    "--format",
    "formats",
    default="html,json,md",
    show_default=True,
    help="Comma-separated report formats: html, json, md.",
)
@KEYLOG_OPTION
@click.option("--csms", metavar="HOST[:PORT]", help="The CSMS's host name or address (and port), if known.")
@click.option("--show-tokens", is_flag=True, help="Show idTokens in the reports (hidden by default).")
@click.option("-q", "--quiet", is_flag=True, help="No progress and no per-capture lines; only errors on stderr.")
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
def analyze(
    captures: tuple[str, ...],
    out_dir: str,
    formats: str,
    keylogs: tuple[str, ...],
    csms: str | None,
    show_tokens: bool,
    quiet: bool,
    chargers: tuple[str, ...],
    annotate: str | None,
) -> None:
    """Find where each charger's handshake with its CSMS failed, and write a report per capture.

    For each charger in CAPTURE: the verdict, the root cause with its fault id, frame and ChargeX MREC code, the
    evidence and what to do. Writes DIR/<capture name>.html, .json and .md. Each finding and evidence item gives
    the Wireshark display filters of its frame and connection (frame.number == 12, tcp.stream eq 3).

    Example: ghostcap analyze captures/tls12_cert_not_yet_valid.pcap -o reports/
    """
    from analyzer.report.writer import run_analyze

    fmts = [f.strip().lower() for f in formats.split(",") if f.strip()]
    bad = [f for f in fmts if f not in ("html", "json", "md")]
    if bad or not fmts:
        raise click.UsageError(f"unknown report format {', '.join(bad) or '(none)'}: use html, json, md")
    if annotate is not None and (len(captures) != 1 or captures[0] == "-"):
        raise click.UsageError("--annotate writes one capture back: give it one capture file (not standard input)")
    if out_dir == "-" and (fmts != ["json"] or len(captures) != 1):
        raise click.UsageError("-o - prints one JSON report: use it with --format json and one capture")
    settings_csms = None
    if csms:
        from analyzer.config import parse_csms

        try:
            settings_csms = parse_csms(csms)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--csms") from None
    status = run_analyze(
        captures,
        out_dir,
        fmts,
        settings_csms,
        show_tokens,
        echo=lambda m: click.echo(m, err=True) if not quiet or m.startswith(("error", "internal")) else None,
        keylog_files=keylogs,
        quiet=quiet,
        chargers=chargers,
        annotate=annotate,
    )
    sys.exit(status)


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def catalogue(fmt: str) -> None:
    """List the fault ids ghostcap reports, with their nearest ChargeX MREC code and what to do.

    Example: ghostcap catalogue --format json
    """
    import json

    from analyzer.diagnosis.catalogue import FAULTS

    if fmt == "json":
        rows = [
            {
                "fault": f.id,
                "layer": f.layer,
                "meaning": f.meaning,
                "failure_point": f.failure_point,
                "cx_code": f.cx_code,
                "remediation": list(f.remediation),
            }
            for f in FAULTS.values()
        ]
        click.echo(json.dumps(rows, indent=2))
        return
    for f in FAULTS.values():
        click.echo(f"{f.id:<26} {f.cx_code or '-':<6} {f.meaning}")
        for step in f.remediation:
            click.echo(f"{'':<33} - {step}")


def main() -> None:
    try:
        cli(prog_name="ghostcap")
    except KeyboardInterrupt:
        click.echo("ghostcap: interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)


from analyzer.triage.command import triage  # noqa: E402 - registered last, beside the commands above

cli.add_command(triage)
