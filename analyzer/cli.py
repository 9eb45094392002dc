"""The ``ghostcap`` command line: thin commands over the library; errors become one-line messages."""

from __future__ import annotations

import sys

import click

from analyzer import __version__
from analyzer.engine import rebuild_flows
from analyzer.errors import AnalyzerError

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"]}


@click.group(context_settings=CONTEXT_SETTINGS)
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
def flows(capture: str, fmt: str) -> None:
    """List the flows rebuilt from CAPTURE (pcap/pcapng, compressed or not, or - for stdin).

    Shows client, server, packets and bytes each way, TCP state and history (Zeek-style letters: upper case
    from the client) and anomalies with the frame where each first shows.

    Example: ghostcap flows captures/demo.pcap --format json
    """
    from analyzer.report.flows import flows_json, flows_table

    try:
        result = rebuild_flows(capture)
    except AnalyzerError as e:
        raise click.ClickException(str(e)) from None
    for w in result.capture.warnings:
        click.echo(f"warning: {w}", err=True)
    if fmt == "json":
        sys.stdout.writelines(flows_json(result))
    else:
        click.echo(flows_table(result), nl=False)


def main() -> None:
    try:
        cli(prog_name="ghostcap")
    except KeyboardInterrupt:
        click.echo("ghostcap: interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
