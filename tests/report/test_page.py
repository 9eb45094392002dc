"""The pages' Jinja environment (``analyzer.report.page``): its quicker attribute lookup and its quicker path through
``visible`` give what jinja2's own lookup and the full ``visible`` give."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from jinja2 import Environment, FileSystemLoader, StrictUndefined, UndefinedError
from jinja2.compiler import CodeGenerator
from markupsafe import Markup

from analyzer.report.page import (
    MAX_PAYLOAD,
    MAX_TEXT,
    Block,
    PageEnvironment,
    cell,
    shown,
    template,
    template_env,
    texts_cells,
    visible,
)
from tests.report import sample_reports as samples

INVISIBLE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff"
    "\ufff9-\ufffb\ud800-\udfff]"
)


def reference_visible(value: Any) -> Any:
    """``visible`` as it was, without its quick path."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Markup) or not isinstance(value, str):
        return value
    limit = MAX_PAYLOAD if isinstance(value, Block) else MAX_TEXT
    if len(value) > limit:
        value = f"{value[:limit]}… [{len(value) - limit} more characters in the JSON report]"
    return INVISIBLE.sub(lambda m: f"[U+{ord(m.group()):04X}]", value)


@given(st.text())
@example(samples.RTL + samples.CONTROL + samples.SCRIPT)
@example("x" * MAX_TEXT)
@example("x" * (MAX_TEXT + 1))
@example("\u2060\u206f\u180e\ufff9\u00ad")
@example("a\tb\nc")
def test_visible_is_the_full_check(text: str) -> None:
    assert visible(text) == reference_visible(text)
    assert type(visible(text)) is type(reference_visible(text))
    assert visible(Block(text)) == reference_visible(Block(text))


@pytest.mark.parametrize("value", [None, True, False, 0, 12, 1.5, Markup("<b>x</b>"), Block("{\n}"), ""])
def test_visible_of_other_values(value: Any) -> None:
    assert visible(value) == reference_visible(value)
    assert cell(value) == str(Markup.escape(reference_visible(value)))


def test_every_invisible_character_is_unprintable() -> None:
    """The quick path takes printable text as it is: no character ``visible`` shows as [U+XXXX] is printable."""
    printable = [hex(c) for c in range(0x110000) if INVISIBLE.match(chr(c)) and chr(c).isprintable()]
    assert printable == []


class Thing:
    name = "attribute"

    def __getitem__(self, key: str) -> str:
        return f"item {key}"


@pytest.mark.parametrize(
    ("obj", "attribute"),
    [
        ({"name": "x"}, "name"),
        ({"items": "the key"}, "items"),  # a dict's own attribute wins, as in jinja2
        ({"get": 1, "keys": 2}, "keys"),
        ({"__class__": "k"}, "__class__"),
        ({}, "name"),
        ({1: "x"}, "name"),
        (Thing(), "name"),
        (Thing(), "other"),
        ([1, 2], "name"),
        ("text", "upper"),
        (None, "name"),
    ],
)
def test_attribute_lookup_is_jinja2s(obj: Any, attribute: str) -> None:
    plain = Environment(undefined=StrictUndefined)
    quick = PageEnvironment(undefined=StrictUndefined)
    expected, got = plain.getattr(obj, attribute), quick.getattr(obj, attribute)
    if isinstance(expected, StrictUndefined):
        assert isinstance(got, StrictUndefined)
        with pytest.raises(UndefinedError) as a:
            str(expected)
        with pytest.raises(UndefinedError) as b:
            str(got)
        assert str(a.value) == str(b.value)
    else:
        assert got == expected


def test_the_template_is_compiled_once(tmp_path: Any) -> None:
    (tmp_path / "t.html.j2").write_text("{{ x.name }} {{ x.items is defined }} {{ y }}")
    t = template(tmp_path, "t.html.j2")
    assert template(tmp_path, "t.html.j2") is t
    assert t.render(x={"name": "<b>", "items": 1}, y=None) == "&lt;b&gt; yes —"
    with pytest.raises(UndefinedError):
        t.render(x={}, y=1)


values = st.one_of(st.text(max_size=30), st.none(), st.integers(), st.booleans(), st.floats(allow_nan=False))


@given(st.lists(values, max_size=30))
@example(["tcp", 1, None, "a&b"])
@example(["x" * (MAX_TEXT + 1), "y"])
@example([samples.RTL, True, 1.5])
@example(["plain", "text", None, "—"])
@example(['say "hi" & <b>', "it's", "\0", None])
@example(["", "", ""])
@example([Markup("<b>"), "x"])
@example([Block("x" * (MAX_TEXT + 1)), "y"])
def test_texts_are_cell_by_cell(texts: list[Any]) -> None:
    assert texts_cells(texts) == [cell(v) for v in texts]


@given(values)
@example(samples.RTL)
@example(samples.CONTROL)
@example(samples.SCRIPT + samples.IMG)
@example("x" * (MAX_TEXT + 1))
@example('it\'s "quoted" & <b>')
@example(Markup("<b>x</b>"))
@example(Markup(samples.RTL + "<i>&amp;</i>" + samples.CONTROL))
@example(Block("{\n}"))
@example(2**70)
@example(1e300)
@example(True)
@example(None)
def test_shown_is_cell(value: Any) -> None:
    """What the pages' compiled ``{{ }}`` writes (``shown``) is ``cell``: ``visible``, then escaped."""
    assert str(shown(value)) == cell(value) == str(Markup.escape(reference_visible(value)))


class StockPageEnvironment(PageEnvironment):
    """The pages' environment with jinja2's own compiler: each ``{{ }}`` as ``escape(environment.finalize(...))``."""

    code_generator_class = CodeGenerator


def _stock_env(templates: Path) -> Environment:
    quick = template_env(templates)
    return StockPageEnvironment(
        loader=FileSystemLoader(templates),
        autoescape=quick.autoescape,
        undefined=StrictUndefined,
        finalize=visible,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@pytest.mark.parametrize("name", sorted(samples.SAMPLES))
def test_the_report_page_is_what_jinja2s_compiler_writes(name: str) -> None:
    """Every sample report's page, and the page with every text made hostile, rendered by the template compiled with
    ``PageCodeGenerator`` and by jinja2's own compiler: the same text."""
    from analyzer.report.html import TEMPLATES, _view

    quick = template(TEMPLATES, "report.html.j2")
    source = template_env(TEMPLATES).loader.get_source(template_env(TEMPLATES), "report.html.j2")[0]
    assert "environment.shown(" in template_env(TEMPLATES).compile(source, raw=True)
    stock = _stock_env(TEMPLATES).get_template("report.html.j2")
    assert "environment.shown(" not in _stock_env(TEMPLATES).compile(source, raw=True)
    view = _view(samples.SAMPLES[name]())
    assert quick.render(**view) == stock.render(**view)


def test_a_template_without_autoescape_or_finalize_is_written_as_jinja2_does(tmp_path: Path) -> None:
    (tmp_path / "t.txt").write_text("{{ x }} {% autoescape true %}{{ x }}{% endautoescape %}")
    env = PageEnvironment(loader=FileSystemLoader(tmp_path), autoescape=False)
    assert env.get_template("t.txt").render(x="<b>") == "<b> &lt;b&gt;"
    with_finalize = PageEnvironment(loader=FileSystemLoader(tmp_path), autoescape=False, finalize=visible)
    assert with_finalize.get_template("t.txt").render(x=None) == "— —"
    assert "environment.shown(" not in env.compile("{{ x }}", raw=True)


LOOKUPS = (
    "{{ x.name }}|{{ x.items is defined }}|{{ x.keys is defined }}|{{ (x.inner or {}).name }}|{{ x.name.upper() }}"
)


@pytest.mark.parametrize(
    "x",
    [
        {"name": "<b>", "items": 1, "inner": {"name": None}},
        {"name": 7, "keys": "k", "inner": None},
        {"name": {"name": "nested"}},
        {"name": "x", "inner": Thing()},
        Thing(),
        {1: "x", "name": ""},
        {},
        [1],
        None,
        "text",
    ],
)
def test_attribute_lookup_in_place_is_jinja2s(tmp_path: Path, x: Any) -> None:
    """A lookup the pages' compiler writes in place (``PageCodeGenerator.visit_Getattr``) gives what jinja2's
    compiler and ``PageEnvironment.getattr`` give: the value, or the same error."""
    (tmp_path / "t.html.j2").write_text(LOOKUPS)
    quick = template_env(tmp_path)
    assert "page_getattr_obj :=" in quick.compile(LOOKUPS, raw=True)
    assert "page_getattr_obj" not in _stock_env(tmp_path).compile(LOOKUPS, raw=True)
    outcomes = []
    for env in (quick, _stock_env(tmp_path)):
        try:
            outcomes.append(env.get_template("t.html.j2").render(x=x))
        except Exception as e:  # noqa: BLE001 - the same error either way
            outcomes.append(f"{type(e).__name__}: {e}")
    assert outcomes[0] == outcomes[1]


def test_a_dicts_own_attribute_is_looked_up_as_jinja2_does(tmp_path: Path) -> None:
    source = "{{ x.items }}{{ x.get }}"
    assert "page_getattr_obj" not in template_env(tmp_path).compile(source, raw=True)


@given(st.lists(st.one_of(st.text(max_size=8), st.sampled_from(["a&b", "x" * 101, samples.RTL, "—"])), max_size=40))
def test_shown_remembers_the_same_texts(texts: list[str]) -> None:
    """A text ``shown`` remembers, and one it wrote after its memory was emptied, is still ``cell``."""
    from analyzer.report import page

    for kept in (page.SHOWN_KEPT, 3):
        page.SHOWN_KEPT, old = kept, page.SHOWN_KEPT
        try:
            page._SHOWN.clear()
            for text in texts + texts[::-1]:
                assert shown(text) == cell(text)
            assert len(page._SHOWN) <= page.SHOWN_KEPT
        finally:
            page.SHOWN_KEPT = old
