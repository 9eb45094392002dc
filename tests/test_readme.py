"""Every command README.md shows works as written.

- Each ``sh`` block runs with bash in a fresh directory holding the bundled ``captures/``, with ``ghostcap`` on the
  PATH (a shim for ``python -m analyzer`` on this checkout). A ghostcap command may exit with a verdict status (0,
  1 a fault, 4 inconclusive); any other status, any failing other command, an ``error:`` line, a traceback or an
  unknown command fails the test. Commands that cannot run here are in ``NOT_RUN`` with the reason, each checked
  instead for what it relies on (its make target, the package metadata); a block may lose only those lines.
- Each ``text`` block line that starts with ``ghostcap`` is a synopsis: the command exists and every option it
  shows is in its ``--help``. Each ``text`` line ``captures/X: ...`` is sample output: ``ghostcap analyze
  captures/X`` prints exactly that line.
- Every ``make TARGET`` the README names is a target of the Makefile.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tomllib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from click.testing import CliRunner

from analyzer.cli import cli
from tests.conftest import PROJECT_CAPTURES, ROOT

README = (ROOT / "README.md").read_text()
MAKEFILE = (ROOT / "Makefile").read_text()
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
VERDICT_STATUSES = {0, 1, 4}  # healthy, a fault was found, inconclusive: what a working ghostcap command exits with


def _make_target(name: str) -> Callable[[], None]:
    def check() -> None:
        assert re.search(rf"^{re.escape(name)}:", MAKEFILE, re.MULTILINE), f"no make target {name}"

    return check


def _extra(name: str) -> Callable[[], None]:
    def check() -> None:
        assert name in PYPROJECT["project"]["optional-dependencies"], f"no extra {name} in pyproject.toml"

    return check


def _script() -> None:
    assert PYPROJECT["project"]["scripts"]["ghostcap"] == "analyzer.cli:main"
    from analyzer.cli import main  # the entry point pipx puts on the PATH

    assert callable(main)


def _venv() -> None:
    assert re.search(r"^VENV := \.venv$", MAKEFILE, re.MULTILINE)  # make demo's venv, where activate lives
    assert re.search(r"^\$\(BIN\)/python:\n\t\$\(PY\) -m venv \$\(VENV\)$", MAKEFILE, re.MULTILINE)


# command (as the README writes it, comment left out) → (why it does not run here, what is checked instead)
NOT_RUN: dict[str, tuple[str, Callable[[], None]]] = {
    "make demo": ("creates .venv and installs packages from the network", _make_target("demo")),
    "make test": ("installs everything, then runs this whole suite, this test included", _make_target("test")),
    ". .venv/bin/activate": ("needs the .venv make demo creates; here a shim puts ghostcap on the PATH", _venv),
    "pipx install .": ("installs from the network into the user's pipx home", _script),
    "pip install -e '.[dask]'": ("installs from the network", _extra("dask")),
    "pip install -e '.[parquet]'": ("installs from the network", _extra("parquet")),
    "pip install -e '.[verify]'": ("installs from the network", _extra("verify")),
}


def _prepare_triage_db(where: Path) -> None:
    """The store a ``ghostcap triage`` run leaves (made from one lab capture's report: a triage run starts worker
    processes and takes longer than this test may)."""
    from analyzer.config import Settings
    from analyzer.engine import analyze
    from analyzer.report.build import report_dict
    from analyzer.triage.store import CaptureMeta, Store, charger_rows

    cap = PROJECT_CAPTURES / "gateway_mixed.pcap"
    report = report_dict(analyze(str(cap), Settings()))
    store = Store(where / "triage" / "triage.db")
    try:
        store.put(CaptureMeta(cap.name, str(cap), report["capture"]["sha256"]), charger_rows(report))
    finally:
        store.close()


# a file a block reads that an earlier step of the user's would have made → how the test makes it
PREPARED: dict[str, Callable[[Path], None]] = {"triage/triage.db": _prepare_triage_db}


def blocks(lang: str) -> list[str]:
    return [m.group(2) for m in FENCE.finditer(README) if m.group(1) == lang]


def logical_lines(body: str) -> list[str]:
    """Lines joined at a trailing backslash, without blank lines and comment-only lines."""
    out: list[str] = []
    pending = ""
    for raw in body.splitlines():
        line = pending + raw
        if line.rstrip().endswith("\\"):
            pending = line.rstrip()[:-1] + " "
            continue
        pending = ""
        if line.strip() and not line.lstrip().startswith("#"):
            out.append(line)
    return out


def command_of(line: str) -> str:
    """The line without its trailing comment (a ``#`` outside quotes after a space), whitespace collapsed."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return " ".join(line[:i].split())
    return " ".join(line.split())


SH_BLOCKS = blocks("sh")


def test_every_not_run_command_is_in_the_readme_and_what_it_relies_on_exists() -> None:
    shown = {command_of(line) for body in SH_BLOCKS for line in logical_lines(body)}
    for command, (reason, check) in NOT_RUN.items():
        assert reason
        assert command in shown, f"NOT_RUN lists {command!r}, which README.md no longer shows"
        check()


def test_every_make_target_named_is_in_the_makefile() -> None:
    named = set(re.findall(r"`make ([a-z][\w-]*)", README)) | {
        c.split()[1]
        for body in SH_BLOCKS
        for line in logical_lines(body)
        if (c := command_of(line)).startswith("make ")
    }
    assert {"demo", "test", "lab", "bench", "setup"} <= named
    for target in named:
        _make_target(target)()


def _shim(bin_dir: Path, log: Path) -> None:
    bin_dir.mkdir()
    shim = bin_dir / "ghostcap"
    shim.write_text(
        "#!/bin/sh\n"
        f'PYTHONPATH={shlex.quote(str(ROOT))} {shlex.quote(sys.executable)} -m analyzer "$@"\n'
        "rc=$?\n"
        f'echo "$rc ghostcap $*" >> {shlex.quote(str(log))}\n'
        "exit $rc\n"
    )
    shim.chmod(0o755)


def prepare_block(body: str, where: Path) -> None:
    """``where`` for one ``sh`` block: the captures, the files it needs, and its ``ghostcap`` shim. Every block is
    prepared before any runs: writing an executable while another thread forks lets the child inherit the file
    open for writing, and running the shim then fails with "Text file busy" (exit status 126)."""
    where.mkdir()
    (where / "captures").symlink_to(PROJECT_CAPTURES)
    for path, make in PREPARED.items():
        if path in body:
            make(where)
    _shim(where / ".bin", where / ".ghostcap.log")


def run_block(body: str, where: Path) -> tuple[str, list[str], list[str], int]:
    """Run one ``sh`` block as written (``NOT_RUN`` lines left out) in ``where`` (``prepare_block``): (stderr,
    failing commands, ghostcap runs, ghostcap lines in the block)."""
    log, errors = where / ".ghostcap.log", where / ".errors.log"
    lines = [line for line in logical_lines(body) if command_of(line) not in NOT_RUN]
    script = f"set -u\ntrap 'echo \"$? $BASH_COMMAND\" >> {shlex.quote(str(errors))}' ERR\n" + "\n".join(lines) + "\n"
    env = {**os.environ, "PATH": f"{where / '.bin'}{os.pathsep}{os.environ['PATH']}", "GHOSTCAP_DEBUG": ""}
    proc = subprocess.run(
        ["bash", "-c", script], cwd=where, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    ran = log.read_text().splitlines() if log.exists() else []
    failed = errors.read_text().splitlines() if errors.exists() else []
    return proc.stderr, failed, ran, sum(1 for line in lines if command_of(line).startswith("ghostcap "))


def test_every_sh_block_runs_as_written(tmp_path: Path) -> None:
    runnable = [b for b in SH_BLOCKS if any(command_of(line) not in NOT_RUN for line in logical_lines(b))]
    assert len(runnable) >= 4
    wheres = [tmp_path / f"block{i}" for i in range(len(runnable))]
    for body, where in zip(runnable, wheres, strict=True):
        prepare_block(body, where)  # all before any block runs (see prepare_block)
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(run_block, runnable, wheres))
    for body, (stderr, failed, ran, expected) in zip(runnable, results, strict=True):
        for entry in failed:
            status, command = entry.split(" ", 1)
            assert command.startswith("ghostcap "), (body, entry, stderr)
            assert int(status) in VERDICT_STATUSES, (body, entry, stderr)
        assert len(ran) >= expected, (body, ran, stderr)  # every ghostcap line ran
        for entry in ran:
            assert int(entry.split(" ", 1)[0]) in VERDICT_STATUSES, (body, entry, stderr)
        for bad in ("error:", "Traceback", "command not found", "No such file"):
            assert bad not in stderr, (body, stderr)


def _synopses() -> list[str]:
    out = []
    for body in blocks("text"):
        for line in body.splitlines():
            if line.startswith("ghostcap "):
                out.append(line)
            elif out and line.startswith(" ") and line.strip().startswith("["):
                out[-1] += " " + line.strip()  # a synopsis continued on the next line
    return out


@pytest.mark.parametrize("synopsis", _synopses(), ids=lambda s: " ".join(s.split()[:2]))
def test_every_synopsis_names_a_command_and_options_it_has(synopsis: str) -> None:
    name = synopsis.split()[1]
    assert name in cli.commands, synopsis
    help_text = CliRunner().invoke(cli, [name, "--help"]).stdout
    for option in re.findall(r"(?<![\w/-])(--?[a-zA-Z][\w-]*)", synopsis.split("#", 1)[0]):
        assert re.search(rf"(?<![\w-]){re.escape(option)}\b", help_text), (synopsis, option)


def test_sample_output_is_what_ghostcap_prints(tmp_path: Path) -> None:
    samples = [ln for body in blocks("text") for ln in body.splitlines() if re.match(r"captures/\S+: ", ln)]
    assert samples
    printed: dict[str, list[str]] = {}
    cwd = Path.cwd()
    os.chdir(ROOT)  # the sample lines name captures/... relative to the repository, as the README runs them
    try:
        for line in samples:
            cap = line.split(": ", 1)[0]
            if cap not in printed:
                res = CliRunner().invoke(cli, ["analyze", cap, "-q", "-o", str(tmp_path), "--format", "json"])
                assert res.exit_code in VERDICT_STATUSES, res.output
                printed[cap] = res.stdout.splitlines()
            assert line in printed[cap], (line, printed[cap])
    finally:
        os.chdir(cwd)
