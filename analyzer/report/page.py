"""The Jinja environment of ghostcap's HTML pages (a capture's report, the fleet summary) and what every value
passes through on its way into a page.

Every ``{{ }}`` goes through ``visible`` (jinja2 ``finalize``) and then autoescaping: ``None`` shows as a dash, a
boolean as yes or no, invisible and direction-changing characters as ``[U+XXXX]``, and text is bounded. ``cell``
is the same for markup written in Python rather than by the template.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template, select_autoescape
from jinja2.compiler import CodeGenerator, Frame, optimizeconst
from jinja2.nodes import Expr, Getattr
from markupsafe import Markup, escape

from analyzer.budgets import REPORT_SHOWN_LONGEST, REPORT_SHOWN_TEXTS

MAX_TEXT = 2000  # characters of any one value on the page
MAX_PAYLOAD = 8000  # characters of one pretty-printed OCPP payload

_INVISIBLE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff"
    "\ufff9-\ufffb\ud800-\udfff]"
)


class Block(str):
    """A text shown whole up to ``MAX_PAYLOAD`` characters (a pretty-printed payload), not ``MAX_TEXT``."""

    __slots__ = ()


def visible(value: Any) -> Any:
    """jinja2 ``finalize``: every ``{{ }}`` passes here before autoescaping. ``None`` shows as a dash, a boolean as
    yes or no; in text, invisible and direction-changing characters (and lone surrogates, which UTF-8 cannot even
    encode) show as ``[U+XXXX]``, and text past ``MAX_TEXT`` characters is cut with a note."""
    if value is None:
        return "—"
    if type(value) is str and value.isprintable() and len(value) <= MAX_TEXT:
        return value  # the common case: every character ``_INVISIBLE`` names is unprintable, so nothing to show
    if isinstance(value, bool):  # never Python's True/False in the page
        return "yes" if value else "no"
    if isinstance(value, Markup) or not isinstance(value, str):
        return value
    limit = MAX_PAYLOAD if isinstance(value, Block) else MAX_TEXT
    if len(value) > limit:
        value = f"{value[:limit]}… [{len(value) - limit} more characters in the JSON report]"
    return _INVISIBLE.sub(lambda m: f"[U+{ord(m.group()):04X}]", value)


def cell(value: Any) -> str:
    """One value as the template writes a ``{{ }}`` (``visible``, then escaped)."""
    return str(escape(visible(value)))


_SPECIAL = re.compile("[&<>'\"]")  # the characters escaping replaces


SHOWN_KEPT = REPORT_SHOWN_TEXTS  # (module names, so a test can change them)
SHOWN_LONGEST = REPORT_SHOWN_LONGEST
_SHOWN: dict[str, str] = {}


def shown(value: Any) -> str:
    """``cell``: what a ``{{ }}`` of the pages writes (``PageCodeGenerator``), quicker for a printable text that
    escaping leaves alone (most of a page's values) and for an ``int``: the value as it is, its digits. A text is
    remembered up to ``SHOWN_LONGEST`` characters (``_SHOWN``, emptied when it holds ``SHOWN_KEPT``): nine in ten
    of a page's texts were on another page of the same fleet (verdicts, layers, addresses, the CSMS). ``Markup``
    (a plot, a table's rows, tens of kilobytes) is written as it is, not copied."""
    if type(value) is str:
        known = _SHOWN.get(value)
        if known is None:
            known = _shown_text(value)
            if len(value) <= SHOWN_LONGEST:
                if len(_SHOWN) >= SHOWN_KEPT:
                    _SHOWN.clear()
                _SHOWN[value] = known
        return known
    if type(value) is int:
        return str(value)
    if type(value) is Markup:  # markup written in Python (a plot, a table's rows): ``escape`` would copy it
        return value
    return escape(visible(value))


def _shown_text(value: str) -> str:
    """``cell`` of a text."""
    if value.isprintable() and len(value) <= MAX_TEXT:
        return value if _SPECIAL.search(value) is None else str(escape(value))
    return str(escape(visible(value)))


def number_cell(value: Any) -> str:
    """``cell`` of a value that is mostly an ``int`` (a frame number): quicker for that."""
    return str(value) if type(value) is int else cell(value)


def texts_cells(values: list[Any]) -> list[str]:
    """Each of ``values`` as ``cell`` writes it. When they are all texts (or ``None``, a dash), printable and no
    longer than ``MAX_TEXT`` (the common case: ``visible`` leaves them as they are), they are escaped in one go,
    joined by a NUL (which no printable text holds and escaping leaves alone); else each passes through ``cell``."""
    if not values:
        return []
    dashed = ["—" if v is None else v for v in values] if None in values else values
    if set(map(type, dashed)) == {str} and "".join(dashed).isprintable() and max(map(len, dashed)) <= MAX_TEXT:
        return str(escape("\0".join(dashed))).split("\0")
    return [cell(v) for v in values]


_DICT_ATTRIBUTES = frozenset(dir(dict))
_FINALIZE = "environment.finalize("  # what jinja2 writes before an output's value when the environment has one


_OBJ = "page_getattr_obj"  # the local the compiled template keeps an attribute lookup's object in


class PageCodeGenerator(CodeGenerator):
    """jinja2's compiler, a ``{{ }}`` written as one call, ``environment.shown(value)`` (``shown``), where jinja2
    writes ``escape(environment.finalize(value))``: three calls and a ``Markup`` for each value, most of a page's
    rendering time once its big tables are written in Python. The same text (``shown`` is ``escape`` of
    ``visible``); an output jinja2 would write otherwise (no autoescaping, a volatile one) is written as it does.

    And an attribute lookup (``c.name``) of a plain dict that has the key is written as the key's lookup in place,
    without a call: what ``PageEnvironment.getattr`` returns for it, a page's most frequent call (a few hundred a
    page). Anything else (not a dict, no such key, a dict's own attribute) still goes through ``getattr``."""

    @optimizeconst
    def visit_Getattr(self, node: Getattr, frame: Frame) -> None:
        if not self._quick_getattr(node.attr):
            super().visit_Getattr(node, frame)
            return
        key = repr(node.attr)
        self.write(f"({_OBJ}[{key}] if type({_OBJ} := ")
        self.visit(node.node, frame)
        self.write(f") is dict and {key} in {_OBJ} else environment.getattr({_OBJ}, {key}))")

    def _quick_getattr(self, attribute: object) -> bool:
        """Whether a lookup of ``attribute`` may be written in place: the environment's ``getattr`` is
        ``PageEnvironment``'s, synchronous, and the name is not one of a dict's own attributes."""
        page = getattr(type(self.environment), "getattr", None) is PageEnvironment.getattr
        return page and not self.environment.is_async and type(attribute) is str and attribute not in _DICT_ATTRIBUTES

    def _quick(self, frame: Frame, finalize: CodeGenerator._FinalizeInfo) -> bool:
        """Whether this output is ``escape(visible(value))``, which ``shown`` writes."""
        quick = self.environment.finalize is visible and finalize.src == _FINALIZE
        return quick and frame.eval_ctx.autoescape and not frame.eval_ctx.volatile

    def _output_child_pre(self, node: Expr, frame: Frame, finalize: CodeGenerator._FinalizeInfo) -> None:
        if self._quick(frame, finalize):
            self.write("environment.shown(")
        else:
            super()._output_child_pre(node, frame, finalize)

    def _output_child_post(self, node: Expr, frame: Frame, finalize: CodeGenerator._FinalizeInfo) -> None:
        if self._quick(frame, finalize):
            self.write(")")
        else:
            super()._output_child_post(node, frame, finalize)


class PageEnvironment(Environment):
    """jinja2's environment, its attribute lookup (``c.name``) quicker on the plain dicts the pages' views are made
    of: the key straight away, where jinja2 tries the attribute first and falls back to the key on the exception.
    The same value either way (a dict's attributes are its type's, ``_DICT_ATTRIBUTES``, which go the usual way).
    Its templates write each ``{{ }}`` in one call (``PageCodeGenerator``, with ``finalize=visible``)."""

    code_generator_class = PageCodeGenerator
    shown = staticmethod(shown)

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is dict and type(attribute) is str and attribute not in _DICT_ATTRIBUTES:
            try:
                return obj[attribute]
            except KeyError:
                return self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)


@lru_cache(maxsize=4)
def template_env(templates: Path) -> Environment:
    """The Jinja environment of ghostcap's HTML pages (this report, the fleet summary): autoescape everywhere,
    strict about missing fields, invisible characters in capture strings made visible."""
    return PageEnvironment(
        loader=FileSystemLoader(templates),
        autoescape=select_autoescape(enabled_extensions=("html", "j2"), default_for_string=True, default=True),
        undefined=StrictUndefined,
        finalize=visible,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@lru_cache(maxsize=8)
def template(templates: Path, name: str) -> Template:
    """Template ``name`` of ``templates``, loaded and compiled once per process (not looked up, and its file not
    checked for changes, on every page)."""
    return template_env(templates).get_template(name)
