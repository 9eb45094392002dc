"""Record protection, one direction each: decrypt and authenticate a TLS record with ``cryptography``'s ciphers.

- ``Tls13Aead``: RFC 8446 §5.2-5.3 (per-record nonce = IV ⊕ sequence number; the record header is the AAD; the
  inner plaintext ends with its real content type, after optional zero padding);
- ``Tls12Aead``: AES-GCM / AES-CCM with an 8-byte explicit nonce (RFC 5288, RFC 6655) and ChaCha20-Poly1305 with
  the TLS 1.3-style nonce (RFC 7905);
- ``Tls12Cbc``: block ciphers in CBC mode with HMAC, MAC-then-encrypt (RFC 5246 §6.2.3.2) or encrypt-then-MAC
  (RFC 7366); TLS 1.0's implicit IV (the previous record's last ciphertext block) and the explicit IV of 1.1+;
- ``Tls12Stream``: RC4 and NULL with HMAC.

``decrypt`` returns ``(content type, plaintext)`` and advances the sequence number, or raises ``DecryptError``
(authentication failed: wrong keys, or a record out of step) and leaves the state as it was.
"""

from __future__ import annotations

import hmac
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.decrepit.ciphers import algorithms as old
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESCCM, AESGCM, ChaCha20Poly1305

from analyzer.tls.suites import Suite

_SEQ = struct.Struct(">Q")
_AAD12 = struct.Struct(">QBHH")  # seq, type, version, length


class DecryptError(Exception):
    """A record did not authenticate or decode."""


def _aead(s: Suite, key: bytes) -> AESGCM | AESCCM | ChaCha20Poly1305:
    if s.kind == "gcm":
        return AESGCM(key)
    if s.kind == "chacha":
        return ChaCha20Poly1305(key)
    return AESCCM(key, tag_length=s.tag_len)


class Tls13Aead:
    __slots__ = ("aead", "iv", "seq")

    def __init__(self, s: Suite, key: bytes, iv: bytes) -> None:
        self.aead = _aead(s, key)
        self.iv = int.from_bytes(iv, "big")
        self.seq = 0

    def decrypt(self, ctype: int, version: int, payload: bytes) -> tuple[int, bytes]:
        nonce = (self.iv ^ self.seq).to_bytes(12, "big")
        aad = bytes((ctype, version >> 8, version & 0xFF, len(payload) >> 8, len(payload) & 0xFF))
        try:
            inner = self.aead.decrypt(nonce, payload, aad)
        except (InvalidTag, ValueError):
            raise DecryptError("authentication failed") from None
        self.seq += 1
        inner = inner.rstrip(b"\x00")
        if not inner:
            raise DecryptError("a record of only padding has no content type")
        return inner[-1], inner[:-1]


class Tls12Aead:
    __slots__ = ("aead", "explicit", "iv", "iv_int", "seq", "tag")

    def __init__(self, s: Suite, key: bytes, iv: bytes) -> None:
        self.aead = _aead(s, key)
        self.explicit = s.kind != "chacha"
        self.iv = iv
        self.iv_int = int.from_bytes(iv, "big")
        self.tag = s.tag_len
        self.seq = 0

    def decrypt(self, ctype: int, version: int, payload: bytes) -> tuple[int, bytes]:
        if self.explicit:
            nonce, data = self.iv + payload[:8], payload[8:]
        else:
            nonce, data = (self.iv_int ^ self.seq).to_bytes(12, "big"), payload
        size = len(data) - self.tag
        if size < 0:
            raise DecryptError(f"record of {len(payload)} bytes is shorter than its nonce and tag")
        try:
            plain = self.aead.decrypt(nonce, data, _AAD12.pack(self.seq, ctype, version, size))
        except (InvalidTag, ValueError):
            raise DecryptError("authentication failed") from None
        self.seq += 1
        return ctype, plain


def _block_cipher(s: Suite, key: bytes) -> algorithms.AES | old.Camellia | old.TripleDES | old.SEED | old.IDEA:
    name = s.kind.split(":", 1)[1]
    if name == "aes":
        return algorithms.AES(key)
    if name == "camellia":
        return old.Camellia(key)
    if name == "3des":
        return old.TripleDES(key * 3 if len(key) == 8 else key)  # single DES is 3DES with one key thrice
    if name == "seed":
        return old.SEED(key)
    return old.IDEA(key)


def _mac(name: str, key: bytes, seq: int, ctype: int, version: int, data: bytes) -> bytes:
    return hmac.digest(key, _AAD12.pack(seq, ctype, version, len(data)) + data, name)


class Tls12Cbc:
    __slots__ = ("algorithm", "block", "etm", "explicit_iv", "iv", "mac", "mac_key", "mac_len", "seq")

    def __init__(self, s: Suite, mac_key: bytes, key: bytes, iv: bytes, version: int, etm: bool) -> None:
        self.algorithm = _block_cipher(s, key)
        self.block = s.block
        self.mac = s.mac
        self.mac_key = mac_key
        self.mac_len = s.mac_len
        self.iv = iv
        self.explicit_iv = version >= 0x0302
        self.etm = etm
        self.seq = 0

    def decrypt(self, ctype: int, version: int, payload: bytes) -> tuple[int, bytes]:
        b, m = self.block, self.mac_len
        assert self.mac is not None
        if self.etm:
            if len(payload) < m + b or (len(payload) - m) % b:
                raise DecryptError(f"record of {len(payload)} bytes cannot be CBC with encrypt-then-MAC")
            body, tag = payload[:-m], payload[-m:]
            if not hmac.compare_digest(_mac(self.mac, self.mac_key, self.seq, ctype, version, body), tag):
                raise DecryptError("authentication failed (MAC)")
            content = self._unpad(self._cbc(body))
        else:
            if len(payload) < b or len(payload) % b:
                raise DecryptError(f"record of {len(payload)} bytes is not a whole number of cipher blocks")
            plain = self._unpad(self._cbc(payload))
            if len(plain) < m:
                raise DecryptError("authentication failed (record shorter than its MAC)")
            content, tag = plain[: len(plain) - m], plain[len(plain) - m :]
            if not hmac.compare_digest(_mac(self.mac, self.mac_key, self.seq, ctype, version, content), tag):
                raise DecryptError("authentication failed (MAC)")
        self.seq += 1
        if not self.explicit_iv:
            self.iv = payload[-b - (m if self.etm else 0) : len(payload) - (m if self.etm else 0)]
        return ctype, content

    def _cbc(self, data: bytes) -> bytes:
        if self.explicit_iv:
            iv, data = data[: self.block], data[self.block :]
        else:
            iv = self.iv
        d = Cipher(self.algorithm, modes.CBC(iv)).decryptor()
        return d.update(data) + d.finalize()

    @staticmethod
    def _unpad(plain: bytes) -> bytes:
        if not plain:
            raise DecryptError("authentication failed (empty record)")
        pad = plain[-1]
        if pad + 1 > len(plain) or plain[-pad - 1 :] != bytes((pad,)) * (pad + 1):
            raise DecryptError("authentication failed (padding)")
        return plain[: -pad - 1]


class Tls12Stream:
    __slots__ = ("decryptor", "mac", "mac_key", "mac_len", "seq")

    def __init__(self, s: Suite, mac_key: bytes, key: bytes) -> None:
        self.decryptor = Cipher(old.ARC4(key), mode=None).decryptor() if s.kind == "rc4" else None
        self.mac = s.mac
        self.mac_key = mac_key
        self.mac_len = s.mac_len
        self.seq = 0

    def decrypt(self, ctype: int, version: int, payload: bytes) -> tuple[int, bytes]:
        assert self.mac is not None
        # RC4's key stream moves on with every record, so a record that fails leaves it out of step for good
        plain = self.decryptor.update(payload) if self.decryptor is not None else payload
        m = self.mac_len
        if len(plain) < m:
            raise DecryptError("authentication failed (record shorter than its MAC)")
        content, tag = plain[: len(plain) - m], plain[len(plain) - m :]
        if not hmac.compare_digest(_mac(self.mac, self.mac_key, self.seq, ctype, version, content), tag):
            raise DecryptError("authentication failed (MAC)")
        self.seq += 1
        return ctype, content
