"""How many processes ``ghostcap analyze --workers auto`` (the default) reads a capture file with: one for a small
capture (a process to start is not paid back), else as many as this process has cores, at most
``budgets.AUTO_WORKERS`` (``analyzer.parallel``)."""

from __future__ import annotations

import os
from pathlib import Path

from analyzer import budgets
from analyzer.digest import regular

AUTO = 0  # ``--workers auto``
CPU_MAX = Path("/sys/fs/cgroup/cpu.max")  # cgroup v2: "QUOTA PERIOD" (µs), or "max PERIOD" without a quota


def auto_workers(path: str | Path) -> int:
    """``--workers auto`` for ``path``: standard input, a pipe and a file under ``budgets.AUTO_WORKERS_BYTES`` are
    read by one process; a bigger file by ``usable_cores()``, at most ``budgets.AUTO_WORKERS``."""
    if str(path) == "-" or not regular(path):
        return 1
    try:
        size = os.stat(path).st_size
    except (OSError, ValueError):
        return 1
    if size < budgets.AUTO_WORKERS_BYTES:
        return 1
    return max(1, min(usable_cores(), budgets.AUTO_WORKERS))


def usable_cores(cpu_max: Path = CPU_MAX) -> int:
    """The cores this process may run on (its CPU affinity), no more than a cgroup's CPU quota allows (a container
    given two CPUs of a 64-core host has 64 in its affinity)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    try:
        quota, period = cpu_max.read_text().split()[:2]
        if quota != "max":
            cores = min(cores, int(quota) // int(period))
    except (OSError, ValueError):
        pass  # no cgroup v2 quota to read: the affinity stands
    return max(1, cores)
