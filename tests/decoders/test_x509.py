"""Certificate facts (``analyzer.decoders.x509``): cryptography's reading, the lenient reader, and their agreement."""

from __future__ import annotations

import hashlib
import ipaddress
from datetime import UTC, datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from analyzer.decoders.tls import TlsDecoder, starts_like_tls
from analyzer.decoders.x509 import DerError, cert_info, lenient_cert_info, name_from_der
from analyzer.events.tls import CertInfo, TlsCertificate
from tests.conftest import EXTERNAL
from tests.decoders.drive import run_stream_decoder

NS = 1_000_000_000

EC_KEY = ec.generate_private_key(ec.SECP256R1())
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ED_KEY = ed25519.Ed25519PrivateKey.generate()


def build(
    *,
    key: object = EC_KEY,
    subject: x509.Name | None = None,
    issuer: x509.Name | None = None,
    not_before: datetime = datetime(2024, 1, 1, tzinfo=UTC),
    not_after: datetime = datetime(2036, 1, 1, tzinfo=UTC),
    san: list[x509.GeneralName] | None = None,
    ca: bool | None = None,
    serial: int = 0x0123456789,
) -> bytes:
    subject = subject or x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "csms.test")])
    b = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer or subject)
        .public_key(key.public_key())  # type: ignore[attr-defined]
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    if ca is not None:
        b = b.add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    if san:
        b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return b.sign(key, algorithm).public_bytes(Encoding.DER)  # type: ignore[arg-type]


def test_facts_of_a_server_certificate() -> None:
    der = build(
        san=[
            x509.DNSName("csms.test"),
            x509.IPAddress(ipaddress.ip_address("192.0.2.7")),
            x509.DNSName("*.csms.test"),
            x509.IPAddress(ipaddress.ip_address("2001:db8::1")),
            x509.RFC822Name("ops@csms.test"),  # not a DNS name or an address: not listed
        ],
        issuer=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Lab CA")]),
        ca=False,
    )
    info = cert_info(der)
    assert info == CertInfo(
        subject="CN=csms.test",
        issuer="CN=Lab CA",
        san=("csms.test", "192.0.2.7", "*.csms.test", "2001:db8::1"),
        not_before_ns=int(datetime(2024, 1, 1, tzinfo=UTC).timestamp()) * NS,
        not_after_ns=int(datetime(2036, 1, 1, tzinfo=UTC).timestamp()) * NS,
        serial="123456789",
        sha256=hashlib.sha256(der).hexdigest(),
        der_len=len(der),
        self_signed=False,
        is_ca=False,
        public_key="EC-secp256r1",
        signature_algorithm="ecdsa-with-SHA256",
        parse_error=None,
    )


def test_dates_before_1970_and_after_2038() -> None:
    """UTCTime covers 1950-2049 (RFC 5280 §4.1.2.5.1); later dates are GeneralizedTime."""
    der = build(not_before=datetime(1955, 6, 1, 12, 0, 1, tzinfo=UTC), not_after=datetime(2099, 12, 31, tzinfo=UTC))
    info = cert_info(der)
    assert info.not_before_ns == -460_295_999 * NS
    assert info.not_after_ns == 4_102_358_400 * NS
    assert info.self_signed
    assert info.is_ca is None


@pytest.mark.parametrize(
    ("key", "name", "signature"),
    [
        (RSA_KEY, "RSA-2048", "sha256WithRSAEncryption"),
        (ED_KEY, "Ed25519", "Ed25519"),
        (ec.generate_private_key(ec.SECP384R1()), "EC-secp384r1", "ecdsa-with-SHA256"),
    ],
)
def test_key_and_signature_names(key: object, name: str, signature: str) -> None:
    info = cert_info(build(key=key))
    assert (info.public_key, info.signature_algorithm) == (name, signature)


def _agreeing_certificates() -> list[bytes]:
    email = x509.NameAttribute(x509.ObjectIdentifier("1.2.840.113549.1.9.1"), "ops@csms.test")
    multi = x509.RelativeDistinguishedName(
        [x509.NameAttribute(NameOID.COMMON_NAME, "a"), x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "b")]
    )
    return [
        build(),
        build(key=RSA_KEY, ca=True, san=[x509.DNSName("x.test")]),
        build(key=ED_KEY, not_before=datetime(1960, 1, 1, tzinfo=UTC), not_after=datetime(2060, 1, 1, tzinfo=UTC)),
        build(
            subject=x509.Name(
                [
                    x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, 'Lab, "Quoted" + Co'),
                    email,
                    x509.NameAttribute(NameOID.COMMON_NAME, " spaced "),
                ]
            ),
            san=[x509.IPAddress(ipaddress.ip_address("10.0.0.1"))],
        ),
        build(subject=x509.Name([multi, x509.RelativeDistinguishedName([email])])),
    ]


@pytest.mark.parametrize("der", _agreeing_certificates())
def test_the_lenient_reader_agrees_with_cryptography(der: bytes) -> None:
    strict = cert_info(der)
    assert strict.parse_error is None
    assert lenient_cert_info(der) == strict


def _with_encoded_default(der: bytes) -> bytes:
    """basicConstraints ``cA TRUE`` (30 03 01 01 ff) rewritten as an explicit ``cA FALSE`` (30 03 01 01 00): the
    DEFAULT value encoded, which DER forbids (X.690 §11.5) and cryptography refuses; same length, so no other
    length changes (the signature no longer verifies, which nobody checks here)."""
    marker = bytes.fromhex("0405 3003 0101ff")
    assert der.count(marker) == 1
    return der.replace(marker, bytes.fromhex("0405 3003 010100"))


def test_a_certificate_cryptography_refuses_is_read_leniently() -> None:
    der = _with_encoded_default(build(ca=True, san=[x509.DNSName("csms.test")]))
    with pytest.raises(ValueError, match="EncodedDefault"):
        _ = x509.load_der_x509_certificate(der).extensions  # parsed lazily
    info = cert_info(der)
    assert info.parse_error is not None
    assert "EncodedDefault" in info.parse_error
    assert (info.subject, info.san, info.is_ca, info.self_signed) == ("CN=csms.test", ("csms.test",), False, True)
    assert info.not_after_ns == int(datetime(2036, 1, 1, tzinfo=UTC).timestamp()) * NS
    assert info.public_key == "EC-secp256r1"
    assert info.sha256 == hashlib.sha256(der).hexdigest()


@pytest.mark.parametrize(
    "der",
    [
        b"",
        b"\x30",
        bytes.fromhex("3082 0010") + b"not a certificate",
        bytes.fromhex("3003 020101"),  # a SEQUENCE holding one INTEGER
        bytes.fromhex("3080 0000"),  # indefinite length: BER, not DER
    ],
)
def test_garbage_is_reported_with_hash_and_length(der: bytes) -> None:
    info = cert_info(der)
    assert info.parse_error
    assert (info.sha256, info.der_len, info.subject, info.san) == (hashlib.sha256(der).hexdigest(), len(der), None, ())


def test_a_truncated_certificate_never_raises() -> None:
    der = build(san=[x509.DNSName("csms.test")])
    for cut in range(0, len(der), 7):
        info = cert_info(der[:cut])
        assert info.parse_error
        assert info.der_len == cut


def test_name_from_der() -> None:
    name = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, "Lab CA"), x509.NameAttribute(NameOID.COUNTRY_NAME, "FR")]
    )
    assert name_from_der(name.public_bytes()) == name.rfc4514_string() == "C=FR,CN=Lab CA"
    with pytest.raises(DerError):
        name_from_der(name.public_bytes() + b"\x00")
    with pytest.raises(DerError):
        name_from_der(b"\x04\x00")


def test_the_missing_intermediate_leaf_from_a_real_capture() -> None:
    """tls-failures/zeek__missing-intermediate.pcap: the www.cviis.org leaf encodes the basicConstraints DEFAULT
    (MANIFEST); tshark's dNSNames are www.cviis.org, cviis.org."""
    path = EXTERNAL / "tls-failures" / "zeek__missing-intermediate.pcap"
    events = run_stream_decoder(path, lambda fid, data, cp, sp: TlsDecoder(fid) if starts_like_tls(data) else None)
    leaf = next(e for e in events if isinstance(e, TlsCertificate)).certificates[0]
    assert leaf.parse_error is not None
    assert "EncodedDefault" in leaf.parse_error
    assert leaf.san == ("www.cviis.org", "cviis.org")
    assert leaf.subject is not None
    assert "CN=www.cviis.org" in leaf.subject
    assert leaf.not_before_ns is not None
    assert leaf.not_after_ns is not None
    assert leaf.not_before_ns < leaf.not_after_ns
