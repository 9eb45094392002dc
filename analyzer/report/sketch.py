"""SVG markup with holes for one capture's texts: a plot is drawn once per shape as a ``Skeleton`` whose ``Slot``s
are filled with each capture's texts (``analyzer.report.svg`` keeps the skeletons, ``functools.lru_cache``).

A slot shows a text as the plot would have drawn it in place: ``svg_text`` (one line, control and invisible
characters as ``?``, bounded, XML-escaped), or, for the plot's label, escaped as it is, or, for a number the plot
wrote itself (a frame number, a time), as it is: markup already.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from markupsafe import Markup, escape

HIDDEN = frozenset("\u061c\u200b\u200c\u200d\u200e\u200f\u2028\u2029\u202a\u202b\u202c\u202d\u202e\u2060")
HIDDEN |= frozenset("\u2066\u2067\u2068\u2069\ufeff\u00ad")
_HIDDEN_RE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff" + "".join(sorted(HIDDEN)) + "]")


def svg_text(value: object, limit: int = 80) -> str:
    """``value`` as one line of escaped text: whitespace runs become one space, control and invisible characters
    ``?``, text longer than ``limit`` ends with ``…``."""
    return str(escape(_line(value, limit)))


def _line(value: object, limit: int) -> str:
    """``svg_text`` before escaping: a plain ``str`` without control characters (no NUL)."""
    text = str(value)
    # printable ASCII with single inner spaces is already one clean line (the common case: no regex, no split)
    clean = type(text) is str and text.isascii() and text.isprintable()
    if not clean or "  " in text or text[:1] == " " or text[-1:] == " ":
        text = _HIDDEN_RE.sub("?", " ".join(text.split()))
    if len(text) > limit:
        text = text[: max(limit - 1, 0)] + "…"
    return text


class Slot(NamedTuple):
    """Where a plot shows its text number ``index``: through ``svg_text(text, limit)``, or escaped as it is when
    ``limit`` is ``None`` (the plot's label), or as it is when ``markup`` (a text the plot made safe itself). A
    named tuple: hashed in C when a skeleton is drawn."""

    index: int
    limit: int | None = None
    markup: bool = False


Piece = str | Slot


@dataclass(frozen=True, slots=True)
class Skeleton:
    """A drawn plot with its texts left out: ``parts``, its markup as a list to fill in, the markup between the
    slots at even positions and a placeholder at each odd one (``None``), each slot's field in ``order``; the fields
    are its distinct slots, first the ``lines`` (text index, limit: ``svg_text``), then the ``others`` (text index,
    whether it is markup already, else escaped as it is); and the plot's size in px."""

    parts: tuple[str | None, ...]
    order: tuple[int, ...]
    lines: tuple[tuple[int, int], ...]
    others: tuple[tuple[int, bool], ...]
    width: int
    height: int

    def fill(self, texts: Sequence[object]) -> Markup:
        """The plot's markup with ``texts`` in its slots: the lines (``svg_text``) escaped in one go, joined by NULs
        (which no line holds and escaping leaves alone), the others each on its own; put in place by one slice
        assignment and one join (C). (A ``str.format`` of the whole markup read all of its characters for the
        fields each time: most of a plot's cost.)"""
        shown = (
            str(escape("\0".join([_line(texts[i], limit) for i, limit in self.lines]))).split("\0")
            if self.lines
            else []
        )
        shown += [texts[i] if markup else str(escape(texts[i])) for i, markup in self.others]
        parts = list(self.parts)
        parts[1::2] = [shown[f] for f in self.order]
        return Markup("".join(parts))  # type: ignore[arg-type]


def skeleton(pieces: Iterable[Piece], width: int, height: int) -> Skeleton:
    """A ``Skeleton`` of ``pieces`` (markup and slots in order): each distinct slot one field, the lines first;
    adjacent markup joined."""
    pieces = list(pieces)
    distinct = list(dict.fromkeys(p for p in pieces if isinstance(p, Slot)))
    distinct.sort(key=lambda s: s.limit is None)  # stable: the lines first, each group in order of appearance
    field = {slot: n for n, slot in enumerate(distinct)}
    parts: list[str | None] = [""]
    order: list[int] = []
    for p in pieces:
        if isinstance(p, Slot):
            parts += (None, "")
            order.append(field[p])
        else:
            parts[-1] += p
    lines = tuple((s.index, s.limit) for s in distinct if s.limit is not None)
    others = tuple((s.index, s.markup) for s in distinct if s.limit is None)
    return Skeleton(tuple(parts), tuple(order), lines, others, width, height)
