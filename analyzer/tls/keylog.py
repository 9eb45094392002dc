"""The NSS key log format (``SSLKEYLOGFILE``), from files and from pcapng Decryption Secrets Blocks.

One secret per line: ``LABEL <client_random hex> <secret hex>``. ``CLIENT_RANDOM`` carries a TLS ≤ 1.2 master
secret (48 bytes); ``CLIENT_/SERVER_HANDSHAKE_TRAFFIC_SECRET`` and ``CLIENT_/SERVER_TRAFFIC_SECRET_0`` the TLS 1.3
traffic secrets (32 or 48 bytes, by the suite's hash). Comments (``#``) and blank lines are skipped. A malformed
line is named with its line number in ``problems`` and skipped: one bad line never loses the others. A problem
names the file, the line and what is wrong, never the line's content: only a known label, or an unknown one that
cannot be part of a secret (upper-case letters, digits and ``_``, not all hexadecimal), is quoted. A line wrapped
in two, or a secret glued to its label, would otherwise put secret bytes into every report.

A key log file must be a regular file of at most ``MAX_KEYLOG_BYTES`` (``keylog_file_problem`` says why not;
``from_files`` raises ``KeyLogError``): a device such as ``/dev/zero`` would be read until memory runs out, a FIFO
would block forever.

Reference: https://firefox-source-docs.mozilla.org/security/nss/legacy/key_log_format/index.html
"""

from __future__ import annotations

import codecs
import os
import re
import stat
from collections.abc import Iterable
from functools import lru_cache

from analyzer.budgets import LATE_SECRETS_SESSIONS
from analyzer.errors import AnalyzerError

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
MAX_KEYLOG_BYTES = 64 << 20  # the largest key log file read (about 350,000 TLS 1.2 sessions)
_LABEL_LIKE = re.compile(r"[A-Z][A-Z0-9_]{0,39}")  # quotable: upper case, and (checked apart) not all hex
_KNOWN_LABELS = (CLIENT_RANDOM, *sorted(TLS13_LABELS), *sorted(UNUSED_LABELS))
# in a session's decryption detail when its secrets came after its key setup (``TlsTally`` counts these apart)
LATE_SECRETS = "came in a Decryption Secrets Block after"


class KeyLogError(AnalyzerError):
    """A key log file that cannot be used at all (not a regular file, too large, unreadable)."""


def keylog_file_problem(path: str | os.PathLike[str]) -> str | None:
    """Why ``path`` cannot be a key log (``None`` when it can): missing, not a regular file, or larger than
    ``MAX_KEYLOG_BYTES``. Does not open it (so a FIFO never blocks)."""
    try:
        st = os.stat(path)
    except OSError as e:
        return f"{os.fspath(path)}: {e.strerror or e}"
    return _stat_problem(os.fspath(path), st)


def _stat_problem(path: str, st: os.stat_result) -> str | None:
    if not stat.S_ISREG(st.st_mode):
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else "a FIFO" if stat.S_ISFIFO(st.st_mode) else "a device"
        if stat.S_ISSOCK(st.st_mode):
            kind = "a socket"
        return f"{path}: a key log must be a regular file, this is {kind}"
    if st.st_size > MAX_KEYLOG_BYTES:
        return (
            f"{path}: a key log may be at most {MAX_KEYLOG_BYTES >> 20} MiB, this one is {st.st_size / 2**20:.0f} MiB"
        )
    return None


class KeyLog:
    """Secrets by client random. ``problems``: one sentence per skipped line (``MAX_PROBLEMS`` at most, then a
    count); ``lines``: secrets read; ``used``: client randoms some TLS session looked up and found.

    ``watch(secrets)`` adds a capture's Decryption Secrets Blocks as they are read (the reader appends to the
    list while streaming; lookups and ``problem_lines`` take in what arrived since), so a DSB applies to the
    sessions whose keys are set up after the reader read it: as it reads 1 MiB at a time, that may include packets
    just before the block, but a session set up a read buffer earlier stays encrypted. ``missed`` keeps the client
    randoms whose secrets were looked for at key setup and not all found, so ``late`` can tell such a session from
    one the key log does not match: the report must not blame the key log for secrets that merely came late.
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
        self.missed: dict[bytes, set[str]] = {}  # client random → labels missing at a key setup
        self.missed_dropped = 0  # sessions not remembered in ``missed`` (``LATE_SECRETS_SESSIONS``)
        self._watched: list | None = None
        self._taken = 0
        self.embedded = 0  # secrets read from Decryption Secrets Blocks

    # --- reading -----------------------------------------------------------------------------------------------

    @classmethod
    def from_files(cls, paths: Iterable[str | os.PathLike[str]]) -> KeyLog:
        """Key logs from files (read once per process and file version); problems say which file and line.
        Raises ``KeyLogError`` for a file that is not a regular file of at most ``MAX_KEYLOG_BYTES``."""
        return cls([_load_file(os.fspath(p), *_stamp(os.fspath(p))) for p in paths])

    def add_text(self, text: str | bytes, source: str) -> None:
        """Parse key-log ``text``; ``source`` names it in problems (``keys.txt`` → ``keys.txt line 3: ...``)."""
        if isinstance(text, bytes):
            if text.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
                text = text.decode("utf-16", "replace")  # PowerShell's Out-File
            else:
                text = text.decode("utf-8", "replace")
        text = text.removeprefix("\ufeff")
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
            return _unknown_label(label)
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
        """``problems`` and the count of those not listed, after taking in the Decryption Secrets Blocks read since
        the last lookup: a block past the capture's last TLS record (or in a capture without TLS) is read by no
        lookup, and its bad lines would go unsaid while the same lines from a file are named."""
        self._take_watched()
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
        """The secrets filed under ``client_random`` (marked used), or None. One session's secrets may come from
        several key logs (TLS 1.3's handshake secrets in one file, its traffic secrets in another, or the capture's
        own Decryption Secrets Block and a file): they are merged, the first source's value winning for a label
        given twice (the capture's, then the files in the order given)."""
        found = self.holds(client_random)
        if found:
            self.used.add(client_random)
        return found

    def holds(self, client_random: bytes) -> dict[str, bytes] | None:
        """The secrets filed under ``client_random`` now, as ``lookup`` merges them, without marking them used
        (the report asks whether secrets missing at key setup came later)."""
        self._take_watched()
        found = self._secrets.get(client_random)
        for b in self._bases:
            more = b._secrets.get(client_random)
            if more:
                found = more if not found else {**more, **found}
        return found

    def miss(self, client_random: bytes, labels: Iterable[str]) -> None:
        """A session set up its keys without the secrets ``labels`` (see ``late``). At most
        ``LATE_SECRETS_SESSIONS`` sessions are remembered (every TLS connection of a capture without keys comes
        here): the others are counted in ``missed_dropped``, and whether their secrets came later is not checked."""
        had = self.missed.get(client_random)
        if had is None:
            if len(self.missed) >= LATE_SECRETS_SESSIONS:
                self.missed_dropped += 1
                return
            had = self.missed[client_random] = set()
        had.update(labels)

    def came_late(self, client_random: bytes, labels: Iterable[str]) -> list[str]:
        """Which of ``labels``, missing at the session's key setup, the key log holds now."""
        found = self.holds(client_random) or {}
        return [label for label in labels if label in found]

    def late(self) -> int:
        """Sessions (by client random) whose secrets were missing at key setup and are in the key log now: a
        Decryption Secrets Block brought them later in the capture."""
        return sum(1 for cr, labels in self.missed.items() if self.came_late(cr, sorted(labels)))

    def __len__(self) -> int:
        """Sessions with secrets (cheap: called for every encrypted record)."""
        if self._watched is not None and self._taken < len(self._watched):
            self._take_watched()
        return len(self._secrets) + self._base_sessions

    def __bool__(self) -> bool:
        return True


def _unknown_label(label: str) -> str:
    """What is wrong with a line whose first field is not a known label, without quoting anything that could be
    (part of) a secret: a wrapped line's second half, a secret glued to its label, binary data."""
    if all(c in _HEX for c in label):
        return (
            f"the line starts with {len(label)} hexadecimal digits, not a label "
            "(a line wrapped in two, or fields out of order?)"
        )
    for known in _KNOWN_LABELS:
        glued = label[: -len(known)]
        if label.endswith(known) and glued and all(c in _HEX for c in glued):
            return (
                f"the label {known} comes after {len(glued)} hexadecimal digits (two lines joined, or a line wrapped?)"
            )
    if _LABEL_LIKE.fullmatch(label):
        import difflib

        near = difflib.get_close_matches(label, _KNOWN_LABELS, n=1)
        hint = f" (did you mean {near[0]}?)" if near else ""
        return f"unknown label {label!r}{hint}"
    if label.isprintable() and label.isascii():
        return "the line does not start with a key-log label (text, not shown)"
    return "the line does not start with a key-log label (binary or non-ASCII data, not shown)"


def _stamp(path: str) -> tuple[int, int]:
    problem = keylog_file_problem(path)
    if problem:
        raise KeyLogError(problem)
    st = os.stat(path)
    return st.st_mtime_ns, st.st_size


@lru_cache(maxsize=64)
def _load_file(path: str, mtime_ns: int, size: int) -> KeyLog:
    log = KeyLog()
    try:
        # O_NONBLOCK: a file swapped for a FIFO since the check never blocks; fstat checks what was opened
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as e:
        raise KeyLogError(f"{path}: {e.strerror or e}") from None
    with os.fdopen(fd, "rb") as f:
        problem = _stat_problem(path, os.fstat(fd))
        if problem:
            raise KeyLogError(problem)
        data = f.read(MAX_KEYLOG_BYTES + 1)
        if len(data) > MAX_KEYLOG_BYTES:
            raise KeyLogError(f"{path}: a key log may be at most {MAX_KEYLOG_BYTES >> 20} MiB, this one is larger")
    log.add_text(data, os.path.basename(path))
    return log
