"""One connection's key state: TLS 1.3 moves from handshake to application keys at each side's Finished (or
when only the application keys authenticate), ratchets at a KeyUpdate and finds its place again after lost
records; TLS 1.2 starts at each ChangeCipherSpec. Every reason not to decrypt is named."""

from __future__ import annotations

import os
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from analyzer.tls import keylog as kl
from analyzer.tls.keyschedule import Tls12Keys, next_secret, traffic_keys
from analyzer.tls.session import HS_FINISHED, HS_KEY_UPDATE, SessionKeys
from analyzer.tls.suites import Suite, suite

CR, SR = os.urandom(32), os.urandom(32)
S13 = suite(0x1301)
S12 = suite(0xC02F)
assert isinstance(S13, Suite)
assert isinstance(S12, Suite)


@dataclass
class Facts:
    client_random: bytes | None = CR
    server_random: bytes | None = SR
    cipher_suite: int | None = 0x1301
    version: int | None = 0x0304
    server_extensions: tuple[int, ...] = ()


def _keylog(**secrets: bytes) -> kl.KeyLog:
    log = kl.KeyLog()
    log.add_text("".join(f"{label} {CR.hex()} {s.hex()}\n" for label, s in secrets.items()), "test")
    return log


def _seal13(secret: bytes, seq: int, inner: bytes) -> bytes:
    key, iv = traffic_keys(S13, secret)
    size = len(inner) + 16
    nonce = (int.from_bytes(iv, "big") ^ seq).to_bytes(12, "big")
    return AESGCM(key).encrypt(nonce, inner, bytes([23, 3, 3, size >> 8, size & 0xFF]))


HS_C, HS_S, APP_C, APP_S = (os.urandom(32) for _ in range(4))
FULL = {kl.CLIENT_HANDSHAKE: HS_C, kl.SERVER_HANDSHAKE: HS_S, kl.CLIENT_TRAFFIC_0: APP_C, kl.SERVER_TRAFFIC_0: APP_S}


def test_tls13_handshake_then_application_keys_then_a_key_update() -> None:
    keys = SessionKeys(_keylog(**FULL))
    f = Facts()
    assert keys.decrypt(1, 23, 0x0303, _seal13(HS_S, 0, b"\x08\x00\x00\x00\x16"), f, 6) == (22, b"\x08\x00\x00\x00")
    keys.handshake_message(1, HS_FINISHED)
    assert keys.decrypt(1, 23, 0x0303, _seal13(APP_S, 0, b"HTTP/1.1 101\x17"), f, 8) == (23, b"HTTP/1.1 101")
    keys.handshake_message(1, HS_KEY_UPDATE)
    nxt = next_secret(S13, APP_S)
    assert keys.decrypt(1, 23, 0x0303, _seal13(nxt, 0, b"after update\x17"), f, 9) == (23, b"after update")
    assert keys.key_updates == [0, 1]
    assert keys.decrypted == [0, 3]
    assert keys.status == "decrypted"


def test_tls13_moves_on_when_only_the_application_keys_authenticate() -> None:
    """A Finished the capture lost, or a key log with only the traffic secrets: the application key is tried."""
    keys = SessionKeys(_keylog(**{kl.CLIENT_TRAFFIC_0: APP_C}))
    assert keys.decrypt(0, 23, 0x0303, _seal13(APP_C, 0, b"GET /\x17"), Facts(), 10) == (23, b"GET /")
    assert keys.status == "decrypted"


def test_tls13_finds_its_place_after_lost_records() -> None:
    keys = SessionKeys(_keylog(**FULL))
    f = Facts()
    keys.handshake_message(0, HS_FINISHED)  # no cipher yet: nothing to move
    assert keys.decrypt(0, 23, 0x0303, _seal13(HS_C, 0, b"\x14\x00\x00\x00\x16"), f, 5) is not None
    keys.handshake_message(0, HS_FINISHED)
    keys.lost_record(0)  # one record went by damaged, and (unknown to us) two more were lost entirely
    assert keys.decrypt(0, 23, 0x0303, _seal13(APP_C, 3, b"late\x17"), f, 20) == (23, b"late")


def test_wrong_secrets_fail_once_and_stop_that_direction() -> None:
    keys = SessionKeys(_keylog(**{**FULL, kl.SERVER_HANDSHAKE: os.urandom(32)}))
    f = Facts()
    assert keys.decrypt(1, 23, 0x0303, _seal13(HS_S, 0, b"x\x16"), f, 6) is None
    assert keys.status == "failed"
    assert "server's record in frame 6 did not authenticate" in keys.detail
    assert keys.decrypt(1, 23, 0x0303, _seal13(HS_S, 1, b"x\x16"), f, 7) is None  # stays stopped
    assert keys.decrypt(0, 23, 0x0303, _seal13(HS_C, 0, b"y\x16"), f, 8) == (22, b"y")  # the other side is fine


def test_reasons_not_to_decrypt() -> None:
    no_keys = SessionKeys(_keylog(**{kl.CLIENT_RANDOM: bytes(48)}))
    other = Facts(client_random=os.urandom(32))
    assert no_keys.decrypt(0, 23, 0x0303, b"\x00" * 40, other, 5) is None
    assert no_keys.status == "no_keys"
    assert "CLIENT_HANDSHAKE_TRAFFIC_SECRET / CLIENT_TRAFFIC_SECRET_0" in no_keys.detail

    mid = SessionKeys(_keylog(**FULL))
    assert mid.decrypt(0, 23, 0x0303, b"\x00" * 40, Facts(version=None), 5) is None
    assert mid.status == "no_handshake"

    export = SessionKeys(_keylog(**{kl.CLIENT_RANDOM: bytes(48)}))
    export.change_cipher_spec(0, Facts(cipher_suite=0x0003, version=0x0303))
    assert export.status == "unsupported"
    assert "export suite" in export.detail

    nothing = SessionKeys(kl.KeyLog())
    assert nothing.decrypt(0, 23, 0x0303, b"\x00" * 40, Facts(), 5) is None
    assert nothing.status is None  # no key log at all: nothing to report
    assert not nothing.active()


def test_tls12_starts_at_each_change_cipher_spec() -> None:
    master = os.urandom(48)
    keys = SessionKeys(_keylog(**{kl.CLIENT_RANDOM: master}))
    f = Facts(cipher_suite=0xC02F, version=0x0303)
    k = Tls12Keys(S12, master, CR, SR, 0x0303)
    assert keys.decrypt(0, 22, 0x0303, b"\x00" * 40, f, 5) is None  # before its ChangeCipherSpec: not encrypted
    keys.change_cipher_spec(0, f)
    explicit = os.urandom(8)
    aad = (0).to_bytes(8, "big") + bytes([22, 3, 3, 0, 16])
    rec = explicit + AESGCM(k.key[0]).encrypt(k.iv[0] + explicit, b"\x14\x00\x00\x0c" + bytes(12), aad)
    assert keys.decrypt(0, 22, 0x0303, rec, f, 9) == (22, b"\x14\x00\x00\x0c" + bytes(12))
    assert keys.status == "decrypted"
