"""A throw-away network namespace with only a loopback interface, and the processes started inside it.

Everything the lab runs lives in one namespace named ``ghostcap-lab-<pid>-<n>``. The namespace has no
interface but ``lo``, so no packet can leave it. ``Namespace.close()`` stops the processes *this* object
started (by PID), deletes the namespace and its ``/etc/netns/<name>`` directory; it runs from ``__exit__``
and, as a last resort, from ``atexit``.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import IO, Any

_counter = itertools.count(1)
_open: set[Namespace] = set()


def require_root() -> None:
    """Fail with a clear message when the lab cannot create namespaces."""
    if os.geteuid() != 0:
        raise PermissionError("the capture lab must run as root (it creates a network namespace)")
    for tool in ("ip", "tcpdump", "tshark", "dnsmasq", "faketime", "nft"):
        if shutil.which(tool) is None:
            raise FileNotFoundError(f"{tool} not found; install tests/lab/apt-packages.txt")


class Namespace:
    """A network namespace with ``lo`` up; use as a context manager."""

    def __init__(self, resolver: str | None = "127.0.0.1") -> None:
        self.name = f"ghostcap-lab-{os.getpid()}-{next(_counter)}"
        self.etc = Path("/etc/netns") / self.name
        self.resolver = resolver
        self.procs: list[subprocess.Popen[Any]] = []
        self.created = False

    # -- lifecycle -------------------------------------------------------------------------------------
    def __enter__(self) -> Namespace:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        _open.add(self)
        # Files in /etc/netns/<name>/ are bind-mounted over /etc/<file> by `ip netns exec`, so the
        # processes inside see our resolver and a minimal hosts file, never the host's.
        self.etc.mkdir(parents=True, exist_ok=True)
        resolv = "# ghostcap lab\n"
        if self.resolver:
            resolv += f"nameserver {self.resolver}\n"
        resolv += "options timeout:1 attempts:2\n"
        (self.etc / "resolv.conf").write_text(resolv)
        (self.etc / "hosts").write_text("127.0.0.1 localhost\n::1 localhost\n")
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        self.created = True
        self.run(["ip", "link", "set", "lo", "up"])

    def close(self) -> None:
        for proc in reversed(self.procs):
            stop(proc)
        self.procs.clear()
        if self.created:
            subprocess.run(["ip", "netns", "del", self.name], check=False)
            self.created = False
        shutil.rmtree(self.etc, ignore_errors=True)
        _open.discard(self)

    # -- running things inside -------------------------------------------------------------------------
    def argv(self, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]

    def run(self, argv: list[str], *, input: str | None = None, timeout: float = 20) -> str:
        done = subprocess.run(
            self.argv(argv), input=input, capture_output=True, text=True, timeout=timeout, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
        return done.stdout

    def popen(
        self,
        argv: list[str],
        *,
        stdout: int | IO[Any] | None = subprocess.PIPE,
        stderr: int | IO[Any] | None = subprocess.PIPE,
        env: dict[str, str] | None = None,
    ) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            self.argv(argv), stdout=stdout, stderr=stderr, text=True, env=env, stdin=subprocess.DEVNULL
        )
        self.procs.append(proc)
        return proc


def stop(proc: subprocess.Popen[Any], sig: int = signal.SIGTERM, timeout: float = 5) -> None:
    """Stop one process we started, by its PID: ``sig`` first, SIGKILL if it does not exit."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait(timeout=timeout)


def wait_for_text(path: Path, needle: str, timeout: float, proc: subprocess.Popen[Any]) -> str:
    """Poll the log file ``path`` until it contains ``needle``; return its text."""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = path.read_text(errors="replace") if path.exists() else ""
        if needle in text:
            return text
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    raise TimeoutError(f"{path.name}: did not see {needle!r} (exit code {proc.poll()}): {text[-2000:]!r}")


@atexit.register
def _cleanup() -> None:
    for ns in list(_open):
        ns.close()
