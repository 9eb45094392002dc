"""TLS client and server fingerprints: JA3, JA3S (Salesforce) and JA4 (FoxIO).

JA3 (https://github.com/salesforce/ja3): ``SSLVersion,Ciphers,Extensions,EllipticCurves,EllipticCurvePointFormats``
from the ClientHello, decimal values joined by ``-`` inside a field, ``,`` between fields, empty fields kept
empty, GREASE values (RFC 8701) removed everywhere; SSLVersion is ``legacy_version``. The fingerprint is the
MD5 of that string. JA3S: ``SSLVersion,Cipher,Extensions`` of the ServerHello, MD5 likewise.

JA4 (https://github.com/FoxIO-LLC/ja4, ``technical_details/JA4.md``; JA4 is BSD-3-Clause), ``a_b_c``:
a = ``t`` (TLS over TCP) + version (highest non-GREASE supported_versions value, else ``legacy_version``:
13 12 11 10 s3 s2 d1 d2 d3, else ``00``) + ``d``/``i`` (SNI extension present or not) + 2-digit cipher count and
2-digit extension count (GREASE excluded, at most 99) + first and last character of the first ALPN value
(``00`` without one; the first and last hex digits of the value when either end byte is not alphanumeric);
b = first 12 hex digits of SHA-256 over the sorted 4-hex-digit cipher list joined by ``,`` (``000000000000``
when empty); c = likewise over the sorted extension list without SNI (0x0000) and ALPN (0x0010), followed by
``_`` and the signature algorithms in wire order when there are any (``000000000000`` when the extension list is
empty). JA4S, JA4X and the other JA4+ methods are under the FoxIO License 1.1 and are not implemented here.

``client_fingerprints`` and ``server_fingerprints`` give a hello's fingerprints at once and remember the last
``FINGERPRINT_CACHE`` distinct hellos' (a fleet's chargers and a gateway's downloads send a handful of hello shapes,
so the strings are joined and hashed once per shape, not once per connection).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import lru_cache

from analyzer.budgets import FINGERPRINT_CACHE
from analyzer.decoders.tls_names import GREASE_VALUES

EXT_SERVER_NAME = 0x0000  # RFC 6066 §3
EXT_ALPN = 0x0010  # RFC 7301 §3.1

JA4_VERSIONS = {
    0x0304: "13",
    0x0303: "12",
    0x0302: "11",
    0x0301: "10",
    0x0300: "s3",
    0x0002: "s2",
    0xFEFF: "d1",
    0xFEFD: "d2",
    0xFEFC: "d3",
}
JA4_EMPTY_HASH = "000000000000"
JA4_HASH_LEN = 12
JA4_MAX_COUNT = 99


def _dash(values: Sequence[int]) -> str:
    return "-".join(str(v) for v in values if v not in GREASE_VALUES)


def ja3_string(
    legacy_version: int,
    cipher_suites: Sequence[int],
    extensions: Sequence[int],
    groups: Sequence[int],
    ec_point_formats: Sequence[int],
) -> str:
    """The JA3 string of a ClientHello (``771,4865-4866,0-23-65281,29-23,0``)."""
    return ",".join(
        (str(legacy_version), _dash(cipher_suites), _dash(extensions), _dash(groups), _dash(ec_point_formats))
    )


def ja3s_string(legacy_version: int, cipher_suite: int, extensions: Sequence[int]) -> str:
    """The JA3S string of a ServerHello (``771,49199,65281-0-11``)."""
    return f"{legacy_version},{cipher_suite},{_dash(extensions)}"


def md5_hex(text: str) -> str:
    """MD5 of a JA3/JA3S string, 32 lower-case hex digits (the published form of both fingerprints)."""
    return hashlib.md5(text.encode("ascii"), usedforsecurity=False).hexdigest()


def _sha12(text: str) -> str:
    return hashlib.sha256(text.encode("ascii")).hexdigest()[:JA4_HASH_LEN]


def _alnum(b: int) -> bool:
    return 0x30 <= b <= 0x39 or 0x41 <= b <= 0x5A or 0x61 <= b <= 0x7A


def ja4_alpn(first_alpn: bytes | None) -> str:
    """The two ALPN characters of JA4 part a, from the raw first ALPN protocol name."""
    if not first_alpn:
        return "00"
    first, last = first_alpn[0], first_alpn[-1]
    if _alnum(first) and _alnum(last):
        return chr(first) + chr(last)
    hexed = first_alpn.hex()
    return hexed[0] + hexed[-1]


def ja4(
    *,
    legacy_version: int,
    supported_versions: Sequence[int],
    has_sni: bool,
    cipher_suites: Sequence[int],
    extensions: Sequence[int],
    first_alpn: bytes | None,
    signature_algorithms: Sequence[int],
    transport: str = "t",
) -> str:
    """JA4 of a ClientHello (``t13d1516h2_8daaf6152771_e5627efa2ab1``)."""
    versions = [v for v in supported_versions if v not in GREASE_VALUES]
    version = max(versions) if versions else legacy_version
    ciphers = [c for c in cipher_suites if c not in GREASE_VALUES]
    exts = [e for e in extensions if e not in GREASE_VALUES]
    part_a = (
        f"{transport}{JA4_VERSIONS.get(version, '00')}{'d' if has_sni else 'i'}"
        f"{min(len(ciphers), JA4_MAX_COUNT):02d}{min(len(exts), JA4_MAX_COUNT):02d}{ja4_alpn(first_alpn)}"
    )
    part_b = _sha12(",".join(f"{c:04x}" for c in sorted(ciphers))) if ciphers else JA4_EMPTY_HASH
    hashed_exts = sorted(e for e in exts if e != EXT_SERVER_NAME and e != EXT_ALPN)
    if hashed_exts:
        text = ",".join(f"{e:04x}" for e in hashed_exts)
        sigs = [s for s in signature_algorithms if s not in GREASE_VALUES]
        if sigs:
            text += "_" + ",".join(f"{s:04x}" for s in sigs)
        part_c = _sha12(text)
    else:
        part_c = JA4_EMPTY_HASH
    return f"{part_a}_{part_b}_{part_c}"


@lru_cache(maxsize=FINGERPRINT_CACHE)
def client_fingerprints(
    legacy_version: int,
    supported_versions: tuple[int, ...],
    cipher_suites: tuple[int, ...],
    extensions: tuple[int, ...],
    groups: tuple[int, ...],
    ec_point_formats: tuple[int, ...],
    first_alpn: bytes | None,
    signature_algorithms: tuple[int, ...],
) -> tuple[str, str, str]:
    """A ClientHello's (JA3 string, JA3 MD5, JA4), from its fields in wire order (remembered per distinct hello)."""
    text = ja3_string(legacy_version, cipher_suites, extensions, groups, ec_point_formats)
    fp4 = ja4(
        legacy_version=legacy_version,
        supported_versions=supported_versions,
        has_sni=EXT_SERVER_NAME in extensions,
        cipher_suites=cipher_suites,
        extensions=extensions,
        first_alpn=first_alpn,
        signature_algorithms=signature_algorithms,
    )
    return text, md5_hex(text), fp4


@lru_cache(maxsize=FINGERPRINT_CACHE)
def server_fingerprints(legacy_version: int, cipher_suite: int, extensions: tuple[int, ...]) -> tuple[str, str]:
    """A ServerHello's (JA3S string, JA3S MD5) (remembered per distinct hello)."""
    text = ja3s_string(legacy_version, cipher_suite, extensions)
    return text, md5_hex(text)
