#!/usr/bin/env python3
"""Time ``ghostcap flows`` on the packet-layer reproducers of ``../shared/robustness/`` (read in place).

One child process per capture (stdout to /dev/null): wall time, CPU time (user + system) and peak RSS from
``os.wait4``, the exit status, and the warnings that name a budget. CPU time is the figure to compare on a shared
machine; wall time follows the load. A report, not a test: the exit status is 0 whatever the figures.

    .venv/bin/python bench/robustness_packets.py                 # the packet-layer reproducers
    .venv/bin/python bench/robustness_packets.py some.pcap ...   # any captures instead
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ROBUSTNESS = REPO.parent / "shared" / "robustness"
PATTERNS = ("hang_tcp_ooo_*", "hang_ip_fragments_*", "hang_syn_port_reuse_*", "overmem_syn_flood_*")
TIMEOUT_S = 300


def run(path: Path) -> str:
    """One child process (under coreutils ``timeout``): its figures, exit status and budget warnings, one line."""
    argv = ["timeout", str(TIMEOUT_S), sys.executable, "-m", "analyzer", "flows", str(path), "--format", "json"]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    with tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err, env=env, cwd=REPO)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        err.seek(0)
        budget = [w for w in err.read().decode(errors="replace").splitlines() if "budget" in w]
    code = os.waitstatus_to_exitcode(status)
    return (
        f"{path.name:<50} {wall:7.2f}s wall {usage.ru_utime + usage.ru_stime:7.2f}s cpu "
        f"{usage.ru_maxrss / 1024:6.0f} MiB  exit {code}{' (timed out)' if code == 124 else ''}"
        + "".join(f"\n    {w[:150]}" for w in budget)
    )


def main() -> None:
    paths = [Path(p) for p in sys.argv[1:]] or sorted(p for pat in PATTERNS for p in ROBUSTNESS.glob(pat))
    for path in paths:
        print(run(path), flush=True)


if __name__ == "__main__":
    main()
