"""One TLS connection's keys, per direction: which record cipher decrypts the next record, and why not.

The TLS decoder tells it what the connection shows (a ChangeCipherSpec in TLS ≤ 1.2; a Finished or KeyUpdate
message in TLS 1.3) and asks it to decrypt each encrypted record. Directions are told by role: 0 = client writes,
1 = server writes.

- TLS ≤ 1.2: at a direction's ChangeCipherSpec the key block is derived from the master secret the key log files
  under the connection's client random, with both hello randoms (RFC 5246 §6.3).
- TLS 1.3: each direction starts with its handshake traffic secret and moves to its application traffic secret
  after its Finished; a KeyUpdate ratchets the sender's secret (RFC 8446 §7.2). If a record fails under the
  handshake keys but authenticates under the application keys (a Finished not seen, or a key log without
  handshake secrets) the direction moves on.

``status`` (for the report): ``None`` before any encrypted record; then, the worst of both directions:
``failed`` (a record did not authenticate: wrong keys), ``unsupported`` (cipher suite), ``no_handshake`` (the
capture lacks the hellos that name the session), ``partial`` (some records decrypted, a direction's later secret
missing, e.g. a server key log without the client's application secret), ``no_keys`` or ``decrypted``; with
``detail`` saying it in a sentence. Secrets missing at a direction's key setup that a Decryption Secrets Block
brought later in the capture are said to have come late (``partial`` or ``no_keys``), not to be absent or wrong:
the direction is not decrypted, since secrets are read in capture order, and the detail says to move the block.
"""

from __future__ import annotations

from typing import Protocol

from analyzer.decoders.tls_names import is_tls13
from analyzer.tls import keylog as kl
from analyzer.tls.keyschedule import Tls12Keys, next_secret, traffic_keys
from analyzer.tls.record import DecryptError, Tls12Aead, Tls12Cbc, Tls12Stream, Tls13Aead
from analyzer.tls.suites import Suite, suite

HS_FINISHED = 20
HS_KEY_UPDATE = 24
EXT_ENCRYPT_THEN_MAC = 22
ROLE = ("client", "server")
LABELS13 = ((kl.CLIENT_HANDSHAKE, kl.CLIENT_TRAFFIC_0), (kl.SERVER_HANDSHAKE, kl.SERVER_TRAFFIC_0))  # by role, stage
RESYNC_RECORDS = 64  # sequence numbers tried after lost bytes
NO_HELLOS = "the capture lacks this session's hellos, so no key-log entry can be matched to it"


class RecordCipher(Protocol):
    seq: int

    def decrypt(self, ctype: int, version: int, payload: bytes) -> tuple[int, bytes]: ...


class SessionFacts(Protocol):
    """What the TLS decoder knows (``TlsSession``)."""

    client_random: bytes | None
    server_random: bytes | None
    cipher_suite: int | None
    version: int | None
    server_extensions: tuple[int, ...]


class SessionKeys:
    __slots__ = (
        "_dead",
        "_keylog",
        "_missed",
        "_problem",
        "_resync",
        "_secrets",
        "_stage",
        "_suite",
        "_tls12",
        "ciphers",
        "decrypted",
        "key_updates",
    )

    def __init__(self, keys: kl.KeyLog) -> None:
        self._keylog = keys
        self.ciphers: list[RecordCipher | None] = [None, None]
        self._dead = [False, False]  # this direction will not decrypt (no keys, unsupported, failed)
        self._stage = [0, 0]  # TLS 1.3: 0 handshake secret, 1 application secret
        self._secrets: list[list[bytes | None]] = [[None, None], [None, None]]
        self._suite: Suite | None = None
        self._tls12: Tls12Keys | None = None
        self.decrypted = [0, 0]
        self._problem: list[tuple[str, str] | None] = [None, None]  # why a direction stopped decrypting
        self.key_updates = [0, 0]
        self._resync = [False, False]  # bytes were lost: the next record may be several sequence numbers on
        # per role: (frame, client random, labels) of secrets missing at its key setup (they may come later)
        self._missed: list[tuple[int | None, bytes, tuple[str, ...]] | None] = [None, None]

    def stopped(self, role: int) -> bool:
        """``role``'s records will not be decrypted (see ``status``)."""
        return self._dead[role]

    def overhead(self) -> int:
        """Bytes a record's ciphertext adds to its plaintext (nonce, tag, TLS 1.3 content type), when fixed."""
        st = self._suite
        if st is None or not st.aead:
            return 0
        if st.tls13:
            return st.tag_len + 1
        return st.tag_len + (0 if st.kind == "chacha" else 8)

    def active(self) -> bool:
        """Whether there are any secrets to try (a key log was given, or the capture embedded one so far)."""
        return bool(len(self._keylog))

    # --- what the connection showed ------------------------------------------------------------------------------

    def change_cipher_spec(self, role: int, s: SessionFacts, frame: int | None = None) -> None:
        """TLS ≤ 1.2: ``role`` encrypts from its next record on (its key setup, in ``frame``)."""
        self._dead[role] = False
        self.ciphers[role] = None
        if not len(self._keylog):
            self._missing(role, s, (kl.CLIENT_RANDOM,), frame)
            return
        if not self._ready(role, s):
            return
        assert self._suite is not None
        assert s.client_random is not None
        assert s.server_random is not None
        assert s.version is not None
        if self._tls12 is None:
            found = self._keylog.lookup(s.client_random)
            master = found.get(kl.CLIENT_RANDOM) if found else None
            if master is None:
                self._missing(role, s, (kl.CLIENT_RANDOM,), frame)
                self._no_keys(role, s, "CLIENT_RANDOM")
                return
            self._tls12 = Tls12Keys(self._suite, master, s.client_random, s.server_random, s.version)
        k, st = self._tls12, self._suite
        if st.aead:
            self.ciphers[role] = Tls12Aead(st, k.key[role], k.iv[role])
        elif st.kind.startswith("cbc:"):
            etm = EXT_ENCRYPT_THEN_MAC in s.server_extensions
            self.ciphers[role] = Tls12Cbc(st, k.mac_key[role], k.key[role], k.iv[role], s.version, etm)
        else:
            self.ciphers[role] = Tls12Stream(st, k.mac_key[role], k.key[role])

    def handshake_message(self, role: int, msg_type: int) -> None:
        """TLS 1.3: a decrypted handshake message ``role`` sent."""
        st = self._suite
        if st is None or not st.tls13:
            return
        if msg_type == HS_FINISHED and self._stage[role] == 0:
            self._set_stage(role, 1)
        elif msg_type == HS_KEY_UPDATE and self._stage[role] >= 1:
            secret = self._secrets[role][1]
            if secret is not None:
                self._secrets[role][1] = next_secret(st, secret)
                self.key_updates[role] += 1
                self._set_stage(role, 1)

    def lost_record(self, role: int) -> None:
        """A record of ``role`` went by with bytes missing: it still used a sequence number."""
        cipher = self.ciphers[role]
        if isinstance(cipher, Tls12Stream):
            self._fail(role, "failed", f"bytes of the {ROLE[role]}'s RC4 stream are missing from the capture")
        elif cipher is not None:
            cipher.seq += 1
            self._resync[role] = True

    def lost_bytes(self, role: int) -> None:
        """Bytes of ``role`` are missing and record boundaries with them: records may have gone by unseen."""
        if isinstance(self.ciphers[role], Tls12Stream):
            self._fail(role, "failed", f"bytes of the {ROLE[role]}'s RC4 stream are missing from the capture")
        else:
            self._resync[role] = True

    def unkeyed_record(self, role: int, s: SessionFacts, frame: int) -> None:
        """An encrypted record of ``role`` went by while the key log held no secret at all. In TLS 1.3 a
        direction's first encrypted record is its key setup: secrets arriving after it could only be tried on a
        later record with the wrong sequence number, and would be called wrong, so the direction stops here."""
        if self._dead[role] or self.ciphers[role] is not None or s.version is None or not is_tls13(s.version):
            return
        self._missing(role, s, LABELS13[role], frame)
        self._dead[role] = True

    # --- decrypting ----------------------------------------------------------------------------------------------

    def decrypt(
        self, role: int, ctype: int, version: int, payload: bytes, s: SessionFacts, frame: int
    ) -> tuple[int, bytes] | None:
        """``(inner content type, plaintext)``, or None when this record cannot be decrypted (see ``status``)."""
        if self._dead[role]:
            return None
        if not len(self._keylog):  # no key log given, and no secrets in the capture (yet)
            self.unkeyed_record(role, s, frame)
            return None
        cipher = self.ciphers[role]
        if cipher is None:
            if s.version is None:
                self._fail(role, "no_handshake", NO_HELLOS)
                return None
            if not is_tls13(s.version):
                return None  # TLS ≤ 1.2 before its ChangeCipherSpec was seen
            if not self._start_tls13(role, s, frame):
                return None
            cipher = self.ciphers[role]
            assert cipher is not None
        try:
            out = cipher.decrypt(ctype, version, payload)
        except DecryptError as e:
            out = self._try_next_stage(role, ctype, version, payload)
            if out is None and self._resync[role]:
                out = self._try_later_sequence(cipher, ctype, version, payload)
            if out is None:
                self._fail(
                    role,
                    "failed",
                    f"the {ROLE[role]}'s record in frame {frame} did not authenticate ({e}): the key log's secrets "
                    "for this session are wrong",
                )
                return None
        self.decrypted[role] += 1
        return out

    @property
    def status(self) -> str | None:
        return self._verdict()[0]

    @property
    def detail(self) -> str:
        return self._verdict()[1]

    def _verdict(self) -> tuple[str | None, str]:
        problems = [self._late(role) or p for role, p in enumerate(self._problem)]
        problems = [p for p in problems if p is not None]
        for worst in ("failed", "unsupported", "no_handshake"):
            for status, detail in problems:
                if status == worst:
                    return status, detail
        if problems:
            return ("partial" if any(self.decrypted) else "no_keys"), problems[0][1]
        return ("decrypted", "decrypted with the key log") if any(self.decrypted) else (None, "")

    # --- helpers -------------------------------------------------------------------------------------------------

    def _ready(self, role: int, s: SessionFacts) -> bool:
        if s.client_random is None or s.server_random is None or s.cipher_suite is None or s.version is None:
            self._fail(role, "no_handshake", NO_HELLOS)
            return False
        if self._suite is None:
            found = suite(s.cipher_suite)
            if isinstance(found, str):
                self._fail(role, "unsupported", found)
                return False
            self._suite = found
        return True

    def _start_tls13(self, role: int, s: SessionFacts, frame: int) -> bool:
        if not self._ready(role, s):
            return False
        assert s.client_random is not None
        found = self._keylog.lookup(s.client_random)
        labels = LABELS13[role]
        secrets = [found.get(label) for label in labels] if found else [None, None]
        if None in secrets:
            self._missing(role, s, tuple(label for label, x in zip(labels, secrets, strict=True) if x is None), frame)
        if secrets == [None, None]:
            self._no_keys(role, s, " / ".join(labels))
            return False
        self._secrets[role] = secrets
        self._set_stage(role, 0 if secrets[0] is not None else 1)
        return self.ciphers[role] is not None

    def _set_stage(self, role: int, stage: int) -> None:
        assert self._suite is not None
        self._stage[role] = stage
        secret = self._secrets[role][stage]
        if secret is None:
            label = LABELS13[role][stage]
            what = "handshake" if stage == 0 else "application data"
            self._fail(role, "no_keys", f"the key log has no {label}: the {ROLE[role]}'s {what} stays encrypted")
            return
        self.ciphers[role] = Tls13Aead(self._suite, *traffic_keys(self._suite, secret))

    def _try_next_stage(self, role: int, ctype: int, version: int, payload: bytes) -> tuple[int, bytes] | None:
        if self._suite is None or not self._suite.tls13 or self._stage[role] != 0:
            return None
        secret = self._secrets[role][1]
        if secret is None:
            return None
        cipher = Tls13Aead(self._suite, *traffic_keys(self._suite, secret))
        try:
            out = cipher.decrypt(ctype, version, payload)
        except DecryptError:
            return None
        self._stage[role] = 1
        self.ciphers[role] = cipher
        return out

    def _try_later_sequence(
        self, cipher: RecordCipher, ctype: int, version: int, payload: bytes
    ) -> tuple[int, bytes] | None:
        """After lost bytes, whole records may be missing too: try the next sequence numbers."""
        seq = cipher.seq
        for later in range(seq + 1, seq + 1 + RESYNC_RECORDS):
            cipher.seq = later
            try:
                return cipher.decrypt(ctype, version, payload)
            except DecryptError:
                continue
        cipher.seq = seq
        return None

    def _missing(self, role: int, s: SessionFacts, labels: tuple[str, ...], frame: int | None) -> None:
        """``role`` set up its keys (in ``frame``) without the secrets ``labels``: remembered, so that secrets a
        Decryption Secrets Block brings later are reported as late rather than absent or wrong."""
        if s.client_random is None or self._missed[role] is not None:
            return
        self._missed[role] = (frame, s.client_random, labels)
        self._keylog.miss(s.client_random, labels)

    def _late(self, role: int) -> tuple[str, str] | None:
        """``role``'s verdict when secrets it lacked at key setup are in the key log now, unless it already failed
        for another reason (wrong secrets, no hellos, an unsupported suite)."""
        missed, problem = self._missed[role], self._problem[role]
        if missed is None or (problem is not None and problem[0] != "no_keys"):
            return None
        frame, client_random, labels = missed
        came = self._keylog.came_late(client_random, labels)
        if not came:
            return None
        where = f" in frame {frame}" if frame is not None else ""
        return "no_keys", (
            f"{' and '.join(came)} {kl.LATE_SECRETS} the {ROLE[role]}'s key setup{where}: ghostcap reads secrets "
            "in capture order, so what they protect stays encrypted; put the block before the session "
            "(e.g. editcap --inject-secrets)"
        )

    def _no_keys(self, role: int, s: SessionFacts, labels: str) -> None:
        cr = s.client_random.hex() if s.client_random else "?"
        self._fail(role, "no_keys", f"no {labels} secret for client random {cr[:16]}… in the key log")

    def _fail(self, role: int, status: str, detail: str) -> None:
        self._dead[role] = True
        self.ciphers[role] = None
        if self._problem[role] is None or self._problem[role][0] == "no_keys":  # type: ignore[index]
            self._problem[role] = (status, detail)
