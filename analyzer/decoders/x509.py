"""Certificate facts from DER bytes, with ``cryptography.x509`` and a lenient fallback.

``cryptography`` parses strict DER only: it refuses certificates that OpenSSL and real TLS stacks accept, e.g. a
basicConstraints that encodes its DEFAULT ``cA FALSE`` (pyca/cryptography#11365; seen in
``tls-failures/zeek__missing-intermediate.pcap``). Such a certificate is still reported: ``parse_error`` says why
``cryptography`` refused it and a small tag-length-value reader (X.690 §8.1, RFC 5280 §4.1) recovers the names,
validity, serial, subjectAltName and key type where the structure allows.

Pure functions, no I/O. ``cryptography`` is imported by the first ``cert_info`` call, not with this module: its
x509 package is ~60 modules, and most captures of chargers show no certificate in clear (TLS 1.3 encrypts them).
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from analyzer.events.tls import CertInfo

if TYPE_CHECKING:
    from cryptography import x509

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
MAX_ERROR_LEN = 200  # characters of cryptography's error message kept in ``parse_error``

# X.690 universal tags
_BOOLEAN = 0x01
_INTEGER = 0x02
_BIT_STRING = 0x03
_OCTET_STRING = 0x04
_OID = 0x06
_UTC_TIME = 0x17
_GENERALIZED_TIME = 0x18
_SEQUENCE = 0x30
_SET = 0x31
# RFC 5280 context tags
_TBS_VERSION = 0xA0  # [0] EXPLICIT Version
_TBS_EXTENSIONS = 0xA3  # [3] EXPLICIT Extensions
_GN_DNS = 0x82  # GeneralName [2] IMPLICIT IA5String
_GN_IP = 0x87  # GeneralName [7] IMPLICIT OCTET STRING

OID_SAN = "2.5.29.17"  # RFC 5280 §4.2.1.6
OID_BASIC_CONSTRAINTS = "2.5.29.19"  # RFC 5280 §4.2.1.9
OID_RSA = "1.2.840.113549.1.1.1"
OID_EC = "1.2.840.10045.2.1"
OID_ED25519 = "1.3.101.112"
OID_ED448 = "1.3.101.113"

# RFC 4514 §3 short names, the ones cryptography's ``rfc4514_string`` prints; other types print as dotted OIDs.
_ATTR_NAMES = {
    "2.5.4.3": "CN",
    "2.5.4.7": "L",
    "2.5.4.8": "ST",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "2.5.4.6": "C",
    "2.5.4.9": "STREET",
    "0.9.2342.19200300.100.1.25": "DC",
    "0.9.2342.19200300.100.1.1": "UID",
}
_STRING_TAGS = frozenset({0x0C, 0x13, 0x14, 0x16, 0x1A, 0x1E, 0x1C})  # UTF8, Printable, T61, IA5, Visible, BMP, U

# RFC 5480 §2.1.1.1 named curves
_CURVES = {"1.2.840.10045.3.1.7": "secp256r1", "1.3.132.0.34": "secp384r1", "1.3.132.0.35": "secp521r1"}

# Signature algorithms (RFC 4055, RFC 5758, RFC 8410, RFC 3279)
SIGNATURE_ALGORITHMS = {
    "1.2.840.113549.1.1.4": "md5WithRSAEncryption",
    "1.2.840.113549.1.1.5": "sha1WithRSAEncryption",
    "1.2.840.113549.1.1.10": "RSASSA-PSS",
    "1.2.840.113549.1.1.11": "sha256WithRSAEncryption",
    "1.2.840.113549.1.1.12": "sha384WithRSAEncryption",
    "1.2.840.113549.1.1.13": "sha512WithRSAEncryption",
    "1.2.840.10045.4.1": "ecdsa-with-SHA1",
    "1.2.840.10045.4.3.2": "ecdsa-with-SHA256",
    "1.2.840.10045.4.3.3": "ecdsa-with-SHA384",
    "1.2.840.10045.4.3.4": "ecdsa-with-SHA512",
    "1.2.840.10040.4.3": "dsa-with-sha1",
    OID_ED25519: "Ed25519",
    OID_ED448: "Ed448",
}


MAX_OID_ARC_BITS = 256  # a UUID arc (2.25.x, X.667) has 128; a longer one is damage, not data


class DerError(ValueError):
    """The bytes are not a DER structure this reader can follow."""


def cert_info(der: bytes) -> CertInfo:
    """Facts of one DER certificate. Never raises: what cannot be read is ``None``/empty, with ``parse_error``."""
    from cryptography import x509
    from cryptography.utils import CryptographyDeprecationWarning

    # What cryptography raises for DER it refuses: ValueError or InvalidVersion (a version other than v1 or v3,
    # e.g. 1 = v2, or 2**31) on load, and lazily, when the extensions are read, ValueError, DuplicateExtension or
    # UnsupportedGeneralNameType.
    refused = (ValueError, x509.InvalidVersion, x509.DuplicateExtension, x509.UnsupportedGeneralNameType)
    digest = hashlib.sha256(der).hexdigest()
    try:
        with warnings.catch_warnings():
            # e.g. "serial number which wasn't positive": a fact of the certificate, not a problem of ours
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
            cert = x509.load_der_x509_certificate(der)
            return _from_cryptography(cert, der, digest)
    except refused as e:
        error = str(e)[:MAX_ERROR_LEN] or type(e).__name__
    try:
        return lenient_cert_info(der, error)
    except (ValueError, IndexError):  # DerError, or a structure too short to unpack
        return CertInfo(sha256=digest, der_len=len(der), parse_error=error)


def _ns(dt: datetime) -> int:
    """ns since the epoch of an aware datetime (exact, negative before 1970, no 2038 limit)."""
    return (dt - _EPOCH) // _US * 1000


def _from_cryptography(cert: x509.Certificate, der: bytes, digest: str) -> CertInfo:
    from cryptography import x509

    san: list[str] = []
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        for gn in ext:
            if isinstance(gn, x509.DNSName):
                san.append(gn.value)
            elif isinstance(gn, x509.IPAddress):
                san.append(str(gn.value))
    except x509.ExtensionNotFound:
        pass
    try:
        is_ca: bool | None = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = None
    sig_oid = cert.signature_algorithm_oid.dotted_string
    return CertInfo(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        san=tuple(san),
        not_before_ns=_ns(cert.not_valid_before_utc),
        not_after_ns=_ns(cert.not_valid_after_utc),
        serial=f"{cert.serial_number:x}",
        sha256=digest,
        der_len=len(der),
        self_signed=cert.issuer == cert.subject,
        is_ca=is_ca,
        public_key=_key_name(cert),
        signature_algorithm=SIGNATURE_ALGORITHMS.get(sig_oid, sig_oid),
    )


def _key_name(cert: x509.Certificate) -> str | None:
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

    try:
        key = cert.public_key()
    except (ValueError, TypeError, UnsupportedAlgorithm):  # what cryptography raises for keys it cannot load
        return None
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA-{key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC-{key.curve.name}"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519"
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448"
    if isinstance(key, dsa.DSAPublicKey):
        return f"DSA-{key.key_size}"
    return type(key).__name__


# --- lenient DER reading -------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Tlv:
    tag: int
    start: int  # first content byte
    end: int  # one past the last content byte
    head: int  # first byte of the tag


def _read(data: bytes, pos: int, end: int) -> _Tlv:
    """One TLV at ``pos`` (X.690 §8.1.2-8.1.3; definite lengths only, as DER requires)."""
    if pos + 2 > end:
        raise DerError(f"truncated TLV at {pos}")
    head = pos
    tag = data[pos]
    pos += 1
    if tag & 0x1F == 0x1F:  # high tag number form: not used by X.509 fields we read
        raise DerError(f"high tag number at {head}")
    first = data[pos]
    pos += 1
    if first < 0x80:
        length = first
    else:
        n = first & 0x7F
        if n == 0 or n > 4 or pos + n > end:
            raise DerError(f"bad length at {head}")
        length = int.from_bytes(data[pos : pos + n], "big")
        pos += n
    if pos + length > end:
        raise DerError(f"TLV at {head} runs past its container")
    return _Tlv(tag, pos, pos + length, head)


def _children(data: bytes, tlv: _Tlv) -> list[_Tlv]:
    out = []
    pos = tlv.start
    while pos < tlv.end:
        child = _read(data, pos, tlv.end)
        out.append(child)
        pos = child.end
    return out


def _expect(tlv: _Tlv, tag: int) -> _Tlv:
    if tlv.tag != tag:
        raise DerError(f"tag 0x{tlv.tag:02x} at {tlv.head}, expected 0x{tag:02x}")
    return tlv


def _oid(data: bytes, tlv: _Tlv) -> str:
    """Dotted text of an OBJECT IDENTIFIER (X.690 §8.19)."""
    body = data[tlv.start : tlv.end]
    if not body:
        raise DerError("empty OID")
    parts: list[int] = []
    value = 0
    for b in body:
        value = (value << 7) | (b & 0x7F)
        if value >> MAX_OID_ARC_BITS:  # also keeps str() under Python's int-to-string digit limit
            raise DerError(f"OID arc longer than {MAX_OID_ARC_BITS} bits")
        if not b & 0x80:
            parts.append(value)
            value = 0
    first = parts[0]
    head = [0, first] if first < 40 else [1, first - 40] if first < 80 else [2, first - 80]
    return ".".join(str(p) for p in head + parts[1:])


def _time_ns(data: bytes, tlv: _Tlv) -> int:
    """UTCTime (YYMMDDHHMMSSZ, RFC 5280 §4.1.2.5.1: YY ≥ 50 → 19YY) or GeneralizedTime (YYYYMMDDHHMMSS[.f]Z)."""
    text = data[tlv.start : tlv.end].decode("ascii", "replace").rstrip("Z")
    try:
        if tlv.tag == _UTC_TIME:
            yy = int(text[0:2])
            year, rest = (1900 + yy if yy >= 50 else 2000 + yy), text[2:]
        elif tlv.tag == _GENERALIZED_TIME:
            year, rest = int(text[0:4]), text[4:].split(".")[0]
        else:
            raise DerError(f"tag 0x{tlv.tag:02x} is not a time")
        seconds = int(rest[8:10]) if len(rest) >= 10 else 0
        dt = datetime(year, int(rest[0:2]), int(rest[2:4]), int(rest[4:6]), int(rest[6:8]), seconds, tzinfo=UTC)
    except ValueError as e:
        raise DerError(f"bad time {text!r}") from e
    return _ns(dt)


def _escape(value: str) -> str:
    """RFC 4514 §2.4 escaping of an attribute value."""
    out = []
    for i, ch in enumerate(value):
        if ch in ',+"\\<>;' or (ch == "#" and i == 0) or (ch == " " and i in (0, len(value) - 1)):
            out.append("\\" + ch)
        elif ch == "\0":
            out.append("\\00")
        else:
            out.append(ch)
    return "".join(out)


def _string(data: bytes, tlv: _Tlv) -> str:
    raw = data[tlv.start : tlv.end]
    if tlv.tag == 0x1E:  # BMPString: UTF-16BE
        return raw.decode("utf-16-be", "replace")
    if tlv.tag == 0x1C:  # UniversalString: UTF-32BE
        return raw.decode("utf-32-be", "replace")
    return raw.decode("utf-8", "replace")


def _name(data: bytes, tlv: _Tlv) -> str:
    """RFC 4514 string of a DER Name as ``cryptography``'s ``rfc4514_string`` writes it: RDNs last to first, ``+``
    inside an RDN, the RFC 4514 short names (others as dotted OIDs), string values escaped (RFC 4514 §2.4),
    other values as ``#`` and the hex of their content."""
    rdns = []
    for rdn in _children(data, _expect(tlv, _SEQUENCE)):
        parts = []
        for atv in _children(data, _expect(rdn, _SET)):
            kids = _children(data, _expect(atv, _SEQUENCE))
            if len(kids) != 2:
                raise DerError("AttributeTypeAndValue without two parts")
            oid = _oid(data, _expect(kids[0], _OID))
            value = kids[1]
            label = _ATTR_NAMES.get(oid, oid)
            if value.tag in _STRING_TAGS:
                parts.append(f"{label}={_escape(_string(data, value))}")
            else:  # as cryptography renders a non-string value: # and the hex of its content
                start = value.start + 1 if value.tag == _BIT_STRING else value.start
                parts.append(f"{label}=#{data[start : value.end].hex()}")
        rdns.append("+".join(parts))
    return ",".join(reversed(rdns))


def name_from_der(der: bytes) -> str:
    """RFC 4514 string of a DER-encoded Name (e.g. a CertificateRequest's certificate_authorities entry);
    raises ``DerError`` if it is not one."""
    tlv = _read(der, 0, len(der))
    if tlv.end != len(der):
        raise DerError("trailing bytes after the Name")
    return _name(der, tlv)


def lenient_cert_info(der: bytes, parse_error: str | None = None) -> CertInfo:
    """Certificate facts read with the tag-length-value reader alone (``parse_error`` is stored as given).
    Raises ``DerError`` when even the outer structure (Certificate, tbsCertificate up to subjectPublicKeyInfo)
    cannot be followed; a fault inside one part leaves that part ``None``/empty."""
    digest = hashlib.sha256(der).hexdigest()
    cert = _expect(_read(der, 0, len(der)), _SEQUENCE)
    top = _children(der, cert)
    if len(top) < 2:
        raise DerError("certificate without tbsCertificate and signatureAlgorithm")
    tbs = _children(der, _expect(top[0], _SEQUENCE))
    i = 1 if tbs and tbs[0].tag == _TBS_VERSION else 0
    if len(tbs) < i + 6:
        raise DerError("short tbsCertificate")
    serial_tlv = _expect(tbs[i], _INTEGER)
    issuer_tlv, validity_tlv, subject_tlv, spki_tlv = tbs[i + 2], tbs[i + 3], tbs[i + 4], tbs[i + 5]
    info: dict[str, object] = {
        "serial": f"{int.from_bytes(der[serial_tlv.start : serial_tlv.end], 'big', signed=True):x}",
        "sha256": digest,
        "der_len": len(der),
        "parse_error": parse_error,
    }
    # Each part separately: a fault in one leaves the others readable.
    with contextlib.suppress(ValueError, IndexError):
        info["issuer"] = _name(der, issuer_tlv)
        info["subject"] = _name(der, subject_tlv)
        info["self_signed"] = der[issuer_tlv.head : issuer_tlv.end] == der[subject_tlv.head : subject_tlv.end]
    with contextlib.suppress(ValueError, IndexError):
        times = _children(der, _expect(validity_tlv, _SEQUENCE))
        info["not_before_ns"] = _time_ns(der, times[0])
        info["not_after_ns"] = _time_ns(der, times[1])
    with contextlib.suppress(ValueError, IndexError):
        info["public_key"] = _spki_name(der, spki_tlv)
    with contextlib.suppress(ValueError, IndexError):
        sig_oid = _oid(der, _expect(_children(der, _expect(top[1], _SEQUENCE))[0], _OID))
        info["signature_algorithm"] = SIGNATURE_ALGORITHMS.get(sig_oid, sig_oid)
    for tlv in tbs[i + 6 :]:
        if tlv.tag == _TBS_EXTENSIONS:
            with contextlib.suppress(ValueError, IndexError):
                _extensions(der, tlv, info)
    return CertInfo(**info)  # type: ignore[arg-type]


def _spki_name(der: bytes, spki: _Tlv) -> str | None:
    alg, key = _children(der, _expect(spki, _SEQUENCE))[:2]
    alg_parts = _children(der, _expect(alg, _SEQUENCE))
    oid = _oid(der, _expect(alg_parts[0], _OID))
    if oid == OID_RSA:
        bits = _expect(key, _BIT_STRING)
        inner = _read(der, bits.start + 1, bits.end)  # skip the unused-bits byte
        modulus = _expect(_children(der, _expect(inner, _SEQUENCE))[0], _INTEGER)
        return f"RSA-{int.from_bytes(der[modulus.start : modulus.end], 'big').bit_length()}"
    if oid == OID_EC:
        curve = _oid(der, alg_parts[1]) if len(alg_parts) > 1 and alg_parts[1].tag == _OID else "?"
        return f"EC-{_CURVES.get(curve, curve)}"
    return {OID_ED25519: "Ed25519", OID_ED448: "Ed448"}.get(oid, oid)


def _extensions(der: bytes, wrapper: _Tlv, info: dict[str, object]) -> None:
    seq = _children(der, wrapper)[0]
    for ext in _children(der, _expect(seq, _SEQUENCE)):
        parts = _children(der, _expect(ext, _SEQUENCE))
        oid = _oid(der, _expect(parts[0], _OID))
        value = _expect(parts[-1], _OCTET_STRING)
        if oid == OID_SAN:
            names = []
            for gn in _children(der, _expect(_read(der, value.start, value.end), _SEQUENCE)):
                raw = der[gn.start : gn.end]
                if gn.tag == _GN_DNS:
                    names.append(raw.decode("ascii", "replace"))
                elif gn.tag == _GN_IP and len(raw) in (4, 16):
                    names.append(str(ipaddress.ip_address(raw)))
            info["san"] = tuple(names)
        elif oid == OID_BASIC_CONSTRAINTS:
            inner = _children(der, _expect(_read(der, value.start, value.end), _SEQUENCE))
            is_ca = False
            if inner and inner[0].tag == _BOOLEAN:
                is_ca = der[inner[0].start : inner[0].end] != b"\x00"
            info["is_ca"] = is_ca
