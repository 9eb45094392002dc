"""What decrypting a cipher suite needs, read from its IANA name (``TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256``).

The key exchange does not matter here: the key log carries the master secret (TLS ≤ 1.2) or the traffic secrets
(TLS 1.3). What matters is the bulk cipher, its key and IV sizes, the record MAC and the PRF hash.
"""

from __future__ import annotations

from dataclasses import dataclass

from analyzer.decoders.tls_names import cipher_name

# bulk cipher name in the suite → (kind, key length, fixed IV length, block size)
# kind: "gcm" / "ccm" / "ccm8" / "chacha" (AEAD), "cbc:<algorithm>", "rc4", "null"
_BULK: dict[str, tuple[str, int, int, int]] = {
    "AES_128_GCM": ("gcm", 16, 4, 0),
    "AES_256_GCM": ("gcm", 32, 4, 0),
    "AES_128_CCM": ("ccm", 16, 4, 0),
    "AES_256_CCM": ("ccm", 32, 4, 0),
    "AES_128_CCM_8": ("ccm8", 16, 4, 0),
    "AES_256_CCM_8": ("ccm8", 32, 4, 0),
    "CHACHA20_POLY1305": ("chacha", 32, 12, 0),
    "AES_128_CBC": ("cbc:aes", 16, 16, 16),
    "AES_256_CBC": ("cbc:aes", 32, 16, 16),
    "CAMELLIA_128_CBC": ("cbc:camellia", 16, 16, 16),
    "CAMELLIA_256_CBC": ("cbc:camellia", 32, 16, 16),
    "3DES_EDE_CBC": ("cbc:3des", 24, 8, 8),
    "DES_CBC": ("cbc:3des", 8, 8, 8),  # TripleDES with one 8-byte key is single DES
    "IDEA_CBC": ("cbc:idea", 16, 8, 8),
    "SEED_CBC": ("cbc:seed", 16, 16, 16),
    "RC4_128": ("rc4", 16, 0, 0),
    "NULL": ("null", 0, 0, 0),
}
_HASH_LEN = {"MD5": 16, "SHA": 20, "SHA256": 32, "SHA384": 48}
# TLS 1.3 suites (RFC 8446 §B.4): AEAD and HKDF hash; the fixed IV is 12 bytes
_TLS13 = {
    0x1301: ("gcm", 16, "sha256"),
    0x1302: ("gcm", 32, "sha384"),
    0x1303: ("chacha", 32, "sha256"),
    0x1304: ("ccm", 16, "sha256"),
    0x1305: ("ccm8", 16, "sha256"),
}


@dataclass(frozen=True, slots=True)
class Suite:
    """``kind`` (see ``_BULK``), ``key_len``, ``iv_len`` (fixed IV from the key block; 12 for TLS 1.3),
    ``block`` (CBC block size), ``mac`` (``sha1``/``sha256``/``sha384``/``md5`` for CBC and stream suites,
    ``None`` for AEAD), ``mac_len``, ``prf`` (hash of the TLS 1.2 PRF or the TLS 1.3 HKDF), ``tls13``."""

    id: int
    name: str
    kind: str
    key_len: int
    iv_len: int
    block: int
    mac: str | None
    mac_len: int
    prf: str
    tls13: bool = False

    @property
    def aead(self) -> bool:
        return self.mac is None

    @property
    def tag_len(self) -> int:
        return 8 if self.kind == "ccm8" else 16


def suite(suite_id: int) -> Suite | str:
    """Parameters for ``suite_id``, or why it cannot be decrypted (one sentence)."""
    name = cipher_name(suite_id) or f"0x{suite_id:04x}"
    if suite_id in _TLS13:
        kind, key_len, prf = _TLS13[suite_id]
        return Suite(suite_id, name, kind, key_len, 12, 0, None, 0, prf, tls13=True)
    if "_WITH_" not in name:
        return f"cipher suite {name} is not one ghostcap can decrypt"
    if "EXPORT" in name:
        return f"cipher suite {name} is an export suite, which ghostcap does not decrypt"
    bulk_mac = name.split("_WITH_", 1)[1]
    bulk, _, mac_name = bulk_mac.rpartition("_")
    if mac_name == "8" and bulk.endswith("_CCM"):  # AES_128_CCM_8 has no MAC part
        bulk, mac_name = bulk + "_8", ""
    elif mac_name in ("CCM", "POLY1305"):
        bulk, mac_name = bulk_mac, ""
    params = _BULK.get(bulk)
    if params is None:
        return f"cipher suite {name} uses {bulk}, which ghostcap does not decrypt"
    kind, key_len, iv_len, block = params
    if kind in ("gcm", "ccm", "ccm8", "chacha"):
        prf = "sha384" if mac_name == "SHA384" else "sha256"
        return Suite(suite_id, name, kind, key_len, iv_len, 0, None, 0, prf)
    if mac_name not in _HASH_LEN:
        return f"cipher suite {name} uses a MAC ghostcap does not know ({mac_name})"
    mac = {"SHA": "sha1"}.get(mac_name, mac_name.lower())
    prf = "sha384" if mac_name == "SHA384" else "sha256"
    return Suite(suite_id, name, kind, key_len, iv_len, block, mac, _HASH_LEN[mac_name], prf)
