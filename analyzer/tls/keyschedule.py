"""Key derivation: the TLS 1.2 (and 1.0/1.1) PRF key block, TLS 1.3 HKDF-Expand-Label traffic keys and key
updates (RFC 5246 §5, §6.3; RFC 2246 §5; RFC 8446 §7.1-7.3)."""

from __future__ import annotations

import hashlib
import hmac

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from analyzer.tls.suites import Suite

_HASHES = {"sha256": hashes.SHA256, "sha384": hashes.SHA384}


def _p_hash(name: str, secret: bytes, seed: bytes, size: int) -> bytes:
    out = bytearray()
    a = seed
    while len(out) < size:
        a = hmac.digest(secret, a, name)
        out += hmac.digest(secret, a + seed, name)
    return bytes(out[:size])


def prf(secret: bytes, label: bytes, seed: bytes, size: int, *, hash_name: str, version: int) -> bytes:
    """The TLS PRF: P_<hash> for TLS 1.2; MD5 ⊕ SHA-1 over the split secret for TLS 1.0 and 1.1."""
    if version >= 0x0303:
        return _p_hash(hash_name, secret, label + seed, size)
    half = (len(secret) + 1) // 2
    md5 = _p_hash("md5", secret[:half], label + seed, size)
    sha = _p_hash("sha1", secret[-half:], label + seed, size)
    return bytes(x ^ y for x, y in zip(md5, sha, strict=True))


class Tls12Keys:
    """Both directions' MAC key, cipher key and IV from the master secret (RFC 5246 §6.3)."""

    __slots__ = ("iv", "key", "mac_key")

    def __init__(self, s: Suite, master: bytes, client_random: bytes, server_random: bytes, version: int) -> None:
        mac_len = 0 if s.aead else s.mac_len
        size = 2 * (mac_len + s.key_len + s.iv_len)
        block = prf(master, b"key expansion", server_random + client_random, size, hash_name=s.prf, version=version)
        parts = []
        pos = 0
        for n in (mac_len, mac_len, s.key_len, s.key_len, s.iv_len, s.iv_len):
            parts.append(block[pos : pos + n])
            pos += n
        # index by direction role: 0 = client writes, 1 = server writes
        self.mac_key = (parts[0], parts[1])
        self.key = (parts[2], parts[3])
        self.iv = (parts[4], parts[5])


def hkdf_expand_label(secret: bytes, label: bytes, context: bytes, length: int, hash_name: str) -> bytes:
    full = b"tls13 " + label
    info = length.to_bytes(2, "big") + bytes([len(full)]) + full + bytes([len(context)]) + context
    return HKDFExpand(_HASHES[hash_name](), length, info).derive(secret)


def traffic_keys(s: Suite, secret: bytes) -> tuple[bytes, bytes]:
    """``(key, iv)`` for a TLS 1.3 traffic secret (RFC 8446 §7.3)."""
    return (
        hkdf_expand_label(secret, b"key", b"", s.key_len, s.prf),
        hkdf_expand_label(secret, b"iv", b"", 12, s.prf),
    )


def next_secret(s: Suite, secret: bytes) -> bytes:
    """The traffic secret after a KeyUpdate (RFC 8446 §7.2)."""
    return hkdf_expand_label(secret, b"traffic upd", b"", hashlib.new(s.prf).digest_size, s.prf)
