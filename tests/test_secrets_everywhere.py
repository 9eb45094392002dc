"""No secret in any output: the captures of ``../shared/robustness/security/secrets`` and ``leak_*.pcap`` (values in
``secrets.json``) through every output ghostcap writes, every byte searched."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from analyzer.cli import cli
from analyzer.triage.command import run_triage
from tests.conftest import ROOT

ROBUSTNESS = ROOT.parent / "shared" / "robustness"
CAPTURES = sorted((ROBUSTNESS / "security" / "secrets").glob("*.pcap")) + sorted(ROBUSTNESS.glob("leak_*.pcap"))
# A unique id is the RPC's message id, shown so a reader can pair messages; a capture that puts a secret there
# chose to publish it (``idtag_in_uid``): no policy can tell it from an ordinary id.
NOT_SECRET = {"idtag_in_uid"}


def secrets() -> dict[str, str]:
    values = json.loads((ROBUSTNESS / "security" / "secrets.json").read_text())
    return {k: v for k, v in values.items() if k not in NOT_SECRET}


@pytest.mark.skipif(not CAPTURES, reason="../shared/robustness not present")
def test_no_secret_in_any_output(tmp_path: Path) -> None:
    written: dict[str, bytes] = {}
    runner = CliRunner()
    for cap in CAPTURES:
        name = cap.name
        out = tmp_path / "analyze"
        res = runner.invoke(cli, ["analyze", str(cap), "-o", str(out)], catch_exceptions=False)
        written[f"{name} analyze stdout"] = res.stdout_bytes
        written[f"{name} analyze stderr"] = res.stderr_bytes
        for args in (
            ["timeline"],
            ["timeline", "--format", "json"],
            ["flows"],
            ["flows", "--format", "json"],
            ["export"],
        ):
            res = runner.invoke(cli, [*args, str(cap)], catch_exceptions=False)
            assert res.exit_code == 0, (args, res.output)
            written[f"{name} {' '.join(args)} stdout"] = res.stdout_bytes
            written[f"{name} {' '.join(args)} stderr"] = res.stderr_bytes
    triage_dir = tmp_path / "fleet"
    triage_dir.mkdir()
    for cap in CAPTURES:
        shutil.copy(cap, triage_dir / cap.name)
    log: list[str] = []
    run_triage([str(triage_dir)], tmp_path / "triage", workers=1, echo=log.append, tty=False)
    written["triage stderr"] = "\n".join(log).encode()
    for p in (tmp_path / "analyze").rglob("*"):
        if p.is_file():
            written[str(p.relative_to(tmp_path))] = p.read_bytes()
    for p in (tmp_path / "triage").rglob("*"):
        if p.is_file():
            written[str(p.relative_to(tmp_path))] = p.read_bytes()
    kinds = {k.rsplit(".", 1)[-1] for k in written if "." in k.rsplit("/", 1)[-1]}
    assert {"html", "json", "md", "db", "csv", "parquet"} <= kinds, kinds
    # Parquet compresses: search its values too
    import pandas as pd

    written["results.parquet values"] = pd.read_parquet(tmp_path / "triage" / "results.parquet").to_csv().encode()
    for what, value in secrets().items():
        for needle in {value.encode(), value.encode("utf-16-le"), json.dumps(value).encode()}:
            leaks = [k for k, data in written.items() if needle in data]
            assert not leaks, f"{what} ({value}) in {leaks}"
