"""The exception tree. Boundaries (CLI, batch) turn these into one-line messages."""


class AnalyzerError(Exception):
    """Base of every error ghostcap reports to a user instead of a traceback."""


class CaptureError(AnalyzerError):
    """The input is not a readable packet capture (message says what it looks like instead)."""
