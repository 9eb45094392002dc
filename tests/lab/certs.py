"""Lab PKI made with ``cryptography``: a trusted root, an unknown root, server and client certificates.

Keys are derived from fixed labels (EC P-256), validity dates are fixed, so the same inputs give the same
certificate contents (ECDSA signatures themselves are randomised).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551

VALID_FROM = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
VALID_UNTIL = dt.datetime(2036, 1, 1, tzinfo=dt.UTC)
EXPIRED_FROM = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
EXPIRED_UNTIL = dt.datetime(2021, 1, 1, tzinfo=dt.UTC)
CA_FROM = dt.datetime(2023, 1, 1, tzinfo=dt.UTC)
CA_UNTIL = dt.datetime(2043, 1, 1, tzinfo=dt.UTC)

#: server certificate kinds a scenario can ask for
SERVER_KINDS = ("valid", "expired", "wrong_host", "unknown_ca", "no_intermediate")
WRONG_HOST = "csms.other-operator.test"


def _key(label: str) -> ec.EllipticCurvePrivateKey:
    scalar = int.from_bytes(hashlib.sha256(f"ghostcap-lab:{label}".encode()).digest()) % (_P256_ORDER - 1)
    return ec.derive_private_key(scalar + 1, ec.SECP256R1())


def _serial(label: str) -> int:
    return int.from_bytes(hashlib.sha256(f"serial:{label}".encode()).digest()[:15]) | 1


@dataclass(frozen=True)
class Issued:
    cert: Path
    key: Path
    subject: str
    not_before: str
    not_after: str


def _write(out: Path, stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> Issued:
    out.mkdir(parents=True, exist_ok=True)
    crt, pem = out / f"{stem}.crt", out / f"{stem}.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return Issued(
        crt,
        pem,
        cert.subject.rfc4514_string(),
        cert.not_valid_before_utc.isoformat(),
        cert.not_valid_after_utc.isoformat(),
    )


def _ca(out: Path, stem: str, cn: str) -> tuple[Issued, x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key(stem)
    name = x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Ghostcap Lab"), x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(_serial(stem))
        .not_valid_before(CA_FROM)
        .not_valid_after(CA_UNTIL)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return _write(out, stem, cert, key), cert, key


def _intermediate(
    out: Path, stem: str, cn: str, root: tuple[x509.Certificate, ec.EllipticCurvePrivateKey]
) -> tuple[Issued, x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A CA certificate signed by ``root`` (path length 0: it issues leaves only)."""
    key = _key(stem)
    root_cert, root_key = root
    name = x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Ghostcap Lab"), x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(root_cert.subject)
        .public_key(key.public_key())
        .serial_number(_serial(stem))
        .not_valid_before(CA_FROM)
        .not_valid_after(CA_UNTIL)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    return _write(out, stem, cert, key), cert, key


def _leaf(
    out: Path,
    stem: str,
    cn: str,
    sans: list[str],
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
    not_before: dt.datetime,
    not_after: dt.datetime,
    client: bool,
) -> Issued:
    key = _key(stem)
    ca_cert, ca_key = issuer
    alt: list[x509.GeneralName] = []
    for san in sans:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(san)))
        except ValueError:
            alt.append(x509.DNSName(san))
    builder = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Ghostcap Lab"),
                    x509.NameAttribute(NameOID.COMMON_NAME, cn),
                ]
            )
        )
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(_serial(stem))
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH]),
            critical=False,
        )
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    if alt:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
    return _write(out, stem, builder.sign(ca_key, hashes.SHA256()), key)


@dataclass(frozen=True)
class Pki:
    """Paths of the lab PKI inside one output directory."""

    out: Path

    def _root(self) -> tuple[Issued, x509.Certificate, ec.EllipticCurvePrivateKey]:
        return _ca(self.out, "lab-root-ca", "Ghostcap Lab Root CA")

    @property
    def ca_file(self) -> Path:
        """The trust anchor the chargers are given."""
        return self._root()[0].cert

    def server(self, kind: str, host: str) -> Issued:
        """A server certificate of ``kind`` (see ``SERVER_KINDS``) for ``host``."""
        root = self._root()
        if kind == "valid":
            return _leaf(self.out, f"server-{host}", host, [host], root[1:], VALID_FROM, VALID_UNTIL, False)
        if kind == "expired":
            return _leaf(self.out, f"server-expired-{host}", host, [host], root[1:], EXPIRED_FROM, EXPIRED_UNTIL, False)
        if kind == "wrong_host":
            return _leaf(
                self.out, f"server-wronghost-{host}", WRONG_HOST, [WRONG_HOST], root[1:], VALID_FROM, VALID_UNTIL, False
            )
        if kind == "unknown_ca":
            rogue = _ca(self.out, "unknown-operator-ca", "Unknown Operator Root CA")
            return _leaf(self.out, f"server-rogue-{host}", host, [host], rogue[1:], VALID_FROM, VALID_UNTIL, False)
        if kind == "no_intermediate":
            # issued by the lab's intermediate CA; the file holds the leaf only (the chain is incomplete)
            inter = self.intermediate()
            return _leaf(self.out, f"server-inter-{host}", host, [host], inter[1:], VALID_FROM, VALID_UNTIL, False)
        raise ValueError(f"unknown server certificate kind {kind!r}")

    def intermediate(self) -> tuple[Issued, x509.Certificate, ec.EllipticCurvePrivateKey]:
        """The lab's intermediate CA (signed by the lab root); the chargers trust only the root."""
        return _intermediate(self.out, "lab-intermediate-ca", "Ghostcap Lab Issuing CA 1", self._root()[1:])

    def client(self, station_id: str) -> Issued:
        """A charging-station certificate (security profile 3): CN = station id, signed by the lab root."""
        root = self._root()
        return _leaf(self.out, f"client-{station_id}", station_id, [], root[1:], VALID_FROM, VALID_UNTIL, True)
