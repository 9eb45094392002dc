"""The NSS key log format (``SSLKEYLOGFILE``), from files and from pcapng Decryption Secrets Blocks.

One secret per line: ``LABEL <client_random hex> <secret hex>``. ``CLIENT_RANDOM`` carries a TLS ≤ 1.2 master
secret (48 bytes); ``CLIENT_/SERVER_HANDSHAKE_TRAFFIC_SECRET`` and ``CLIENT_/SERVER_TRAFFIC_SECRET_0`` the TLS 1.3
traffic secrets (32 or 48 bytes, by the suite's hash). Comments (``#``) and blank lines are skipped. A malformed
line is named with its line number in ``problems`` and skipped: one bad line never loses the others.

Reference: https://firefox-source-docs.mozilla.org/security/nss/legacy/key_log_format/index.html
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from functools import lru_cache

CLIENT_RANDOM = "CLIENT_RANDOM"
CLIENT_HANDSHAKE = "CLIENT_HANDSHAKE_TRAFFIC_SECRET"
SERVER_HANDSHAKE = "SERVER_HANDSHAKE_TRAFFIC_SECRET"
CLIENT_TRAFFIC_0 = "CLIENT_TRAFFIC_SECRET_0"
SERVER_TRAFFIC_0 = "SERVER_TRAFFIC_SECRET_0"
# known labels ghostcap reads but does not need (0-RTT data and exporters are not decrypted)
UNUSED_LABELS = frozenset(
    {"CLIENT_EARLY_TRAFFIC_SECRET", "EARLY_EXPORTER_SECRET", "EXPORTER_SECRET", "RSA", "PMS_CLIENT_RANDOM"}
)
TLS13_LABELS = frozenset({CLIENT_HANDSHAKE, SERVER_HANDSHAKE, CLIENT_TRAFFIC_0, SERVER_TRAFFIC_0})
MASTER_SECRET_LEN = 48
RANDOM_LEN = 32
TLS13_SECRET_LENS = (32, 48)  # SHA-256 and SHA-384 suites
_HEX = frozenset("0123456789abcdefABCDEF")
MAX_PROBLEMS = 20  # problems listed one by one; the rest are counted


class KeyLog:
    """Secrets by client random. ``problems``: one sentence per skipped line (``MAX_PROBLEMS`` at most, then a
    count); ``lines``: secrets read; ``used``: client randoms some TLS session looked up and found.

    ``watch(secrets)`` adds a capture's Decryption Secrets Blocks as they are read (the reader appends to the
    list while streaming; lookups take in what arrived since), so a DSB applies to the packets after it.
    """

    def __init__(self, bases: Iterable[KeyLog] = ()) -> None:
        self._secrets: dict[bytes, dict[str, bytes]] = {}
        self._bases = list(bases)  # shared, read-only key logs (files cached per process) looked up after our own
        self.problems: list[str] = []
        self._more_problems = 0
        self.lines = 0
        self._base_sessions = sum(len(b._secrets) for b in self._bases)
        for b in self._bases:
            self.lines += b.lines
            for p in b.problems:
                self._problem(p)
            self._more_problems += b._more_problems
        self.used: set[bytes] = set()
        self._watched: list | None = None
        self._taken = 0
        self.embedded = 0  # secrets read from Decryption Secrets Blocks

    # --- reading -----------------------------------------------------------------------------------------------

    @classmethod
    def from_files(cls, paths: Iterable[str | os.PathLike[str]]) -> KeyLog:
        """Key logs from files (read once per process and file version); problems say which file and line."""
        return cls(_load_file(os.fspath(p), *_stamp(os.fspath(p))) for p in paths)

    def add_text(self, text: str | bytes, source: str) -> None:
        """Parse key-log ``text``; ``source`` names it in problems (``keys.txt`` → ``keys.txt line 3: ...``)."""
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        for n, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            problem = self._line(line)
            if problem:
                self._problem(f"{source} line {n}: {problem}; line skipped")

    def _line(self, line: str) -> str | None:
        parts = line.split()
        label = parts[0]
        if label in UNUSED_LABELS:
            return None
        if label != CLIENT_RANDOM and label not in TLS13_LABELS:
            return f"unknown label {_short(label)!r}"
        if len(parts) != 3:
            return f"{label} needs a client random and a secret, found {len(parts) - 1} fields"
        try:
            client_random = bytes.fromhex(parts[1])
            secret = bytes.fromhex(parts[2])
        except ValueError:
            if all(c in _HEX for f in parts[1:] for c in f) and any(len(f) % 2 for f in parts[1:]):
                return f"{label}: a field has an odd number of hex digits (truncated?)"
            return f"{label}: a field is not hexadecimal"
        if len(client_random) != RANDOM_LEN:
            return f"{label}: the client random is {len(client_random)} bytes, not {RANDOM_LEN}"
        if label == CLIENT_RANDOM and len(secret) != MASTER_SECRET_LEN:
            return f"CLIENT_RANDOM: the master secret is {len(secret)} bytes, not {MASTER_SECRET_LEN} (truncated?)"
        if label != CLIENT_RANDOM and len(secret) not in TLS13_SECRET_LENS:
            return f"{label}: the secret is {len(secret)} bytes, not 32 or 48 (truncated?)"
        self._secrets.setdefault(client_random, {})[label] = secret
        self.lines += 1
        return None

    def _problem(self, text: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(text)
        else:
            self._more_problems += 1

    def problem_lines(self) -> list[str]:
        more = [f"{self._more_problems} more malformed key-log lines skipped"] if self._more_problems else []
        return self.problems + more

    def watch(self, secrets: list) -> None:
        """Take in pcapng Decryption Secrets Blocks (``DecryptionSecret``) appended to ``secrets`` from now on."""
        self._watched = secrets

    def _take_watched(self) -> None:
        w = self._watched
        while w is not None and self._taken < len(w):
            block = w[self._taken]
            self._taken += 1
            if block.secrets_type == block.TLS_KEY_LOG:
                before = self.lines
                self.add_text(block.data, f"the capture's Decryption Secrets Block {self._taken}")
                self.embedded += self.lines - before

    # --- looking up --------------------------------------------------------------------------------------------

    def lookup(self, client_random: bytes) -> dict[str, bytes] | None:
        """The secrets filed under ``client_random`` (marked used), or None."""
        self._take_watched()
        found = self._secrets.get(client_random)
        for b in self._bases:
            if found is not None:
                break
            found = b._secrets.get(client_random)
        if found:
            self.used.add(client_random)
        return found

    def __len__(self) -> int:
        """Sessions with secrets (cheap: called for every encrypted record)."""
        if self._watched is not None and self._taken < len(self._watched):
            self._take_watched()
        return len(self._secrets) + self._base_sessions

    def __bool__(self) -> bool:
        return True


def _stamp(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_mtime_ns, st.st_size


@lru_cache(maxsize=64)
def _load_file(path: str, mtime_ns: int, size: int) -> KeyLog:
    log = KeyLog()
    with open(path, "rb") as f:
        log.add_text(f.read(), os.path.basename(path))
    return log


def _short(text: str) -> str:
    return text if len(text) <= 40 else text[:40] + "…"
