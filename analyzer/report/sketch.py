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
from itertools import chain
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
    """A drawn plot with its texts left out: ``parts`` of markup around its holes (one more part than holes), the
    hole ``order``: which of its distinct ``slots`` each hole shows; and the plot's size in px."""

    parts: tuple[str, ...]
    slots: tuple[Slot, ...]
    order: tuple[int, ...]
    width: int
    height: int

    def fill(self, texts: Sequence[object]) -> Markup:
        """The plot's markup with ``texts`` in its slots: the lines (``svg_text``) escaped in one go, joined by NULs
        (which no line holds and escaping leaves alone), a label on its own."""
        if not self.order:
            return Markup(self.parts[0])
        lines = [_line(texts[s.index], s.limit) for s in self.slots if s.limit is not None]
        escaped = iter(str(escape("\0".join(lines))).split("\0"))
        shown = [
            next(escaped) if s.limit is not None else texts[s.index] if s.markup else str(escape(texts[s.index]))
            for s in self.slots
        ]
        filled = chain.from_iterable(zip(self.parts, [shown[i] for i in self.order], strict=False))
        return Markup("".join(filled) + self.parts[-1])


def skeleton(pieces: Iterable[Piece], width: int, height: int) -> Skeleton:
    """A ``Skeleton`` of ``pieces`` (markup and slots in order), adjacent markup joined."""
    parts: list[str] = []
    slots: dict[Slot, int] = {}
    order: list[int] = []
    run: list[str] = []
    for p in pieces:
        if isinstance(p, Slot):
            parts.append("".join(run))
            order.append(slots.setdefault(p, len(slots)))
            run = []
        else:
            run.append(p)
    parts.append("".join(run))
    return Skeleton(tuple(parts), tuple(slots), tuple(order), width, height)
