"""Optional parts of ghostcap and the packages each needs (``pip install 'ghostcap[NAME]'``): whether they are
installed, and the one line that says what to install when they are not. The default install runs ``analyze``,
``timeline``, ``flows``, ``export``, ``catalogue`` and a local ``triage``; Dask, Parquet and --verify are extras."""

from __future__ import annotations

from importlib.util import find_spec

EXTRAS: dict[str, tuple[tuple[str, ...], str]] = {
    "dask": (("dask", "distributed"), "ghostcap triage --scheduler (a Dask cluster)"),
    "parquet": (("pandas", "pyarrow"), "the Parquet export of ghostcap triage (results.parquet)"),
    "verify": (("pyshark",), "ghostcap analyze --verify (tshark's second opinion, through pyshark)"),
}


def missing(extra: str) -> str | None:
    """``None`` when the packages of ``extra`` are importable, else what is missing and what to install, e.g.
    ``pandas and pyarrow are not installed: pip install 'ghostcap[parquet]'``."""
    modules = EXTRAS[extra][0]
    absent = [m for m in modules if find_spec(m) is None]
    if not absent:
        return None
    names = " and ".join(absent)
    return f"{names} {'is' if len(absent) == 1 else 'are'} not installed: pip install 'ghostcap[{extra}]'"
