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
from collections.abc import Iterator
from json.encoder import encode_basestring
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


def dumps(obj: Any, *, indent: int | None = None, separators: tuple[str, str] | None = None, tree: bool = False) -> str:
    """``json.dumps(obj, ensure_ascii=False)`` made strict: see the module docstring. ``tree``: ``obj`` holds no
    container inside itself (a report ``report_dict`` made: a list may be shared, never nested in itself), so
    ``json`` need not look for cycles (a dict entry made and deleted per container: 4 % of a triage capture's
    compact JSON).

    Indented by two spaces with the default separators (a report for a person), a value ``plain_json`` can write is
    written by it: the same text, a third less time than ``json``'s indenting encoder, which is pure Python (0.05 s
    of the 1M-packet gateway capture's 6 MB report)."""
    if indent == 2 and separators is None:
        try:
            return escape_surrogates(plain_json(obj, "\n"))
        except (NotPlain, RecursionError):
            pass  # another type, a key not a text, a float not finite, or too deep: json's encoder decides
    options: dict[str, Any] = {"indent": indent, "separators": separators, "check_circular": not tree}
    try:
        text = json.dumps(obj, ensure_ascii=False, allow_nan=False, **options)
    except ValueError:  # a non-finite float somewhere: rare, so the common case pays nothing
        text = json.dumps(finite(obj), ensure_ascii=False, allow_nan=False, **options)
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


class NotPlain(Exception):
    """A value ``plain_json`` leaves to ``json.dumps``."""


# (``plain_json``: an OCPP payload pretty-printed on the HTML page, written in Python without ``json``'s own
# indenting encoder, which is pure Python and makes a generator per container; a lone surrogate is written as it
# is, as ``json.dumps(..., ensure_ascii=False)`` writes it)


_JSON_WORDS = {None: "null", True: "true", False: "false"}


def plain_json(value: Any, pad: str) -> str:
    """``json.dumps(value, indent=2, ensure_ascii=False, allow_nan=False)`` of a value made of dicts with text keys,
    lists, texts, ``int``s, finite ``float``s, booleans and ``None`` (``pad``: a newline and the indentation of the
    value's own line); ``NotPlain`` for anything else (another type, a subclass, a key not a text, a float not
    finite), which ``json.dumps`` then writes."""
    kind = type(value)
    if kind is str:
        return encode_basestring(value)
    if kind is dict:
        if not value:
            return "{}"
        inner = pad + "  "
        if any(type(k) is not str for k in value):
            raise NotPlain
        items = [f"{encode_basestring(k)}: {plain_json(v, inner)}" for k, v in value.items()]
        return "{" + inner + f",{inner}".join(items) + pad + "}"
    if kind is list:
        if not value:
            return "[]"
        inner = pad + "  "
        return "[" + inner + f",{inner}".join([plain_json(v, inner) for v in value]) + pad + "]"
    if kind is int:
        return int.__repr__(value)
    if kind is float and math.isfinite(value):
        return float.__repr__(value)
    if kind is bool or value is None:
        return _JSON_WORDS[value]
    raise NotPlain


def plain_json_parts(value: Any, pad: str, depth: int) -> Iterator[str]:
    """``plain_json(value, pad)`` in pieces: the dicts and lists of its first ``depth`` levels piece by piece, what
    is deeper whole. Joined, the pieces are ``plain_json``'s text; ``NotPlain`` may come after some pieces."""
    kind = type(value)
    if depth <= 0 or not value or (kind is not dict and kind is not list):
        yield plain_json(value, pad)
        return
    inner = pad + "  "
    sep = ("{" if kind is dict else "[") + inner
    if kind is dict:
        if any(type(k) is not str for k in value):
            raise NotPlain
        for k, v in value.items():
            yield f"{sep}{encode_basestring(k)}: "
            yield from plain_json_parts(v, inner, depth - 1)
            sep = "," + inner
        yield pad + "}"
    else:
        for v in value:
            yield sep
            yield from plain_json_parts(v, inner, depth - 1)
            sep = "," + inner
        yield pad + "]"


def indented_parts(obj: Any, depth: int = 2) -> Iterator[str]:
    """``dumps(obj, indent=2)`` in pieces (``plain_json_parts``), each made strict (``escape_surrogates``), for a
    writer that need not hold the whole text (the 1M-packet gateway capture's 6 MB report: 33 MiB at the peak of
    making it whole). ``NotPlain`` (or ``RecursionError``) may come after some pieces: the caller then writes
    ``dumps(obj, indent=2)`` instead."""
    for piece in plain_json_parts(obj, "\n", depth):
        yield escape_surrogates(piece)
