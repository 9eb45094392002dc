"""The exception tree. Boundaries (CLI, batch) turn these into one-line messages."""


class AnalyzerError(Exception):
    """Base of every error ghostcap reports to a user instead of a traceback."""


class CaptureError(AnalyzerError):
    """The input is not a readable packet capture (message says what it looks like instead)."""


class OutputError(AnalyzerError):
    """The reports cannot be written where ``-o`` says (a file, not a directory; no permission; disk full)."""


EXIT_USAGE = 2  # a bad command line, or an -o that cannot be written (OutputError)
EXIT_INTERNAL = 5  # a bug in ghostcap: any exception that is not an AnalyzerError, OSError or usage error
DEBUG_ENV = "GHOSTCAP_DEBUG"  # set to 1 to get the traceback of an internal error instead of its one-line message


def internal_error_line(exc: BaseException, where: str | None = None) -> str:
    """The one line an internal error is reported with: ``internal error: [where: ]Type: message; please report``.

    The only wording of an internal error; its status is ``EXIT_INTERNAL`` wherever it is caught (the CLI group
    for every command, ``ghostcap analyze`` per capture so that the other captures are still analysed)."""
    text = " ".join(str(exc).split())[:300]
    place = f"{where}: " if where else ""
    return f"internal error: {place}{type(exc).__name__}{': ' + text if text else ''}; please report"


def debugging() -> bool:
    import os

    return os.environ.get(DEBUG_ENV, "") not in ("", "0")
