"""Record protection, byte for byte: records sealed here with ``cryptography`` (the RFC constructions written out
in the test) open with ghostcap's record classes; a flipped byte, bad padding or a wrong MAC raise
``DecryptError`` and leave the sequence number where it was. Key derivation is checked against RFC 8448."""

from __future__ import annotations

import hmac
import os
import struct

import pytest
from cryptography.hazmat.decrepit.ciphers import algorithms as old
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESCCM, AESGCM, ChaCha20Poly1305

from analyzer.tls.keyschedule import Tls12Keys, next_secret, prf, traffic_keys
from analyzer.tls.record import DecryptError, Tls12Aead, Tls12Cbc, Tls12Stream, Tls13Aead
from analyzer.tls.suites import Suite, suite

V12 = 0x0303


def _suite(sid: int) -> Suite:
    s = suite(sid)
    assert isinstance(s, Suite), s
    return s


# --- TLS 1.3 --------------------------------------------------------------------------------------------------


def test_rfc8448_server_handshake_traffic_keys() -> None:
    """RFC 8448 §3 (simple 1-RTT handshake): server handshake traffic secret → write key and IV."""
    secret = bytes.fromhex("b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38")
    key, iv = traffic_keys(_suite(0x1301), secret)
    assert key.hex() == "3fce516009c21727d0f2e4e86ee403bc"
    assert iv.hex() == "5d313eb2671276ee13000b30"


def _seal13(s: Suite, key: bytes, iv: bytes, seq: int, inner: bytes) -> bytes:
    aead = {"gcm": AESGCM, "chacha": ChaCha20Poly1305}.get(s.kind)
    box = aead(key) if aead else AESCCM(key, tag_length=s.tag_len)
    size = len(inner) + s.tag_len
    header = bytes([23, 3, 3, size >> 8, size & 0xFF])
    nonce = (int.from_bytes(iv, "big") ^ seq).to_bytes(12, "big")
    return box.encrypt(nonce, inner, header)


@pytest.mark.parametrize("sid", [0x1301, 0x1302, 0x1303, 0x1304, 0x1305])
def test_tls13_records_open_in_sequence_and_strip_padding(sid: int) -> None:
    s = _suite(sid)
    key, iv = os.urandom(s.key_len), os.urandom(12)
    box = Tls13Aead(s, key, iv)
    first = _seal13(s, key, iv, 0, b"GET / HTTP/1.1\r\n\r\n" + b"\x17")
    second = _seal13(s, key, iv, 1, b"\x02\x2a" + b"\x15" + bytes(7))  # an alert, 7 bytes of padding
    assert box.decrypt(23, V12, first) == (23, b"GET / HTTP/1.1\r\n\r\n")
    assert box.decrypt(23, V12, second) == (21, b"\x02\x2a")
    assert box.seq == 2
    assert len(second) == 2 + 1 + 7 + s.tag_len


def test_tls13_rejects_a_flipped_byte_a_replay_and_a_record_of_only_padding() -> None:
    s = _suite(0x1301)
    key, iv = os.urandom(16), os.urandom(12)
    box = Tls13Aead(s, key, iv)
    rec = bytearray(_seal13(s, key, iv, 0, b"data\x17"))
    rec[3] ^= 1
    with pytest.raises(DecryptError, match="authentication failed"):
        box.decrypt(23, V12, bytes(rec))
    assert box.seq == 0
    with pytest.raises(DecryptError, match="authentication failed"):
        box.decrypt(23, V12, _seal13(s, key, iv, 1, b"data\x17"))  # sealed for the wrong sequence number
    with pytest.raises(DecryptError, match="only padding"):
        box.decrypt(23, V12, _seal13(s, key, iv, 0, bytes(4)))


def test_key_update_ratchets_the_secret() -> None:
    """RFC 8446 §7.2: application_traffic_secret_N+1 = HKDF-Expand-Label(secret_N, "traffic upd", "", Hash.length)."""
    s = _suite(0x1302)
    secret = bytes(range(48))
    nxt = next_secret(s, secret)
    assert len(nxt) == 48
    assert nxt != secret
    assert next_secret(s, secret) == nxt


# --- TLS 1.2 AEAD ---------------------------------------------------------------------------------------------


def _aad12(seq: int, ctype: int, size: int) -> bytes:
    return struct.pack(">QBHH", seq, ctype, V12, size)


@pytest.mark.parametrize("sid", [0xC02F, 0xC030, 0xC09C, 0xC0A0])
def test_tls12_gcm_and_ccm_use_the_explicit_nonce(sid: int) -> None:
    s = _suite(sid)
    key, salt = os.urandom(s.key_len), os.urandom(4)
    box = Tls12Aead(s, key, salt)
    out = []
    for seq, text in enumerate((b"first", b"second record")):
        explicit = os.urandom(8)
        sealer = AESGCM(key) if s.kind == "gcm" else AESCCM(key, tag_length=s.tag_len)
        rec = explicit + sealer.encrypt(salt + explicit, text, _aad12(seq, 23, len(text)))
        out.append(box.decrypt(23, V12, rec))
    assert out == [(23, b"first"), (23, b"second record")]
    with pytest.raises(DecryptError, match="shorter than its nonce and tag"):
        box.decrypt(23, V12, b"\x00" * 10)


def test_tls12_chacha20_uses_the_iv_xor_sequence_nonce() -> None:
    s = _suite(0xCCA8)
    key, iv = os.urandom(32), os.urandom(12)
    box = Tls12Aead(s, key, iv)
    for seq in range(3):
        nonce = (int.from_bytes(iv, "big") ^ seq).to_bytes(12, "big")
        rec = ChaCha20Poly1305(key).encrypt(nonce, b"x" * seq, _aad12(seq, 22, seq))
        assert box.decrypt(22, V12, rec) == (22, b"x" * seq)


# --- TLS 1.2 CBC and stream -----------------------------------------------------------------------------------


def _cbc(key: bytes, iv: bytes, data: bytes) -> bytes:
    e = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return e.update(data) + e.finalize()


def _pad(data: bytes, block: int, extra_blocks: int = 0) -> bytes:
    n = block - (len(data) + 1) % block + extra_blocks * block
    return data + bytes([n]) * (n + 1)


def test_cbc_mac_then_encrypt_with_explicit_iv() -> None:
    s = _suite(0xC027)  # AES_128_CBC_SHA256
    mac_key, key = os.urandom(32), os.urandom(16)
    box = Tls12Cbc(s, mac_key, key, os.urandom(16), V12, etm=False)
    for seq, text in enumerate((b"GET / HTTP/1.1", b"")):
        mac = hmac.digest(mac_key, _aad12(seq, 23, len(text)) + text, "sha256")
        iv = os.urandom(16)
        rec = iv + _cbc(key, iv, _pad(text + mac, 16, extra_blocks=seq))  # any valid padding length
        assert box.decrypt(23, V12, rec) == (23, text)
    iv = os.urandom(16)
    good = _pad(b"abc" + hmac.digest(mac_key, _aad12(2, 23, 3) + b"abc", "sha256"), 16)
    bad_pad = good[:-2] + bytes([good[-2] ^ 1]) + good[-1:]
    with pytest.raises(DecryptError, match="padding"):
        box.decrypt(23, V12, iv + _cbc(key, iv, bad_pad))
    wrong_mac = _pad(b"abc" + bytes(32), 16)
    with pytest.raises(DecryptError, match="MAC"):
        box.decrypt(23, V12, iv + _cbc(key, iv, wrong_mac))
    with pytest.raises(DecryptError, match="whole number of cipher blocks"):
        box.decrypt(23, V12, b"\x00" * 33)
    assert box.seq == 2


def test_cbc_encrypt_then_mac_checks_the_mac_over_the_ciphertext() -> None:
    s = _suite(0xC013)  # AES_128_CBC_SHA
    mac_key, key = os.urandom(20), os.urandom(16)
    box = Tls12Cbc(s, mac_key, key, os.urandom(16), V12, etm=True)
    iv = os.urandom(16)
    body = iv + _cbc(key, iv, _pad(b"ping", 16))
    rec = body + hmac.digest(mac_key, _aad12(0, 23, len(body)) + body, "sha1")
    assert box.decrypt(23, V12, rec) == (23, b"ping")
    tampered = bytearray(rec)
    tampered[20] ^= 1
    with pytest.raises(DecryptError, match="MAC"):
        box.decrypt(23, V12, bytes(tampered))


def test_tls10_cbc_chains_the_iv_from_the_previous_record() -> None:
    s = _suite(0x000A)  # 3DES_EDE_CBC_SHA
    mac_key, key, iv = os.urandom(20), os.urandom(24), os.urandom(8)
    box = Tls12Cbc(s, mac_key, key, iv, 0x0301, etm=False)
    for seq, text in enumerate((b"one", b"two two")):
        mac = hmac.digest(mac_key, struct.pack(">QBHH", seq, 23, 0x0301, len(text)) + text, "sha1")
        e = Cipher(old.TripleDES(key), modes.CBC(iv)).encryptor()
        rec = e.update(_pad(text + mac, 8)) + e.finalize()
        assert box.decrypt(23, 0x0301, rec) == (23, text)
        iv = rec[-8:]


def test_rc4_keeps_its_key_stream_across_records() -> None:
    s = _suite(0x0005)  # RC4_128_SHA
    mac_key, key = os.urandom(20), os.urandom(16)
    box = Tls12Stream(s, mac_key, key)
    enc = Cipher(old.ARC4(key), mode=None).encryptor()
    for seq, text in enumerate((b"hello", b"world!")):
        mac = hmac.digest(mac_key, _aad12(seq, 23, len(text)) + text, "sha1")
        assert box.decrypt(23, V12, enc.update(text + mac)) == (23, text)


def test_tls12_key_block_and_prf() -> None:
    """RFC 5246 §6.3 key block layout: MAC keys, then cipher keys, then IVs, client first; the TLS 1.0 PRF
    (MD5 ⊕ SHA-1) differs from TLS 1.2's P_SHA256."""
    s = _suite(0xC013)
    master, cr, sr = bytes(range(48)), bytes(32), bytes([1]) * 32
    k = Tls12Keys(s, master, cr, sr, V12)
    block = prf(master, b"key expansion", sr + cr, 2 * (20 + 16 + 16), hash_name="sha256", version=V12)
    assert k.mac_key == (block[:20], block[20:40])
    assert k.key == (block[40:56], block[56:72])
    assert k.iv == (block[72:88], block[88:104])
    tls10 = prf(master, b"key expansion", sr + cr, 32, hash_name="sha256", version=0x0301)
    assert tls10 != block[:32]
    assert len(tls10) == 32


def test_unsupported_suites_say_why() -> None:
    assert (
        suite(0x0003)
        == "cipher suite TLS_RSA_EXPORT_WITH_RC4_40_MD5 is an export suite, which ghostcap does not decrypt"
    )
    assert isinstance(suite(0xFFFF), str)
    assert _suite(0x0009).key_len == 8  # single DES
