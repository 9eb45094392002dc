"""Runtime dependencies are what ghostcap imports at run time, read from the source: every third-party module the
``analyzer`` package imports comes from a declared dependency (or one of theirs), every declared dependency is
used, test-only packages are not among them, and the optional parts (Dask, Parquet) are extras imported only when
their command runs, which says in one line what to install when they are missing."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions, requires
from pathlib import Path

import pytest
from click.testing import CliRunner

from analyzer import extras
from analyzer.cli import cli
from tests.conftest import PROJECT_CAPTURES, ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
TEST_ONLY = {"h11", "wsproto", "pytest", "hypothesis", "scapy", "jsonschema", "playwright", "psutil", "ruff"}
READ_AS_DATA = {"ocpp": "analyzer/decoders/ocpp_schema.py"}  # files("ocpp"): its JSON schemas, no code imported


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;(]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _closure(requirements: set[str]) -> set[str]:
    """The distributions ``requirements`` name and everything they require, as installed here (a requirement's
    extras, ``dask[distributed]``, included)."""
    seen: set[str] = set()
    todo = list(requirements)
    while todo:
        req = todo.pop()
        name = _name(req)
        wanted = set(re.findall(r"[\w-]+", m.group(1))) if (m := re.search(r"\[([^\]]*)\]", req)) else set()
        if (name, frozenset(wanted)) in seen:
            continue
        seen.add((name, frozenset(wanted)))  # type: ignore[arg-type]
        for r in requires(name) or ():
            extra = re.search(r"""extra\s*==\s*["']([\w-]+)["']""", r)
            if extra is None or extra.group(1) in wanted:
                todo.append(r.split(";")[0])
    return {n for n, _ in seen}  # type: ignore[misc]


def _imports() -> list[tuple[str, str, bool]]:
    """(top-level module, file, imported at module level) for every import in ``analyzer``."""
    out = []
    for path in sorted((ROOT / "analyzer").rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        nested = {id(n) for f in ast.walk(tree) if isinstance(f, ast.FunctionDef) for n in ast.walk(f)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                mods = [node.module]
            else:
                continue
            rel = str(path.relative_to(ROOT))
            out += [(m.split(".")[0], rel, id(node) not in nested) for m in mods]
    return out


def _third_party() -> list[tuple[str, str, bool]]:
    local = {"analyzer", "__future__"}
    return [(m, f, top) for m, f, top in _imports() if m not in sys.stdlib_module_names and m not in local]


def _dist(module: str) -> str:
    (dist,) = {_name(d) for d in packages_distributions()[module]}
    return dist


RUNTIME_REQS = set(PYPROJECT["project"]["dependencies"])
OPTIONAL_REQS = {k: set(v) for k, v in PYPROJECT["project"]["optional-dependencies"].items()}
RUNTIME = {_name(r) for r in RUNTIME_REQS}
OPTIONAL = {k: {_name(r) for r in v} for k, v in OPTIONAL_REQS.items()}


def test_every_import_comes_from_a_declared_dependency() -> None:
    runtime = _closure(RUNTIME_REQS)
    optional = _closure(set().union(*(OPTIONAL_REQS[e] for e in extras.EXTRAS))) - runtime
    for module, where, top in _third_party():
        dist = _dist(module)
        if top:  # importing the module imports it: the default install must have it
            assert dist in runtime, f"{where} imports {module} ({dist}) at module level: not a runtime dependency"
        else:
            assert dist in runtime | optional, f"{where} imports {module} ({dist}): declared nowhere"


def test_every_runtime_dependency_is_used_and_none_is_test_only() -> None:
    used = {_dist(m) for m, _, _ in _third_party()}
    for dist in RUNTIME:
        if dist in READ_AS_DATA:
            assert f'files("{dist}")' in (ROOT / READ_AS_DATA[dist]).read_text()
            continue
        assert dist in used, f"{dist} is a runtime dependency that analyzer never imports"
    assert not RUNTIME & TEST_ONLY
    assert {"h11", "wsproto"} <= OPTIONAL["dev"]


def test_extras_are_imported_only_by_the_commands_that_need_them() -> None:
    for extra, (modules, _) in extras.EXTRAS.items():
        assert {_name(m) for m in modules} <= _closure(OPTIONAL_REQS[extra]), extra
        (self_ref,) = [r for r in OPTIONAL_REQS["dev"] if _name(r) == "ghostcap"]  # dev (CI) installs every extra
        assert extra in re.findall(r"[\w-]+", self_ref.split("[", 1)[1]), extra
        lazy = [(f, top) for m, f, top in _third_party() if m in modules]
        assert lazy, extra
        assert not [f for f, top in lazy if top], f"{extra}: imported at module level"


@pytest.fixture
def without(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Pretend the given modules are not installed (``extras.missing`` asks ``find_spec``)."""

    def hide(*modules: str) -> None:
        real = extras.find_spec
        monkeypatch.setattr(extras, "find_spec", lambda name: None if name in modules else real(name))

    return hide


def test_triage_on_dask_without_dask_says_what_to_install(without) -> None:  # type: ignore[no-untyped-def]
    without("distributed")
    res = CliRunner().invoke(
        cli,
        ["triage", str(PROJECT_CAPTURES / "tcp_refused.pcap"), "--scheduler", "tcp://127.0.0.1:9"],
        prog_name="ghostcap",
    )
    assert res.exit_code == 2
    assert res.stderr == (
        "error: --scheduler runs on Dask: distributed is not installed: pip install 'ghostcap[dask]' "
        "(see: ghostcap triage --help)\n"
    )


def test_triage_without_parquet_writes_everything_else(without, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from analyzer.triage.command import _finish
    from analyzer.triage.store import Store

    without("pyarrow", "pandas")
    said: list[str] = []
    store = Store(tmp_path / "triage.db")
    try:
        _finish(store, tmp_path, said.append)
    finally:
        store.close()
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("triage.db")) == [
        "fleet.json",
        "fleet.md",
        "incidents.csv",
        "index.html",
        "results.csv",
    ]
    assert said[0] == (
        "results.parquet not written: pandas and pyarrow are not installed: pip install 'ghostcap[parquet]'"
    )
