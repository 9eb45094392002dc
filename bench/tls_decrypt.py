#!/usr/bin/env python3
"""How fast ghostcap decrypts TLS: ``build_timeline`` with and without a key log on large synthetic wss captures.

For each cipher suite it builds (in ``bench/out/``) a capture of OCPP 1.6-J over WebSocket over TLS that is
cryptographically real from end to end: an X25519 key exchange between the two ends, the TLS 1.2 master secret or
the TLS 1.3 key schedule (RFC 8446 §7.1) computed from it, a server certificate (self-signed, made on the fly) with
a real signature over the handshake (ServerKeyExchange or CertificateVerify), Finished messages with the right
verify_data, and every record after the handshake encrypted with ``cryptography`` under keys from ghostcap's own
derivation (``traffic_keys``, ``Tls12Keys``). The NSS key log beside each capture holds what a client's
``SSLKEYLOGFILE`` would: ``CLIENT_RANDOM`` (TLS 1.2) or the four TLS 1.3 traffic secrets.

Inside the TLS: the WebSocket upgrade (``Sec-WebSocket-Protocol: ocpp1.6``) and its 101, then WebSocket text frames
(client frames masked) carrying OCPP-J: a BootNotification, then Heartbeat, StatusNotification and MeterValues
CALLs from the charger, each answered by a CALLRESULT. ``--backlog`` of the MeterValues are offline backlogs of
20-120 samples (7-44 KB, several 16 KB records); the rest are one record each (100-700 bytes). Closed with a
WebSocket close, close_notify alerts and FINs. One long connection carries ~85 % of the bytes, three short ones the
rest. TCP: Ethernet/IPv4, ``--mss``-byte segments (1448 by default, as on a LAN; 65483 imitates a loopback
capture), correct sequence numbers and checksums, the receiver ACKing every second segment.

Before timing, a small capture of each suite is decoded: every TLS session must be ``decrypted``, every record
decrypted, every CALL and CALLRESULT found as an OCPP event, no anomaly; without keys, no OCPP event. With tshark
on the PATH, tshark must also decrypt it and find every WebSocket text frame (a second opinion on the crypto).

Then, per capture (each suite twice: ``mixed``, ``--mb`` MB with ``--backlog`` backlogs; ``small``, ``--small-mb``
MB of one-record messages only), three runs, each in a forked child (its own peak RSS, a clean heap), best of
``--repeat`` (a run over 5 s only once):

- ``no keys``: ``build_timeline(path)``: TCP reassembly and the TLS record layer only;
- ``decrypt``: ``build_timeline(path, [keylog])`` with the inner decoder switched off (``TlsDecoder`` is built
  with ``inner=None`` by patching ``analyzer.decoders.detect.TlsDecoder`` in the child): records are decrypted,
  the plaintext goes nowhere; the time spent inside ``SessionKeys.decrypt`` is also added up (``in-situ``);
- ``full``: ``build_timeline(path, [keylog])``: decryption plus HTTP upgrade, WebSocket and OCPP decoding.

The table gives the end-to-end rate with keys (TLS payload MB / full seconds), the "difference" cost
(MB / (full - no keys): decryption plus the inner decoders), the decryption cost alone (MB / (decrypt - no keys),
and in-situ), and each run's peak RSS. A microbenchmark then times ghostcap's record classes alone (``Tls13Aead``,
``Tls12Aead``, ``Tls12Cbc``) on 16 KB and 300-byte records, beside ``cryptography``'s bare call on the same records,
and cProfile runs of ``full`` (one mixed, one small capture of ``--profile-suite``) list the hot spots.

Usage::

    .venv/bin/python bench/tls_decrypt.py                  # defaults: 150 MB mixed + 15 MB small, four suites
    .venv/bin/python bench/tls_decrypt.py --mb 20 --small-mb 0 --suites tls13-aes128gcm,tls12-cbc
    .venv/bin/python bench/tls_decrypt.py --mss 65483              # loopback-sized TCP segments
    .venv/bin/python bench/tls_decrypt.py --etm                    # CBC with encrypt_then_mac (RFC 7366)
    .venv/bin/python bench/tls_decrypt.py --keep                   # keep the captures; later runs reuse them

Captures are deleted after timing unless ``--keep``; a kept capture is reused by later runs with the same
parameters and generator source (``--rebuild`` to force). The printed output is also saved to
``bench/out/tls-decrypt-bench.txt``. A report, not a test: exit status 1 only when the correctness check fails.
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import datetime as dt
import gc
import hashlib
import hmac
import json
import os
import pstats
import random
import resource
import shutil
import struct
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, x25519
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from analyzer.tls.keyschedule import Tls12Keys, hkdf_expand_label, prf, traffic_keys
from analyzer.tls.record import Tls12Aead, Tls12Cbc, Tls13Aead
from analyzer.tls.suites import Suite, suite

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench" / "out"
REPORT = OUT / "tls-decrypt-bench.txt"


@dataclass(frozen=True)
class Variant:
    key: str
    label: str
    suite_id: int
    tls13: bool


VARIANTS = (
    Variant("tls13-aes128gcm", "TLS 1.3 TLS_AES_128_GCM_SHA256", 0x1301, True),
    Variant("tls13-chacha20", "TLS 1.3 TLS_CHACHA20_POLY1305_SHA256", 0x1303, True),
    Variant("tls12-aes128gcm", "TLS 1.2 ECDHE-RSA-AES128-GCM-SHA256", 0xC02F, False),
    Variant("tls12-cbc", "TLS 1.2 ECDHE-RSA-AES128-SHA256 (CBC)", 0xC027, False),
)
BY_KEY = {v.key: v for v in VARIANTS}

MAX_FRAGMENT = 1 << 14  # RFC 8446 §5.1: plaintext bytes per record
CT_CCS, CT_ALERT, CT_HANDSHAKE, CT_APP = 20, 21, 22, 23
HS_CLIENT_HELLO, HS_SERVER_HELLO, HS_NEW_SESSION_TICKET = 1, 2, 4
HS_ENCRYPTED_EXTENSIONS, HS_CERTIFICATE, HS_SERVER_KEY_EXCHANGE = 8, 11, 12
HS_SERVER_HELLO_DONE, HS_CERTIFICATE_VERIFY, HS_CLIENT_KEY_EXCHANGE, HS_FINISHED = 14, 15, 16, 20
X25519 = 0x001D
SIG_ECDSA_P256_SHA256, SIG_RSA_PKCS1_SHA256 = 0x0403, 0x0401
CSMS_NAME = "csms.example-cpo.net"
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
T0_US = 1_715_673_600 * 1_000_000  # 2024-05-14 08:00:00 UTC
SAMPLED_VALUES = (
    '{{"value":"{wh:.1f}","context":"Sample.Periodic","measurand":"Energy.Active.Import.Register","unit":"Wh"}},'
    '{{"value":"{w:.0f}","measurand":"Power.Active.Import","unit":"W"}},'
    '{{"value":"{a:.1f}","measurand":"Current.Import","phase":"L1","unit":"A"}},'
    '{{"value":"{v:.1f}","measurand":"Voltage","phase":"L1-N","unit":"V"}}'
)


# --- TLS messages ----------------------------------------------------------------------------------------------------


def u8v(b: bytes) -> bytes:
    return bytes((len(b),)) + b


def u16v(b: bytes) -> bytes:
    return len(b).to_bytes(2, "big") + b


def u24v(b: bytes) -> bytes:
    return len(b).to_bytes(3, "big") + b


def ext(etype: int, body: bytes) -> bytes:
    return etype.to_bytes(2, "big") + u16v(body)


def hs_msg(msg_type: int, body: bytes) -> bytes:
    return bytes((msg_type,)) + u24v(body)


def plain_record(ctype: int, body: bytes, version: int = 0x0303) -> bytes:
    return struct.pack("!BHH", ctype, version, len(body)) + body


def client_hello(rng: random.Random, cr: bytes, tls13: bool, etm: bool, pub: bytes) -> bytes:
    sni = CSMS_NAME.encode()
    exts = [
        ext(0, u16v(b"\x00" + u16v(sni))),  # server_name
        ext(10, u16v(bytes.fromhex("001d00170018"))),  # supported_groups x25519, secp256r1, secp384r1
        ext(11, u8v(b"\x00")),  # ec_point_formats uncompressed
        ext(13, u16v(bytes.fromhex("040308040401050306030501"))),  # signature_algorithms
        ext(0xFF01, b"\x00"),  # renegotiation_info
    ]
    if etm:
        exts.append(ext(22, b""))  # encrypt_then_mac
    if tls13:
        suites = bytes.fromhex("130113021303c02bc02fc027009c")
        exts += [
            ext(43, u8v(bytes.fromhex("03040303"))),  # supported_versions
            ext(45, u8v(b"\x01")),  # psk_key_exchange_modes psk_dhe_ke
            ext(51, u16v(X25519.to_bytes(2, "big") + u16v(pub))),  # key_share
        ]
    else:
        suites = bytes.fromhex("c02fc030c027c013009c002f")
    body = b"".join((b"\x03\x03", cr, u8v(rng.randbytes(32)), u16v(suites), b"\x01\x00", u16v(b"".join(exts))))
    return hs_msg(HS_CLIENT_HELLO, body)


def server_hello(sr: bytes, session_id: bytes, suite_id: int, tls13: bool, etm: bool, pub: bytes) -> bytes:
    if tls13:
        exts = ext(43, b"\x03\x04") + ext(51, X25519.to_bytes(2, "big") + u16v(pub))
    else:
        exts = ext(0xFF01, b"\x00") + ext(11, u8v(b"\x00")) + (ext(22, b"") if etm else b"")
    body = b"\x03\x03" + sr + u8v(session_id) + suite_id.to_bytes(2, "big") + b"\x00" + u16v(exts)
    return hs_msg(HS_SERVER_HELLO, body)


@dataclass
class Identity:
    """The CSMS's certificate and key (made once per process)."""

    key: Any
    der: bytes


_IDENTITIES: dict[str, Identity] = {}


def identity(kind: str) -> Identity:
    if kind not in _IDENTITIES:
        key: Any = ec.generate_private_key(ec.SECP256R1()) if kind == "ec" else rsa.generate_private_key(65537, 2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CSMS_NAME)])
        start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + dt.timedelta(days=3650))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(CSMS_NAME)]), critical=False)
            .sign(key, hashes.SHA256())
        )
        _IDENTITIES[kind] = Identity(key, cert.public_bytes(Encoding.DER))
    return _IDENTITIES[kind]


def x25519_pair(rng: random.Random) -> tuple[x25519.X25519PrivateKey, bytes]:
    key = x25519.X25519PrivateKey.from_private_bytes(rng.randbytes(32))
    return key, key.public_key().public_bytes_raw()


# --- record protection (the sending side of analyzer/tls/record.py) -------------------------------------------------


class Sealer:
    """Encrypts one direction's records; ``seal(type, data)`` returns whole records (split at 2^14 bytes)."""

    seq: int

    def one(self, ctype: int, data: bytes) -> bytes:
        raise NotImplementedError

    def seal(self, ctype: int, data: bytes) -> bytes:
        if len(data) <= MAX_FRAGMENT:
            return self.one(ctype, data)
        return b"".join(self.one(ctype, data[i : i + MAX_FRAGMENT]) for i in range(0, len(data), MAX_FRAGMENT))


def _aead_for(s: Suite, key: bytes) -> AESGCM | ChaCha20Poly1305:
    return ChaCha20Poly1305(key) if s.kind == "chacha" else AESGCM(key)


class Tls13Sealer(Sealer):
    """RFC 8446 §5.2: inner plaintext = content || type; nonce = IV xor seq; AAD = the record header."""

    def __init__(self, s: Suite, secret: bytes) -> None:
        key, iv = traffic_keys(s, secret)
        self.aead = _aead_for(s, key)
        self.iv = int.from_bytes(iv, "big")
        self.seq = 0

    def one(self, ctype: int, data: bytes) -> bytes:
        header = struct.pack("!BHH", CT_APP, 0x0303, len(data) + 1 + 16)
        nonce = (self.iv ^ self.seq).to_bytes(12, "big")
        self.seq += 1
        return header + self.aead.encrypt(nonce, data + bytes((ctype,)), header)


class Tls12GcmSealer(Sealer):
    """RFC 5288: nonce = 4-byte salt || 8-byte explicit nonce (the sequence number, as OpenSSL sends it)."""

    def __init__(self, s: Suite, key: bytes, salt: bytes) -> None:
        self.aead = _aead_for(s, key)
        self.salt = salt
        self.seq = 0

    def one(self, ctype: int, data: bytes) -> bytes:
        explicit = self.seq.to_bytes(8, "big")
        aad = struct.pack(">QBHH", self.seq, ctype, 0x0303, len(data))
        self.seq += 1
        body = explicit + self.aead.encrypt(self.salt + explicit, data, aad)
        return plain_record(ctype, body)


class Tls12CbcSealer(Sealer):
    """RFC 5246 §6.2.3.2 (MAC, pad, encrypt with an explicit random IV) or RFC 7366 (encrypt, then MAC)."""

    def __init__(self, s: Suite, mac_key: bytes, key: bytes, etm: bool, rng: random.Random) -> None:
        assert s.mac is not None
        self.algorithm = algorithms.AES(key)
        self.mac, self.mac_key, self.etm, self.rng = s.mac, mac_key, etm, rng
        self.seq = 0

    def _mac(self, ctype: int, data: bytes) -> bytes:
        return hmac.digest(self.mac_key, struct.pack(">QBHH", self.seq, ctype, 0x0303, len(data)) + data, self.mac)

    def one(self, ctype: int, data: bytes) -> bytes:
        iv = self.rng.randbytes(16)
        plain = data if self.etm else data + self._mac(ctype, data)
        pad = 15 - len(plain) % 16
        plain += bytes((pad,)) * (pad + 1)
        enc = Cipher(self.algorithm, modes.CBC(iv)).encryptor()
        body = iv + enc.update(plain) + enc.finalize()
        if self.etm:
            body += self._mac(ctype, body)
        self.seq += 1
        return plain_record(ctype, body)


# --- handshakes ------------------------------------------------------------------------------------------------------


@dataclass
class Session:
    """A connection's hello flights done: the record sealers per role and the key-log lines."""

    flights: list[tuple[int, bytes]]  # (role, bytes on the wire) for the handshake
    sealers: tuple[Sealer, Sealer]
    keylog: list[str]
    hs_records: int = 0  # encrypted records under keys other than ``sealers``' (TLS 1.3 handshake keys)


def _h(*msgs: bytes) -> bytes:
    return hashlib.sha256(b"".join(msgs)).digest()


def handshake13(rng: random.Random, s: Suite) -> Session:
    """A full TLS 1.3 handshake (ECDHE x25519, ECDSA certificate) with the RFC 8446 §7.1 key schedule."""
    assert s.prf == "sha256"
    ident = identity("ec")
    cr, sr = rng.randbytes(32), rng.randbytes(32)
    ckey, cpub = x25519_pair(rng)
    skey, spub = x25519_pair(rng)
    ch = client_hello(rng, cr, True, False, cpub)
    session_id = ch[4 + 2 + 32 + 1 : 4 + 2 + 32 + 1 + 32]
    sh = server_hello(sr, session_id, s.id, True, False, spub)
    shared = skey.exchange(x25519.X25519PublicKey.from_public_bytes(cpub))
    assert shared == ckey.exchange(x25519.X25519PublicKey.from_public_bytes(spub))

    def derive(secret: bytes, label: bytes, transcript: bytes) -> bytes:
        return hkdf_expand_label(secret, label, transcript, 32, "sha256")

    early = hmac.digest(bytes(32), bytes(32), "sha256")
    hs_secret = hmac.digest(derive(early, b"derived", _h()), shared, "sha256")
    c_hs = derive(hs_secret, b"c hs traffic", _h(ch, sh))
    s_hs = derive(hs_secret, b"s hs traffic", _h(ch, sh))
    ee = hs_msg(HS_ENCRYPTED_EXTENSIONS, u16v(ext(0, b"")))  # server_name acknowledged
    cert = hs_msg(HS_CERTIFICATE, b"\x00" + u24v(u24v(ident.der) + u16v(b"")))
    signed = b"\x20" * 64 + b"TLS 1.3, server CertificateVerify\x00" + _h(ch, sh, ee, cert)
    sig = ident.key.sign(signed, ec.ECDSA(hashes.SHA256()))
    cv = hs_msg(HS_CERTIFICATE_VERIFY, SIG_ECDSA_P256_SHA256.to_bytes(2, "big") + u16v(sig))
    s_fin_key = hkdf_expand_label(s_hs, b"finished", b"", 32, "sha256")
    s_fin = hs_msg(HS_FINISHED, hmac.digest(s_fin_key, _h(ch, sh, ee, cert, cv), "sha256"))
    master = hmac.digest(derive(hs_secret, b"derived", _h()), bytes(32), "sha256")
    c_ap = derive(master, b"c ap traffic", _h(ch, sh, ee, cert, cv, s_fin))
    s_ap = derive(master, b"s ap traffic", _h(ch, sh, ee, cert, cv, s_fin))
    c_fin_key = hkdf_expand_label(c_hs, b"finished", b"", 32, "sha256")
    c_fin = hs_msg(HS_FINISHED, hmac.digest(c_fin_key, _h(ch, sh, ee, cert, cv, s_fin), "sha256"))

    s_hs_sealer, c_hs_sealer = Tls13Sealer(s, s_hs), Tls13Sealer(s, c_hs)
    s_ap_sealer, c_ap_sealer = Tls13Sealer(s, s_ap), Tls13Sealer(s, c_ap)
    ccs = plain_record(CT_CCS, b"\x01")
    server_flight = b"".join(
        [plain_record(CT_HANDSHAKE, sh), ccs] + [s_hs_sealer.seal(CT_HANDSHAKE, m) for m in (ee, cert, cv, s_fin)]
    )
    ticket = hs_msg(
        HS_NEW_SESSION_TICKET,
        (7200).to_bytes(4, "big") + rng.randbytes(4) + u8v(rng.randbytes(8)) + u16v(rng.randbytes(192)) + u16v(b""),
    )
    crh = cr.hex()
    keylog = [
        f"CLIENT_HANDSHAKE_TRAFFIC_SECRET {crh} {c_hs.hex()}",
        f"SERVER_HANDSHAKE_TRAFFIC_SECRET {crh} {s_hs.hex()}",
        f"CLIENT_TRAFFIC_SECRET_0 {crh} {c_ap.hex()}",
        f"SERVER_TRAFFIC_SECRET_0 {crh} {s_ap.hex()}",
    ]
    flights = [
        (0, plain_record(CT_HANDSHAKE, ch, 0x0301)),
        (1, server_flight),
        (0, ccs + c_hs_sealer.seal(CT_HANDSHAKE, c_fin)),
        (1, s_ap_sealer.seal(CT_HANDSHAKE, ticket)),
    ]
    return Session(flights, (c_ap_sealer, s_ap_sealer), keylog, s_hs_sealer.seq + c_hs_sealer.seq)


def handshake12(rng: random.Random, s: Suite, etm: bool) -> Session:
    """A full TLS 1.2 ECDHE-RSA handshake (x25519); master secret = PRF(x25519 shared secret, cr + sr)."""
    ident = identity("rsa")
    cr, sr = rng.randbytes(32), rng.randbytes(32)
    ckey, cpub = x25519_pair(rng)
    skey, spub = x25519_pair(rng)
    etm = etm and not s.aead
    ch = client_hello(rng, cr, False, etm, cpub)
    sh = server_hello(sr, rng.randbytes(32), s.id, False, etm, b"")
    cert = hs_msg(HS_CERTIFICATE, u24v(u24v(ident.der)))
    params = b"\x03" + X25519.to_bytes(2, "big") + u8v(spub)
    sig = ident.key.sign(cr + sr + params, padding.PKCS1v15(), hashes.SHA256())
    ske = hs_msg(HS_SERVER_KEY_EXCHANGE, params + SIG_RSA_PKCS1_SHA256.to_bytes(2, "big") + u16v(sig))
    shd = hs_msg(HS_SERVER_HELLO_DONE, b"")
    cke = hs_msg(HS_CLIENT_KEY_EXCHANGE, u8v(cpub))
    pms = ckey.exchange(x25519.X25519PublicKey.from_public_bytes(spub))
    assert pms == skey.exchange(x25519.X25519PublicKey.from_public_bytes(cpub))
    master = prf(pms, b"master secret", cr + sr, 48, hash_name=s.prf, version=0x0303)
    c_fin = hs_msg(
        HS_FINISHED,
        prf(master, b"client finished", _h(ch, sh, cert, ske, shd, cke), 12, hash_name=s.prf, version=0x0303),
    )
    s_fin = hs_msg(
        HS_FINISHED,
        prf(master, b"server finished", _h(ch, sh, cert, ske, shd, cke, c_fin), 12, hash_name=s.prf, version=0x0303),
    )
    keys = Tls12Keys(s, master, cr, sr, 0x0303)
    sealers: list[Sealer] = []
    for role in (0, 1):
        if s.aead:
            sealers.append(Tls12GcmSealer(s, keys.key[role], keys.iv[role]))
        else:
            sealers.append(Tls12CbcSealer(s, keys.mac_key[role], keys.key[role], etm, rng))
    ccs = plain_record(CT_CCS, b"\x01")
    flights = [
        (0, plain_record(CT_HANDSHAKE, ch, 0x0301)),
        (1, plain_record(CT_HANDSHAKE, sh + cert + ske + shd)),
        (0, plain_record(CT_HANDSHAKE, cke) + ccs + sealers[0].seal(CT_HANDSHAKE, c_fin)),
        (1, ccs + sealers[1].seal(CT_HANDSHAKE, s_fin)),
    ]
    return Session(flights, (sealers[0], sealers[1]), [f"CLIENT_RANDOM {cr.hex()} {master.hex()}"])


# --- WebSocket and OCPP ----------------------------------------------------------------------------------------------


def ws_frame(payload: bytes, mask: bytes | None, opcode: int = 1) -> bytes:
    """A final WebSocket frame; masked (client to server) when ``mask`` is given."""
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head = bytes((0x80 | opcode, mbit | n))
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, mbit | 127, n)
    if mask is None:
        return head + payload
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
    return head + mask + (int.from_bytes(payload, "big") ^ key).to_bytes(n, "big")


def iso(t_us: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t_us // 1_000_000))


@dataclass
class Counts:
    calls: int = 0
    results: int = 0
    ws_text: int = 0
    records: int = 0  # encrypted records (handshake ones included)
    connections: int = 0
    payload: int = 0  # TCP payload bytes (TLS records, headers included)
    packets: int = 0

    def add(self, other: Counts) -> None:
        for k in self.__dataclass_fields__:
            setattr(self, k, getattr(self, k) + getattr(other, k))


class OcppSession:
    """A charger's OCPP 1.6-J session: ``messages()`` yields ``(role, WebSocket frame bytes, gap µs before)``."""

    def __init__(self, rng: random.Random, n: int, backlog: float, counts: Counts) -> None:
        self.rng, self.n, self.backlog, self.counts = rng, n, backlog, counts
        self.meter_wh = 1000.0 * n
        self.t = T0_US

    def call(self, action: str, body: str, result: str) -> Iterator[tuple[int, bytes, int]]:
        rng = self.rng
        uid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        self.counts.calls += 1
        self.counts.results += 1
        self.counts.ws_text += 2
        yield 0, ws_frame(f'[2,"{uid}","{action}",{body}]'.encode(), rng.randbytes(4)), rng.randint(200_000, 2_000_000)
        yield 1, ws_frame(f'[3,"{uid}",{result}]'.encode(), None), rng.randint(2_000, 60_000)

    def boot(self) -> Iterator[tuple[int, bytes, int]]:
        n = self.n
        body = (
            f'{{"chargePointVendor":"VoltWorks","chargePointModel":"VW-22","chargePointSerialNumber":"VW{n:08d}",'
            f'"firmwareVersion":"4.2.2","meterType":"EM340","iccid":"8944{n:015d}"}}'
        )
        yield from self.call(
            "BootNotification", body, f'{{"status":"Accepted","currentTime":"{iso(T0_US)}","interval":60}}'
        )

    def meter_values(self, samples: int) -> str:
        rng = self.rng
        out = []
        for k in range(samples):
            self.meter_wh += rng.uniform(5, 400)
            values = SAMPLED_VALUES.format(
                wh=self.meter_wh, w=rng.uniform(0, 22000), a=rng.uniform(0, 32), v=rng.uniform(225, 235)
            )
            out.append(f'{{"timestamp":"{iso(self.t - (samples - k) * 60_000_000)}","sampledValue":[{values}]}}')
        return f'{{"connectorId":1,"transactionId":{self.n},"meterValue":[{",".join(out)}]}}'

    def next_exchange(self) -> Iterator[tuple[int, bytes, int]]:
        rng = self.rng
        self.t += 1_000_000
        pick = rng.random()
        if pick < self.backlog:
            yield from self.call("MeterValues", self.meter_values(rng.randint(20, 120)), "{}")
        elif pick < self.backlog + (1 - self.backlog) * 0.5:
            yield from self.call("MeterValues", self.meter_values(1), "{}")
        elif pick < self.backlog + (1 - self.backlog) * 0.8:
            yield from self.call("Heartbeat", "{}", f'{{"currentTime":"{iso(self.t)}"}}')
        else:
            body = f'{{"connectorId":1,"errorCode":"NoError","status":"Charging","timestamp":"{iso(self.t)}"}}'
            yield from self.call("StatusNotification", body, "{}")


def upgrade(rng: random.Random, n: int) -> tuple[bytes, bytes]:
    key = base64.b64encode(rng.randbytes(16)).decode()
    accept = base64.b64encode(hashlib.sha1(key.encode() + WS_GUID).digest()).decode()
    request = (
        f"GET /ocpp/CP-{n:04d} HTTP/1.1\r\nHost: {CSMS_NAME}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ocpp1.6\r\n"
        f"Authorization: Basic {base64.b64encode(f'CP-{n:04d}:secret'.encode()).decode()}\r\n\r\n"
    )
    response = (
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Protocol: ocpp1.6\r\n\r\n"
    )
    return request.encode(), response.encode()


# --- TCP and pcap ----------------------------------------------------------------------------------------------------


def _csum_value(data: bytes) -> int:
    """≡ the sum of ``data``'s 16-bit words mod 0xFFFF (2^16 ≡ 1)."""
    v = int.from_bytes(data, "big")
    return v << 8 if len(data) & 1 else v


def _fold(total: int) -> int:
    return (0xFFFF - total % 0xFFFF) % 0xFFFF


class PcapWriter:
    def __init__(self, f: BinaryIO) -> None:
        self.f = f
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))  # Ethernet, µs
        self.t = T0_US
        self.packets = 0

    def frame(self, data: bytes) -> None:
        sec, us = divmod(self.t, 1_000_000)
        self.f.write(struct.pack("<IIII", sec, us, len(data), len(data)))
        self.f.write(data)
        self.packets += 1


class Half:
    """One direction's Ethernet/IPv4/TCP header parts."""

    def __init__(self, src: bytes, dst: bytes, sport: int, dport: int, macs: tuple[bytes, bytes], seq: int) -> None:
        self.eth = macs[1] + macs[0] + b"\x08\x00"
        self.src, self.dst, self.sport, self.dport = src, dst, sport, dport
        self.seq = seq
        self.ip_id = seq & 0xFFFF
        self.pseudo = sum(struct.unpack("!4H", src + dst)) + 6 + sport + dport

    def packet(self, ack: int, flags: int, payload: bytes = b"", opts: bytes = b"") -> bytes:
        hlen = 20 + len(opts)
        seg = hlen + len(payload)
        seq = self.seq & 0xFFFFFFFF
        offflags = (hlen // 4) << 12 | flags
        total = self.pseudo + seg + seq + ack + offflags + 65535 + _csum_value(opts) + _csum_value(payload)
        tcp = struct.pack("!HHIIHHHH", self.sport, self.dport, seq, ack, offflags, 65535, _fold(total), 0) + opts
        self.ip_id = (self.ip_id + 1) & 0xFFFF
        ip_total = 20 + seg
        ip_sum = _fold(0x4500 + ip_total + self.ip_id + 0x4000 + (64 << 8 | 6) + _csum_value(self.src + self.dst))
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, ip_total, self.ip_id, 0x4000, 64, 6, ip_sum, self.src, self.dst)
        return b"".join((self.eth, ip, tcp, payload))


class TcpConn:
    def __init__(self, w: PcapWriter, rng: random.Random, n: int, mss: int, counts: Counts) -> None:
        client = bytes((10, 20, n // 250, 1 + n % 250))
        server = bytes((203, 0, 113, 10))
        macs = (bytes.fromhex("02000000") + n.to_bytes(2, "big"), bytes.fromhex("00163e5a0001"))
        cport = 40000 + n
        self.w, self.mss, self.counts = w, mss, counts
        self.half = (
            Half(client, server, cport, 443, macs, rng.getrandbits(32)),
            Half(server, client, 443, cport, (macs[1], macs[0]), rng.getrandbits(32)),
        )

    def open(self) -> None:
        c, s = self.half
        mss_opt = b"\x02\x04" + min(self.mss + 12, 65495).to_bytes(2, "big")
        self.w.frame(c.packet(0, 0x02, opts=mss_opt))
        c.seq += 1
        self.w.t += 800
        self.w.frame(s.packet(c.seq & 0xFFFFFFFF, 0x12, opts=mss_opt))
        s.seq += 1
        self.w.t += 300
        self.w.frame(c.packet(s.seq & 0xFFFFFFFF, 0x10))

    def send(self, role: int, data: bytes, gap_us: int) -> None:
        """``data`` from ``role`` in MSS-sized segments, the peer ACKing every second one and the last."""
        me, peer = self.half[role], self.half[1 - role]
        w, mss = self.w, self.mss
        w.t += gap_us
        peer_seq = peer.seq & 0xFFFFFFFF
        n = len(data)
        segs = 0
        for off in range(0, n, mss):
            chunk = data[off : off + mss]
            last = off + mss >= n
            w.frame(me.packet(peer_seq, 0x18 if last else 0x10, chunk))
            me.seq += len(chunk)
            segs += 1
            w.t += 12
            if segs % 2 == 0 or last:
                w.t += 30
                w.frame(peer.packet(me.seq & 0xFFFFFFFF, 0x10))
        self.counts.payload += n

    def close(self) -> None:
        c, s = self.half
        self.w.t += 500
        self.w.frame(s.packet(c.seq & 0xFFFFFFFF, 0x11))
        s.seq += 1
        self.w.t += 300
        self.w.frame(c.packet(s.seq & 0xFFFFFFFF, 0x11))
        c.seq += 1
        self.w.t += 300
        self.w.frame(s.packet(c.seq & 0xFFFFFFFF, 0x10))


# --- one capture -----------------------------------------------------------------------------------------------------


def wss_connection(
    w: PcapWriter,
    rng: random.Random,
    v: Variant,
    n: int,
    target: int,
    mss: int,
    backlog: float,
    etm: bool,
    counts: Counts,
) -> list[str]:
    """One charger connection of about ``target`` TLS bytes; returns its key-log lines."""
    s = suite(v.suite_id)
    assert isinstance(s, Suite)
    tls = handshake13(rng, s) if v.tls13 else handshake12(rng, s, etm)
    conn = TcpConn(w, rng, n, mss, counts)
    counts.connections += 1
    conn.open()
    w.t += 400
    for role, data in tls.flights:
        conn.send(role, data, rng.randint(300, 3_000))
    sealers = tls.sealers
    request, response = upgrade(rng, n)
    conn.send(0, sealers[0].seal(CT_APP, request), 2_000)
    conn.send(1, sealers[1].seal(CT_APP, response), 15_000)
    ocpp = OcppSession(rng, n, backlog, counts)

    def exchange(messages: Iterator[tuple[int, bytes, int]]) -> None:
        for role, frame, gap in messages:
            conn.send(role, sealers[role].seal(CT_APP, frame), gap)

    exchange(ocpp.boot())
    start = counts.payload
    while counts.payload - start < target:
        exchange(ocpp.next_exchange())
    close = struct.pack("!H", 1000)
    conn.send(0, sealers[0].seal(CT_APP, ws_frame(close, rng.randbytes(4), opcode=8)), 500_000)
    conn.send(1, sealers[1].seal(CT_APP, ws_frame(close, None, opcode=8)), 400)
    conn.send(1, sealers[1].seal(CT_ALERT, b"\x01\x00"), 100)  # close_notify
    conn.send(0, sealers[0].seal(CT_ALERT, b"\x01\x00"), 200)
    conn.close()
    counts.records += sealers[0].seq + sealers[1].seq + tls.hs_records
    return tls.keylog


@dataclass
class Capture:
    variant: Variant
    pcap: Path
    keys: Path
    counts: Counts = field(default_factory=Counts)
    built: bool = False  # written by this run (not reused)


def build_capture(v: Variant, mb: float, mss: int, backlog: float, etm: bool, rebuild: bool, tag: str) -> Capture:
    """Write ``bench/out/tls-<variant>-<mb>mb-....pcap`` and its key log (or reuse them)."""
    OUT.mkdir(parents=True, exist_ok=True)
    name = f"tls-{v.key}{'-etm' if etm and not v.tls13 else ''}-{mb:g}mb-mss{mss}-b{backlog:g}-{tag}"
    cap = Capture(v, OUT / f"{name}.pcap", OUT / f"{name}.keys.txt")
    meta = OUT / f"{name}.json"
    if not rebuild and cap.pcap.exists() and cap.keys.exists() and meta.exists():
        cap.counts = Counts(**json.loads(meta.read_text()))
        return cap
    rng = random.Random(f"{v.key}-{mb}-{mss}-{backlog}")
    target = int(mb * 1_000_000)
    shares = (0.85, 0.05, 0.05, 0.05)
    keylog = ["# TLS secrets log file, written by bench/tls_decrypt.py"]
    tmp = cap.pcap.with_suffix(".pcap.part")
    with open(tmp, "wb", buffering=8 << 20) as f:
        w = PcapWriter(f)
        for i, share in enumerate(shares):
            keylog += wss_connection(w, rng, v, 1 + i, int(target * share), mss, backlog, etm, cap.counts)
            w.t += 5_000_000
        cap.counts.packets = w.packets
    tmp.replace(cap.pcap)
    cap.keys.write_text("\n".join(keylog) + "\n")
    meta.write_text(json.dumps(cap.counts.__dict__))
    cap.built = True
    return cap


def source_tag() -> str:
    """Captures are reused only by the generator that wrote them."""
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:8]


# --- checking --------------------------------------------------------------------------------------------------------


def check_capture(cap: Capture) -> list[str]:
    """Problems found decoding ``cap`` with and without its key log (empty: all is well)."""
    from analyzer.engine import build_timeline
    from analyzer.events.base import DecodeAnomaly
    from analyzer.events.ocpp import OcppCall, OcppCallResult
    from analyzer.events.tls import TlsSummary

    problems = []
    tl = build_timeline(cap.pcap, [str(cap.keys)]).timeline
    summaries = tl.of_type(TlsSummary)
    calls = [e for e in tl.events if e.kind == "ocpp.call"]
    results = tl.of_type(OcppCallResult)
    if len(summaries) != cap.counts.connections:
        problems.append(f"{len(summaries)} tls.summary events for {cap.counts.connections} connections")
    for e in summaries:
        if e.decryption != "decrypted":
            problems.append(f"flow {e.flow_id}: decryption {e.decryption!r} ({e.decryption_detail})")
        if e.decrypted_records != e.encrypted_records:
            problems.append(f"flow {e.flow_id}: decrypted {e.decrypted_records} of {e.encrypted_records} records")
    records = sum(sum(e.encrypted_records) for e in summaries)
    if records != cap.counts.records:
        problems.append(f"{records} encrypted records counted, {cap.counts.records} written")
    if len(calls) != cap.counts.calls or not all(isinstance(e, OcppCall) for e in calls):
        problems.append(f"{len(calls)} ocpp.call events, {cap.counts.calls} CALLs written")
    if len(results) != cap.counts.results:
        problems.append(f"{len(results)} ocpp.call_result events, {cap.counts.results} CALLRESULTs written")
    unpaired = sum(1 for e in results if e.pairing != "paired")
    if unpaired:
        problems.append(f"{unpaired} CALLRESULTs not paired with their CALL")
    invalid = sum(1 for e in calls if e.violations)
    if invalid:
        problems.append(f"{invalid} CALLs with schema violations")
    anomalies = tl.of_type(DecodeAnomaly)
    if anomalies:
        problems.append(f"{len(anomalies)} anomalies, first: {anomalies[0].name}: {anomalies[0].detail}")
    bare = build_timeline(cap.pcap).timeline
    if any(e.kind.startswith("ocpp.") for e in bare.events):
        problems.append("OCPP events without a key log")
    if any(e.decryption not in (None, "no_keys") for e in bare.of_type(TlsSummary)):
        problems.append("a session says decrypted without a key log")
    return problems


def tshark_check(cap: Capture) -> str:
    """tshark's count of decrypted WebSocket text frames (None if tshark is missing)."""
    tshark = shutil.which("tshark")
    if tshark is None:
        return "tshark not found: second opinion skipped"
    argv = [tshark, "-n", "-r", str(cap.pcap), "-o", f"tls.keylog_file:{cap.keys}", "-d", "tcp.port==443,tls"]
    run = subprocess.run(
        [*argv, "-Y", "websocket.opcode == 1", "-T", "fields", "-e", "frame.number"],
        capture_output=True,
        text=True,
        check=False,
    )
    frames = len(run.stdout.split())
    ok = "ok" if frames == cap.counts.ws_text else "MISMATCH"
    return f"tshark decrypted {frames} WebSocket text frames of {cap.counts.ws_text} written: {ok}"


# --- timing ----------------------------------------------------------------------------------------------------------


def _no_inner() -> list[float]:
    """In a child: TLS sessions decrypt, but their plaintext feeds no HTTP/WebSocket/OCPP decoder; the time spent
    in ``SessionKeys.decrypt`` (record class, sequence and stage bookkeeping) is added up in the returned list."""
    from analyzer.decoders import detect
    from analyzer.decoders.tls import TlsDecoder
    from analyzer.tls.session import SessionKeys

    def bare(flow_id: int, observer: Any = None, *, keys: Any = None, inner: Any = None) -> TlsDecoder:
        return TlsDecoder(flow_id, observer, keys=keys, inner=None)

    detect.TlsDecoder = bare  # type: ignore[assignment,misc]
    spent = [0.0]
    decrypt = SessionKeys.decrypt
    clock = time.perf_counter

    def timed(self: SessionKeys, *args: Any) -> Any:
        t0 = clock()
        try:
            return decrypt(self, *args)
        finally:
            spent[0] += clock() - t0

    SessionKeys.decrypt = timed  # type: ignore[method-assign]
    return spent


def run_mode(cap: Capture, mode: str) -> dict[str, Any]:
    from analyzer.engine import build_timeline
    from analyzer.events.tls import TlsSummary

    spent = _no_inner() if mode == "decrypt" else None
    keys = [] if mode == "nokeys" else [str(cap.keys)]
    gc.collect()
    t0 = time.perf_counter()
    result = build_timeline(cap.pcap, keys)
    seconds = time.perf_counter() - t0
    summaries = result.timeline.of_type(TlsSummary)
    return {
        "seconds": seconds,
        "events": len(result.timeline.events),
        "decrypted": sum(sum(e.decrypted_records) for e in summaries),
        "in_decrypt": spent[0] if spent else None,
    }


def in_child(fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run ``fn`` in a forked child; its result plus ``peak_mib`` (the child's ru_maxrss)."""
    sys.stdout.flush()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(r)
        status = 0
        try:
            data = json.dumps(fn()).encode()
        except BaseException as e:  # noqa: BLE001 -- a forked child must report and _exit, never return
            data = json.dumps({"error": f"{type(e).__name__}: {e}"}).encode()
            status = 1
        with os.fdopen(w, "wb") as f:
            f.write(data)
        os._exit(status)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    _, _, usage = os.wait4(pid, 0)
    out = json.loads(data or b'{"error": "child died"}')
    out["peak_mib"] = usage.ru_maxrss / 1024
    if "error" in out:
        raise RuntimeError(out["error"])
    return out


@dataclass
class Timing:
    cap: Capture
    label: str
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    spread: dict[str, float] = field(default_factory=dict)  # max - min seconds over the repeats


REPEAT_UNDER = 5.0  # a run shorter than this (seconds) is repeated


def time_capture(cap: Capture, label: str, repeat: int) -> Timing:
    """Each mode ``repeat`` times (a run over ``REPEAT_UNDER`` seconds only once), the fastest kept."""
    t = Timing(cap, label)
    for mode in ("nokeys", "decrypt", "full"):
        runs = []
        while len(runs) < repeat:
            runs.append(in_child(lambda mode=mode: run_mode(cap, mode)))
            if runs[-1]["seconds"] > REPEAT_UNDER:
                break
        best = min(runs, key=lambda r: r["seconds"])
        best["peak_mib"] = max(r["peak_mib"] for r in runs)
        best["n"] = len(runs)
        want = 0 if mode == "nokeys" else cap.counts.records
        if best["decrypted"] != want:
            raise RuntimeError(f"{cap.pcap.name} {mode}: {best['decrypted']} records decrypted, expected {want}")
        t.runs[mode] = best
        t.spread[mode] = max(r["seconds"] for r in runs) - best["seconds"]
    return t


def rate(mb: float, seconds: float, noise: float = 0.0) -> str:
    """MB/s, or why not: a difference within the run-to-run spread is not a measurement."""
    if seconds <= max(noise, 0.005):
        return f"{'(noise)':>9}"
    return f"{mb / seconds:9.1f}"


# --- record microbenchmark -------------------------------------------------------------------------------------------


def micro(records: int, sizes: tuple[int, ...]) -> list[str]:
    """Decrypt ``records`` records of each size with ghostcap's record classes and with ``cryptography`` alone."""
    rng = random.Random(7)
    lines = [
        f"  {'record class / cipher':<44} {'plain B':>7} {'records':>7} {'ghostcap MB/s':>13} {'rec/s':>9} "
        f"{'bare MB/s':>9} {'overhead':>8}"
    ]
    cases: list[tuple[str, Callable[[], Any], Sealer, Callable[[], Callable[[bytes], Any]]]] = []
    for v in VARIANTS:
        s = suite(v.suite_id)
        assert isinstance(s, Suite)
        if v.tls13:
            secret = rng.randbytes(32)
            key, iv = traffic_keys(s, secret)
            cases.append(
                (
                    f"Tls13Aead {s.kind}",
                    lambda s=s, key=key, iv=iv: Tls13Aead(s, key, iv),
                    Tls13Sealer(s, secret),
                    lambda s=s, key=key, iv=iv: _bare13(s, key, iv),
                )
            )
            continue
        master, cr, sr = rng.randbytes(48), rng.randbytes(32), rng.randbytes(32)
        k = Tls12Keys(s, master, cr, sr, 0x0303)
        if s.aead:
            cases.append(
                (
                    f"Tls12Aead {s.kind}",
                    lambda s=s, k=k: Tls12Aead(s, k.key[0], k.iv[0]),
                    Tls12GcmSealer(s, k.key[0], k.iv[0]),
                    lambda s=s, k=k: _bare12gcm(s, k.key[0], k.iv[0]),
                )
            )
        else:
            for etm in (False, True):
                cases.append(
                    (
                        f"Tls12Cbc aes-128 hmac-{s.mac}{' etm' if etm else ''}",
                        lambda s=s, k=k, etm=etm: Tls12Cbc(s, k.mac_key[0], k.key[0], k.iv[0], 0x0303, etm),
                        Tls12CbcSealer(s, k.mac_key[0], k.key[0], etm, rng),
                        lambda s=s, k=k, etm=etm: _bare_cbc(s, k.mac_key[0], k.key[0], etm),
                    )
                )
    for name, make, sealer, bare in cases:
        for size in sizes:
            sealer.seq = 0
            recs = [sealer.one(CT_APP, rng.randbytes(size)) for _ in range(records)]
            bodies = [(r[0], (r[1] << 8) | r[2], r[5:]) for r in recs]
            wire = sum(len(r) for r in recs) / 1e6
            best = best_bare = float("inf")
            for _ in range(3):
                dec = make()
                t0 = time.perf_counter()
                for ctype, ver, body in bodies:
                    dec.decrypt(ctype, ver, body)
                best = min(best, time.perf_counter() - t0)
                fn = bare()
                t0 = time.perf_counter()
                for _, _, body in bodies:
                    fn(body)
                best_bare = min(best_bare, time.perf_counter() - t0)
            lines.append(
                f"  {name:<44} {size:>7} {records:>7} {wire / best:13.1f} {records / best:9.0f} "
                f"{wire / best_bare:9.1f} {best / best_bare:7.2f}x"
            )
    return lines


def _bare13(s: Suite, key: bytes, iv: bytes) -> Callable[[bytes], Any]:
    aead, ivi, seq = _aead_for(s, key), int.from_bytes(iv, "big"), [0]

    def fn(body: bytes) -> bytes:
        n = seq[0]
        seq[0] = n + 1
        return aead.decrypt((ivi ^ n).to_bytes(12, "big"), body, struct.pack("!BHH", CT_APP, 0x0303, len(body)))

    return fn


def _bare12gcm(s: Suite, key: bytes, salt: bytes) -> Callable[[bytes], Any]:
    aead, seq = _aead_for(s, key), [0]

    def fn(body: bytes) -> bytes:
        n = seq[0]
        seq[0] = n + 1
        return aead.decrypt(salt + body[:8], body[8:], struct.pack(">QBHH", n, CT_APP, 0x0303, len(body) - 24))

    return fn


def _bare_cbc(s: Suite, mac_key: bytes, key: bytes, etm: bool) -> Callable[[bytes], Any]:
    """AES-CBC decryption plus one HMAC over the content: what a CBC record costs at least."""
    algorithm, mac = algorithms.AES(key), s.mac
    assert mac is not None

    def fn(body: bytes) -> bytes:
        if etm:
            hmac.digest(mac_key, body[:-32], mac)
            body = body[:-32]
        d = Cipher(algorithm, modes.CBC(body[:16])).decryptor()
        plain = d.update(body[16:]) + d.finalize()
        if not etm:
            hmac.digest(mac_key, plain, mac)
        return plain

    return fn


# --- profile ---------------------------------------------------------------------------------------------------------


CHAIN = 0.5


def profile(cap: Capture, top: int) -> list[str]:
    """cProfile of one ``full`` run (in a child, so the parent's RSS stays its own): the top functions by own time,
    and by cumulative time below the pass-through chain (functions holding over ``CHAIN`` of the run)."""

    def work() -> dict[str, Any]:
        from analyzer.engine import build_timeline

        prof = cProfile.Profile()
        t0 = time.perf_counter()
        prof.enable()
        build_timeline(cap.pcap, [str(cap.keys)])
        prof.disable()
        seconds = time.perf_counter() - t0
        stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]
        total = max(ct for _, _, _, ct, _ in stats.values())
        rows = [(tt, ct, nc, f"{Path(f).name}:{line}({name})") for (f, line, name), (_, nc, tt, ct, _) in stats.items()]
        head = f"    {'ncalls':>9} {'tottime':>8} {'cumtime':>8} {'% run':>6}  function"

        def table(picked: list[tuple[float, float, int, str]]) -> list[str]:
            return [head] + [
                f"    {nc:>9} {tt:8.3f} {ct:8.3f} {100 * ct / total:5.1f}%  {where}" for tt, ct, nc, where in picked
            ]

        chain = sorted((r for r in rows if r[1] > CHAIN * total), key=lambda r: -r[1])
        text = [f"  top {top} by tottime (own time):", *table(sorted(rows, key=lambda r: -r[0])[:top])]
        text.append(f"  top {top} by cumulative time, below the call chain that holds over {CHAIN:.0%} of the run:")
        links = " > ".join(f"{r[3]} {100 * r[1] / total:.0f}%" for r in chain)
        text += textwrap.wrap(links, 116, initial_indent="    chain: ", subsequent_indent="      ")
        text += table(sorted((r for r in rows if r[1] <= CHAIN * total), key=lambda r: -r[1])[:top])
        return {"seconds": seconds, "text": text}

    r = in_child(work)
    return [f"  under cProfile: {r['seconds']:.2f} s, peak {r['peak_mib']:.0f} MiB", *r["text"]]


# --- main ------------------------------------------------------------------------------------------------------------


class Tee:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.lines: list[str] = []

    def __call__(self, text: str = "") -> None:
        print(text, flush=True)
        self.lines.append(text)
        self.path.write_text("\n".join(self.lines) + "\n")


def remove(cap: Capture) -> None:
    for path in (cap.pcap, cap.keys, cap.pcap.with_suffix(".json")):
        path.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mb", type=float, default=150, help="TLS payload MB per capture (default 150)")
    p.add_argument("--suites", default=",".join(BY_KEY), help=f"comma-separated, of: {', '.join(BY_KEY)}")
    p.add_argument("--mss", type=int, default=1448, help="TCP payload bytes per segment (default 1448)")
    p.add_argument("--backlog", type=float, default=0.25, help="share of CALLs that are 7-44 KB MeterValues backlogs")
    p.add_argument("--small-mb", type=float, default=15, help="MB of the small-record (--backlog 0) captures; 0: none")
    p.add_argument("--etm", action="store_true", help="TLS 1.2 CBC with encrypt_then_mac (RFC 7366)")
    p.add_argument("--repeat", type=int, default=3, help=f"runs per mode, best kept (runs over {REPEAT_UNDER:g} s: 1)")
    p.add_argument("--check-mb", type=float, default=2, help="size of the correctness-check captures (MB)")
    p.add_argument("--micro-records", type=int, default=2000, help="records per microbenchmark case")
    p.add_argument("--profile-suite", default="tls13-aes128gcm", help="suite profiled ('none' to skip)")
    p.add_argument("--profile-mb", type=float, default=30, help="capture size for the profile runs (MB)")
    p.add_argument("--top", type=int, default=10, help="functions listed per profile sort")
    p.add_argument("--rebuild", action="store_true", help="rebuild captures even if a matching one exists")
    p.add_argument("--keep", action="store_true", help="keep the captures for later runs (deleted otherwise)")
    a = p.parse_args(argv)
    variants = [BY_KEY[k.strip()] for k in a.suites.split(",") if k.strip()]
    out = Tee(REPORT)
    tag = source_tag()
    started = time.perf_counter()
    load = os.getloadavg()
    out(
        f"ghostcap TLS decryption benchmark  {time.strftime('%Y-%m-%d %H:%M:%S')}, {os.cpu_count()} CPUs, "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    out(
        f"python {sys.version.split()[0]}, cryptography {cryptography_version()}; mss {a.mss}; "
        f"{'CBC encrypt_then_mac; ' if a.etm else ''}best of {a.repeat} (runs over {REPEAT_UNDER:g} s: once)"
    )

    out("\ncorrectness (small captures, decoded with and without the key log)")
    failed = False
    for v in variants:
        cap = build_capture(v, a.check_mb, a.mss, a.backlog, a.etm, True, tag)
        problems = check_capture(cap)
        c = cap.counts
        status = "ok" if not problems else "FAILED"
        out(f"  {v.label:<40} {c.payload / 1e6:5.2f} MB, {c.records:,} records, {c.calls:,} CALLs: {status}")
        for prob in problems:
            out(f"      {prob}")
        out(f"      {tshark_check(cap)}")
        failed = failed or bool(problems)
        remove(cap)
    if failed:
        out("\ncorrectness check failed: no timings")
        return 1

    plan = [(v, a.mb, a.backlog, "mixed") for v in variants]
    if a.small_mb > 0:
        plan += [(v, a.small_mb, 0.0, "small") for v in variants]
    out(
        f"\ncaptures: 'mixed' = {a.backlog:g} of the CALLs are 7-44 KB MeterValues backlogs (mostly 16 KB records); "
        "'small' = one 100-700 B record per message"
    )
    timings = []
    for v, mb, backlog, mix in plan:
        t0 = time.perf_counter()
        cap = build_capture(v, mb, a.mss, backlog, a.etm, a.rebuild, tag)
        built = time.perf_counter() - t0
        c = cap.counts
        how = f"built in {built:.1f} s" if cap.built else "reused"
        out(
            f"  {cap.pcap.name}: {cap.pcap.stat().st_size / 1e6:.0f} MB, {c.packets:,} packets, {c.records:,} "
            f"records (avg {c.payload / max(c.records, 1):,.0f} B), {c.calls:,} CALLs; {how}"
        )
        t = time_capture(cap, mix, a.repeat)
        timings.append(t)
        r = t.runs
        out(
            "      "
            + ", ".join(f"{m} {r[m]['seconds']:.2f} s (x{r[m]['n']})" for m in ("nokeys", "decrypt", "full"))
            + f"; {r['full']['events']:,} events"
        )
        if not a.keep:
            remove(cap)

    out("\nresults (MB = 10^6 bytes of TLS payload: record headers and bodies, both directions)")
    out(
        f"  {'cipher suite':<40} {'mix':<5} {'TLS MB':>6} {'s keys':>7} {'s no keys':>9} {'e2e MB/s':>9} "
        f"{'diff MB/s':>9} {'s decrypt':>9} {'dec MB/s':>9} {'in-situ':>9} {'peak MiB nokeys/decrypt/full':>29}"
    )
    for t in timings:
        mb = t.cap.counts.payload / 1e6
        nk, de, fu = (t.runs[m] for m in ("nokeys", "decrypt", "full"))
        sp = t.spread
        peaks = f"{nk['peak_mib']:.0f} / {de['peak_mib']:.0f} / {fu['peak_mib']:.0f}"
        out(
            f"  {t.cap.variant.label:<40} {t.label:<5} {mb:6.1f} {fu['seconds']:7.2f} {nk['seconds']:9.2f} "
            f"{rate(mb, fu['seconds'])} {rate(mb, fu['seconds'] - nk['seconds'], max(sp['nokeys'], sp['full']))} "
            f"{de['seconds']:9.2f} {rate(mb, de['seconds'] - nk['seconds'], max(sp['nokeys'], sp['decrypt']))} "
            f"{mb / de['in_decrypt']:9.1f} {peaks:>29}"
        )
    out("  s keys     build_timeline(path, [keylog]): decryption + HTTP upgrade/WebSocket/OCPP decoders")
    out("  s no keys  build_timeline(path): TCP reassembly and the TLS record layer only")
    out("  e2e MB/s   TLS MB / s keys")
    out("  diff MB/s  TLS MB / (s keys - s no keys): what the key log costs, decryption plus the inner decoders")
    out("  s decrypt  with the key log, the inner decoders switched off (plaintext decrypted and dropped)")
    out("  dec MB/s   TLS MB / (s decrypt - s no keys): decryption alone ('(noise)': within run-to-run spread)")
    out("  in-situ    TLS MB / seconds inside SessionKeys.decrypt during the 's decrypt' run (timer included)")
    out("  peak MiB   ru_maxrss of each forked run (includes this process's pages at fork)")

    out(
        f"\nrecord classes alone ({a.micro_records} records per case, best of 3; MB/s of record bodies; "
        "bare = cryptography's call alone on the same records, CBC: AES-CBC + one HMAC)"
    )
    for line in micro(a.micro_records, (16384, 300)):
        out(line)

    if a.profile_suite != "none":
        v = BY_KEY[a.profile_suite]
        for mb, backlog, mix in ((a.profile_mb, a.backlog, "mixed"), (a.profile_mb / 3, 0.0, "small")):
            cap = build_capture(v, mb, a.mss, backlog, a.etm, a.rebuild, tag)
            out(f"\ncProfile: build_timeline with keys, {v.label}, {mix}, {cap.counts.payload / 1e6:.1f} MB")
            for line in profile(cap, a.top):
                out(line)
            if not a.keep:
                remove(cap)

    me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    out(f"\npeak RSS: this process {me:.0f} MiB; largest forked child (a build_timeline run) {kids:.0f} MiB")
    out(f"total {time.perf_counter() - started:.0f} s; saved to {REPORT.relative_to(REPO)}")
    return 0


def cryptography_version() -> str:
    import cryptography

    return cryptography.__version__


if __name__ == "__main__":
    sys.exit(main())
