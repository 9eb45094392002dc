"""JSON text for every JSON ghostcap writes (report, ``timeline --format json``, ``flows --format json``).

Always strict JSON (RFC 8259), whatever a capture holds:

- no ``Infinity``/``NaN``: a non-finite number is written as a string. The OCPP decoder keeps a JSON number too
  large for a double (``1e999``) as a ``BigNumber``: a float equal to ±infinity, so schema validation sees what
  the peer's JSON parser sees, that remembers its text, and that text is what is written (``"1e999"``). Any other
  non-finite float becomes ``"Infinity"``, ``"-Infinity"`` or ``"NaN"``.
- a lone surrogate from a hostile string (``\\ud800`` in an OCPP text) is written as its JSON escape ``\\ud800``,
  so the text is valid UTF-8 and shows what the capture carried.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

_SURROGATE = re.compile("[\ud800-\udfff]")


class BigNumber(float):
    """A JSON number outside the range of a double: ``float(text)`` (±infinity) that keeps its ``text``."""

    text: str

    def __new__(cls, text: str) -> BigNumber:
        self = super().__new__(cls, text)
        self.text = text
        return self

    def __reduce__(self) -> tuple[type, tuple[str]]:
        return BigNumber, (self.text,)


def parse_float(text: str) -> float:
    """``json.loads(..., parse_float=parse_float)``: a float, or a ``BigNumber`` when it overflows a double."""
    value = float(text)
    return value if math.isfinite(value) else BigNumber(text)


def dumps(obj: Any, *, indent: int | None = None, separators: tuple[str, str] | None = None) -> str:
    """``json.dumps(obj, ensure_ascii=False)`` made strict: see the module docstring."""
    try:
        text = json.dumps(obj, ensure_ascii=False, allow_nan=False, indent=indent, separators=separators)
    except ValueError:  # a non-finite float somewhere: rare, so the common case pays nothing
        text = json.dumps(finite(obj), ensure_ascii=False, allow_nan=False, indent=indent, separators=separators)
    return escape_surrogates(text)


def escape_surrogates(text: str) -> str:
    """Each lone surrogate as the six characters of its escape (``\\ud800``): inside a JSON string that is its
    JSON escape; in a table it shows what the capture carried."""
    if text.isascii():  # the common case, checked in C at memory speed
        return text
    try:
        text.encode("utf-8")  # strict: fails on a lone surrogate, and only then
    except UnicodeEncodeError:
        return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return text


def finite(obj: Any) -> Any:
    """A copy of ``obj`` (dicts, lists, tuples) with each non-finite float as a string (see the module docstring)."""
    if isinstance(obj, float):
        if math.isfinite(obj):
            return obj
        if isinstance(obj, BigNumber):
            return obj.text
        return "NaN" if math.isnan(obj) else ("Infinity" if obj > 0 else "-Infinity")
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite(v) for v in obj]
    return obj
