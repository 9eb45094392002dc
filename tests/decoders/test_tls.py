"""Byte-level tests of the passive TLS decoder (``analyzer.decoders.tls``).

The fixed ClientHello below is written out field by field (RFC 8446 §4.1.2 and §4.2); the other messages are
built by small helpers that mirror the wire layout (record header: type, version, 16-bit length; handshake
header: type, 24-bit length).
"""

from __future__ import annotations

import hashlib
import tracemalloc
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyzer.decoders.base import DecodeError
from analyzer.decoders.tls import (
    HRR_RANDOM,
    MAX_ENCRYPTED_EVENTS,
    MAX_HANDSHAKE_LEN,
    MAX_RECORD_LEN,
    TlsDecoder,
    TlsRecord,
    TlsSession,
    starts_like_tls,
)
from analyzer.events.base import DecodeAnomaly, Event, GapReason, StreamChunk, StreamGap
from analyzer.events.clock import ClockSample
from analyzer.events.tls import (
    TlsAlert,
    TlsCertificate,
    TlsCertificateRequest,
    TlsChangeCipherSpec,
    TlsClientHello,
    TlsEncrypted,
    TlsHandshake,
    TlsServerHello,
    TlsSummary,
)
from analyzer.tls.keylog import KeyLog

FLOW = 7
C2S, S2C = 0, 1
T0 = 1_700_000_000 * 1_000_000_000  # 2023-11-14T22:13:20Z, capture time of the synthetic packets

# --- a ClientHello, field by field --------------------------------------------------------------------------------

CH_RANDOM = bytes.fromhex("5f5e1000") + bytes([0x11]) * 28  # first 4 bytes: 2020-09-13T12:26:40Z
CH_BODY = b"".join(
    [
        bytes.fromhex("0303"),  # legacy_version TLS 1.2
        CH_RANDOM,  # random (32)
        bytes.fromhex("00"),  # legacy_session_id: empty
        bytes.fromhex("0008 0a0a 1301 1302 c02f"),  # cipher_suites: length 8, GREASE, AES128-GCM, AES256-GCM, ECDHE-RSA
        bytes.fromhex("01 00"),  # compression_methods: length 1, null
        bytes.fromhex("0077"),  # extensions: length 119
        bytes.fromhex("0000 000e 000c 00 0009") + b"csms.test",  # server_name: list 12, host_name(0), 9 bytes
        bytes.fromhex("0010 000e 000c 02") + b"h2" + bytes.fromhex("08") + b"http/1.1",  # ALPN: h2, http/1.1
        bytes.fromhex("000a 0008 0006 0a0a 001d 0017"),  # supported_groups: GREASE, x25519, secp256r1
        bytes.fromhex("000b 0002 01 00"),  # ec_point_formats: uncompressed
        bytes.fromhex("000d 0006 0004 0403 0804"),  # signature_algorithms: ecdsa_secp256r1_sha256, rsa_pss_rsae_sha256
        bytes.fromhex("002b 0005 04 0304 0303"),  # supported_versions: TLS 1.3, TLS 1.2
        bytes.fromhex("0033 0026 0024 001d 0020") + bytes([0x22]) * 32,  # key_share: x25519, 32-byte key
        bytes.fromhex("1a1a 0000"),  # a GREASE extension, empty
    ]
)
CH_MESSAGE = bytes.fromhex("01 0000a8") + CH_BODY  # handshake header: client_hello, length 168
CH_RECORD = bytes.fromhex("16 0301 00ac") + CH_MESSAGE  # record header: handshake, TLS 1.0 (as sent), length 172

# JA3 by hand (GREASE removed from ciphers, extensions, groups) and JA4 per the FoxIO definition
CH_JA3 = "771,4865-4866-49199,0-16-10-11-13-43-51,29-23,0"
CH_JA4 = (
    "t13d0307h2"  # TCP, TLS 1.3 (supported_versions), SNI, 3 ciphers, 7 extensions, ALPN h2
    + "_"
    + hashlib.sha256(b"1301,1302,c02f").hexdigest()[:12]
    + "_"
    + hashlib.sha256(b"000a,000b,000d,002b,0033_0403,0804").hexdigest()[:12]
)


def test_the_annotated_client_hello_is_consistent() -> None:
    assert len(CH_BODY) == 0xA8
    assert len(CH_MESSAGE) == 0xAC
    assert len(CH_BODY) - (2 + 32 + 1 + 10 + 2 + 2) == 0x77


# --- builders -----------------------------------------------------------------------------------------------------


def record(ctype: int, body: bytes, version: int = 0x0303) -> bytes:
    return bytes([ctype]) + version.to_bytes(2, "big") + len(body).to_bytes(2, "big") + body


def handshake(msg_type: int, body: bytes) -> bytes:
    return bytes([msg_type]) + len(body).to_bytes(3, "big") + body


def ext(etype: int, data: bytes) -> bytes:
    return etype.to_bytes(2, "big") + len(data).to_bytes(2, "big") + data


def vec(n: int, data: bytes) -> bytes:
    return len(data).to_bytes(n, "big") + data


# a random whose first 4 bytes read as a time after 2100: the builders' default, so no ClockSample is expected
NO_TIME = bytes.fromhex("f5") + bytes(range(1, 32))


def client_hello_body(
    *,
    random: bytes = NO_TIME,
    suites: tuple[int, ...] = (0xC02F, 0x009C),
    extensions: bytes = b"",
    version: int = 0x0303,
) -> bytes:
    body = version.to_bytes(2, "big") + random + vec(1, b"") + vec(2, b"".join(s.to_bytes(2, "big") for s in suites))
    body += vec(1, b"\x00")
    return body + (vec(2, extensions) if extensions else b"")


def server_hello_body(
    *,
    random: bytes = NO_TIME,
    suite: int = 0xC02F,
    version: int = 0x0303,
    extensions: bytes = b"",
    session_id: bytes = b"",
) -> bytes:
    body = version.to_bytes(2, "big") + random + vec(1, session_id) + suite.to_bytes(2, "big") + b"\x00"
    return body + (vec(2, extensions) if extensions else b"")


def tls13_server_hello(random: bytes = NO_TIME, suite: int = 0x1301) -> bytes:
    exts = ext(43, bytes.fromhex("0304")) + ext(51, bytes.fromhex("001d 0020") + bytes(32))
    return handshake(2, server_hello_body(random=random, suite=suite, extensions=exts, session_id=bytes(32)))


CCS = record(20, b"\x01")
SERVER_HELLO_DONE = handshake(14, b"")


class Wire:
    """Feeds one decoder as the flow layer would: per direction offsets, one frame number per chunk."""

    def __init__(self, decoder: TlsDecoder | None = None) -> None:
        self.dec = decoder or TlsDecoder(FLOW)
        self.offset = [0, 0]
        self.frame = 0
        self.events: list[Event] = []

    def send(
        self, direction: int, data: bytes, *, at_frame: int | None = None, ts_ns: int | None = None
    ) -> list[Event]:
        self.frame += 1
        chunk = StreamChunk(
            FLOW,
            direction,
            self.offset[direction],
            data,
            self.frame,
            at_frame or self.frame,
            T0 + self.frame * 1_000_000 if ts_ns is None else ts_ns,
        )
        self.offset[direction] += len(data)
        out = self.dec.feed(chunk)
        self.events += out
        return out

    def lose(self, direction: int, size: int, reason: GapReason = GapReason.NOT_CAPTURED) -> list[Event]:
        self.frame += 1
        gap = StreamGap(FLOW, direction, self.offset[direction], size, self.frame, T0, reason)
        self.offset[direction] += size
        out = self.dec.gap(gap)
        self.events += out
        return out

    def close(self) -> list[Event]:
        out = self.dec.close(self.frame + 1, T0 + 10**9)
        self.events += out
        return out

    def of(self, cls: type) -> list:
        return [e for e in self.events if isinstance(e, cls)]

    def anomalies(self) -> list[str]:
        return [e.name for e in self.events if isinstance(e, DecodeAnomaly)]


# --- content detection --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (CH_RECORD, True),
        (CH_RECORD[:5], True),
        (CH_RECORD[:3], True),  # type and version only: enough to try
        (CH_RECORD[:2], False),
        (record(21, b"\x02\x28"), True),  # an alert as the first bytes (a capture that starts late)
        (record(23, b"x"), True),
        (record(24, b"x"), False),  # heartbeat never starts a connection
        (b"GET / HTTP/1.1\r\n", False),
        (b"SSH-2.0-OpenSSH\r\n", False),
        (bytes.fromhex("16 0305 0010"), False),  # version 3.5
        (bytes.fromhex("16 0203 0010"), False),  # major 2
        (bytes.fromhex("16 0303 0000"), False),  # empty record
        (bytes.fromhex("16 0303") + (MAX_RECORD_LEN + 1).to_bytes(2, "big"), False),
        (bytes.fromhex("80 2e 01 0301"), False),  # SSLv2-compatible ClientHello: not recognised
    ],
)
def test_starts_like_tls(data: bytes, expected: bool) -> None:
    assert starts_like_tls(data) is expected


# --- the ClientHello ----------------------------------------------------------------------------------------------


def test_client_hello_fields() -> None:
    w = Wire()
    (ch,) = w.send(C2S, CH_RECORD)
    assert isinstance(ch, TlsClientHello)
    assert (ch.frame, ch.ts_ns, ch.flow_id, ch.direction) == (1, T0 + 1_000_000, FLOW, C2S)
    assert ch.record_version == 0x0301
    assert ch.legacy_version == 0x0303
    assert ch.supported_versions == (0x0304, 0x0303)
    assert ch.sni == "csms.test"
    assert ch.alpn == ("h2", "http/1.1")
    assert ch.cipher_suites == (0x0A0A, 0x1301, 0x1302, 0xC02F)  # as sent, GREASE included
    assert ch.compression_methods == (0,)
    assert ch.groups == (0x0A0A, 0x001D, 0x0017)
    assert ch.ec_point_formats == (0,)
    assert ch.signature_algorithms == (0x0403, 0x0804)
    assert ch.key_share_groups == (0x001D,)
    assert ch.extensions == (0, 16, 10, 11, 13, 43, 51, 0x1A1A)
    assert ch.session_id_len == 0
    assert ch.random == CH_RANDOM.hex()
    assert ch.random_time is None  # it offers TLS 1.3: the random is random (RFC 8446 §4.1.2)
    assert ch.length == 0xA8
    assert ch.ja3 == CH_JA3
    assert ch.ja3_hash == hashlib.md5(CH_JA3.encode()).hexdigest()
    assert ch.ja4 == CH_JA4
    assert ch.kind == "tls.client_hello"
    assert ch.layer == "tls"
    assert "csms.test" in ch.summary()
    assert CH_JA4 in ch.summary()
    assert w.dec.session.client_random == CH_RANDOM
    assert w.dec.session.offered_tls13


@pytest.mark.parametrize("cut", range(1, len(CH_RECORD)))
def test_client_hello_split_at_every_offset(cut: int) -> None:
    w = Wire()
    assert w.send(C2S, CH_RECORD[:cut]) == []
    (ch,) = w.send(C2S, CH_RECORD[cut:])
    assert isinstance(ch, TlsClientHello)
    assert ch.frame == 2
    assert ch.ja4 == CH_JA4


def test_client_hello_byte_by_byte() -> None:
    w = Wire()
    for b in CH_RECORD:
        w.send(C2S, bytes([b]))
    (ch,) = w.events
    assert isinstance(ch, TlsClientHello)
    assert ch.frame == len(CH_RECORD)
    assert ch.sni == "csms.test"


def test_message_completes_at_the_frame_that_made_it_deliverable() -> None:
    w = Wire()
    w.send(C2S, CH_RECORD[:100])
    (ch,) = w.send(C2S, CH_RECORD[100:], at_frame=9)  # waited for a missing segment that frame 9 brought
    assert ch.frame == 9


def test_client_hello_across_three_records() -> None:
    """RFC 8446 §5.1: a handshake message may be fragmented across records."""
    parts = (CH_MESSAGE[:3], CH_MESSAGE[3:120], CH_MESSAGE[120:])  # the first one even splits the header
    w = Wire()
    w.send(C2S, record(22, parts[0], 0x0301))
    w.send(C2S, record(22, parts[1], 0x0301))
    assert w.events == []
    (ch,) = w.send(C2S, record(22, parts[2], 0x0301))
    assert isinstance(ch, TlsClientHello)
    assert ch.ja3 == CH_JA3
    assert ch.record_version == 0x0301


def test_trailing_bytes_wait_for_their_record_and_are_reported_at_close() -> None:
    w = Wire()
    (ch,) = w.send(C2S, CH_RECORD + bytes.fromhex("16 0303 00"))  # the next record's header, cut short
    assert isinstance(ch, TlsClientHello)
    w.close()
    assert w.anomalies() == ["tls.truncated_record"]
    (s,) = w.of(TlsSummary)
    assert s.records == (1, 0)
    assert s.client_hello
    assert not s.server_hello
    assert s.version is None
    assert s.app_data_both_ways is None


def test_client_hello_without_extensions() -> None:
    body = client_hello_body(suites=(0x002F, 0x0035, 0x000A))
    w = Wire()
    (ch,) = w.send(C2S, record(22, handshake(1, body)))
    assert ch.extensions == ()
    assert ch.sni is None
    assert ch.alpn == ()
    assert ch.supported_versions == ()
    assert ch.ja3 == "771,47-53-10,,,"  # empty fields stay empty (JA3 README)
    assert ch.ja4.startswith("t12i030000_")
    assert ch.ja4.endswith("_000000000000")


def test_malformed_client_hello_raises_decode_error() -> None:
    broken = client_hello_body(extensions=ext(0, bytes.fromhex("0010 00 0009") + b"csms"))  # list overruns
    w = Wire()
    with pytest.raises(DecodeError, match="ClientHello extension 0: needs 16 bytes"):
        w.send(C2S, record(22, handshake(1, broken)))


def test_client_hello_with_trailing_garbage_raises_decode_error() -> None:
    w = Wire()
    with pytest.raises(DecodeError, match="trailing"):
        w.send(C2S, record(22, handshake(1, client_hello_body(extensions=ext(23, b"")) + b"\x00")))


# --- TLS 1.2: a full flight, certificates, alerts -----------------------------------------------------------------


def make_cert(
    subject: str,
    issuer_key: ec.EllipticCurvePrivateKey,
    issuer: str,
    key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
    san: list[x509.GeneralName] | None = None,
    not_before: datetime = datetime(2024, 1, 1, tzinfo=UTC),
    not_after: datetime = datetime(2036, 1, 1, tzinfo=UTC),
    serial: int = 0x1234,
) -> bytes:
    name = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, subject), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Lab")]
    )
    issuer_name = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, issuer), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Lab")]
    )
    b = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if san:
        b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return b.sign(issuer_key, hashes.SHA256()).public_bytes(Encoding.DER)


@pytest.fixture(scope="module")
def chain() -> tuple[bytes, bytes]:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key = ec.generate_private_key(ec.SECP384R1())
    root = make_cert("Lab Root", ca_key, "Lab Root", ca_key, ca=True, serial=1)
    leaf = make_cert(
        "csms.test",
        ca_key,
        "Lab Root",
        leaf_key,
        ca=False,
        san=[x509.DNSName("csms.test"), x509.DNSName("*.csms.test")],
        serial=0xABCDEF,
    )
    return leaf, root


def certificate_message(ders: list[bytes]) -> bytes:
    return handshake(11, vec(3, b"".join(vec(3, d) for d in ders)))


def tls12_server_flight(ders: list[bytes], *, random: bytes = NO_TIME) -> list[bytes]:
    """ServerHello, Certificate, ServerKeyExchange, ServerHelloDone as separate handshake messages."""
    exts = ext(0xFF01, b"\x00") + ext(16, vec(2, vec(1, b"http/1.1"))) + ext(11, b"\x01\x00")
    return [
        handshake(2, server_hello_body(random=random, extensions=exts)),
        certificate_message(ders),
        handshake(12, bytes(40)),
        SERVER_HELLO_DONE,
    ]


def test_tls12_server_flight_coalesced_in_one_segment(chain: tuple[bytes, bytes]) -> None:
    """Four records in one TCP segment, each with one message."""
    w = Wire()
    w.send(C2S, CH_RECORD)
    flight = b"".join(record(22, m) for m in tls12_server_flight(list(chain)))
    out = w.send(S2C, flight)
    kinds = [e.kind for e in out]
    assert kinds == ["tls.server_hello", "tls.certificate", "tls.handshake", "tls.handshake"]
    sh = out[0]
    assert isinstance(sh, TlsServerHello)
    assert (sh.legacy_version, sh.version, sh.version_name) == (0x0303, 0x0303, "TLSv1.2")
    assert sh.cipher_suite == 0xC02F
    assert sh.cipher_name == "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
    assert sh.alpn == "http/1.1"
    assert sh.extensions == (0xFF01, 16, 11)
    assert sh.ja3s == "771,49199,65281-16-11"
    assert sh.ja3s_hash == hashlib.md5(b"771,49199,65281-16-11").hexdigest()
    assert not sh.hello_retry_request
    assert sh.downgrade_sentinel is None
    assert sh.random_time is None  # NO_TIME
    cert = out[1]
    assert isinstance(cert, TlsCertificate)
    assert cert.sender == "server"
    assert len(cert.certificates) == 2
    leaf, root = cert.certificates
    assert leaf.san == ("csms.test", "*.csms.test")
    assert leaf.subject == "O=Lab,CN=csms.test"
    assert leaf.issuer == "O=Lab,CN=Lab Root"
    assert not leaf.self_signed
    assert leaf.is_ca is False
    assert root.self_signed
    assert root.is_ca
    assert leaf.parse_error is None
    assert leaf.public_key == "EC-secp384r1"
    assert root.public_key == "EC-secp256r1"
    assert leaf.signature_algorithm == "ecdsa-with-SHA256"
    assert leaf.serial == "abcdef"
    assert leaf.sha256 == hashlib.sha256(chain[0]).hexdigest()
    assert leaf.der_len == len(chain[0])
    assert [e.msg_name for e in out[2:]] == ["server_key_exchange", "server_hello_done"]  # type: ignore[attr-defined]


def test_tls12_server_flight_in_one_record(chain: tuple[bytes, bytes]) -> None:
    """Several messages in one record (RFC 5246 §6.2.1), then split across segments at an awkward place."""
    data = record(22, b"".join(tls12_server_flight(list(chain))))
    w = Wire()
    w.send(S2C, data[:7])
    w.send(S2C, data[7:700])
    w.send(S2C, data[700:])
    assert [e.kind for e in w.events] == ["tls.server_hello", "tls.certificate", "tls.handshake", "tls.handshake"]
    assert {e.frame for e in w.events} == {3}


def test_certificate_cryptography_refuses_is_still_reported(chain: tuple[bytes, bytes]) -> None:
    garbage = bytes.fromhex("3082 0010") + b"not a certificate"
    w = Wire()
    w.send(S2C, record(22, certificate_message([garbage, chain[1]])))
    (cert,) = w.of(TlsCertificate)
    bad, good = cert.certificates
    assert bad.parse_error
    assert bad.sha256 == hashlib.sha256(garbage).hexdigest()
    assert bad.der_len == len(garbage)
    assert bad.subject is None
    assert bad.san == ()
    assert good.parse_error is None
    assert good.subject == "O=Lab,CN=Lab Root"


def test_empty_client_certificate_and_certificate_request() -> None:
    """TLS 1.2 mutual TLS where the client has no certificate (the OCPP security profile 3 failure)."""
    ca_name = bytes.fromhex("3012 3110 300e 0603 550403 0c07") + b"Lab CA1"  # Name: CN=Lab CA1
    cert_request = handshake(
        13,
        vec(1, bytes([1, 64]))  # certificate_types: rsa_sign, ecdsa_sign
        + vec(2, bytes.fromhex("0403 0804"))  # supported_signature_algorithms
        + vec(2, vec(2, ca_name)),  # certificate_authorities
    )
    w = Wire()
    w.send(C2S, record(22, handshake(1, client_hello_body())))
    w.send(S2C, record(22, handshake(2, server_hello_body()) + cert_request + SERVER_HELLO_DONE))
    w.send(C2S, record(22, certificate_message([]) + handshake(16, bytes(33))) + CCS + record(22, bytes(40)))
    w.send(S2C, record(21, bytes([2, 40])))  # fatal handshake_failure
    (req,) = w.of(TlsCertificateRequest)
    assert req.certificate_types == (1, 64)
    assert req.signature_algorithms == (0x0403, 0x0804)
    assert req.ca_names == ("CN=Lab CA1",)
    assert req.ca_count == 1
    assert req.direction == S2C
    (cert,) = w.of(TlsCertificate)
    assert cert.sender == "client"
    assert cert.certificates == ()
    assert "empty" in cert.summary()
    assert [e.msg_name for e in w.of(TlsHandshake)] == ["server_hello_done", "client_key_exchange"]
    (enc,) = w.of(TlsEncrypted)
    assert enc.content_type == 22
    assert enc.length == 40
    (alert,) = w.of(TlsAlert)
    assert (alert.level, alert.description, alert.description_name, alert.encrypted) == (
        2,
        40,
        "handshake_failure",
        False,
    )
    assert alert.direction == S2C
    assert alert.record_frame == 4


def test_certificate_request_before_tls12_has_no_signature_algorithms() -> None:
    w = Wire()
    w.send(S2C, record(22, handshake(2, server_hello_body(version=0x0301)), 0x0301))
    w.send(S2C, record(22, handshake(13, vec(1, b"\x01") + vec(2, b"")), 0x0301))
    (req,) = w.of(TlsCertificateRequest)
    assert req.certificate_types == (1,)
    assert req.signature_algorithms == ()
    assert req.ca_count == 0


def test_tls12_encrypted_alert_after_change_cipher_spec() -> None:
    w = Wire()
    w.send(C2S, record(22, handshake(1, client_hello_body())))
    w.send(S2C, record(22, handshake(2, server_hello_body()) + SERVER_HELLO_DONE))
    w.send(C2S, record(22, handshake(16, bytes(33))) + CCS + record(22, bytes(40)))
    w.send(S2C, CCS + record(22, bytes(40)))
    w.send(C2S, record(21, bytes(26)))  # 2 bytes of alert + 24 bytes of AEAD overhead
    (alert,) = w.of(TlsAlert)
    assert alert.encrypted
    assert alert.level is None
    assert alert.description is None
    assert alert.length == 26
    assert alert.summary() == "encrypted alert (26 bytes)"
    assert len(w.of(TlsChangeCipherSpec)) == 2


def test_tls13_plaintext_alert_after_server_hello_is_read() -> None:
    """OpenSSL 3 clients send their certificate-rejection alert in clear even in TLS 1.3."""
    w = Wire()
    w.send(C2S, CH_RECORD)
    w.send(S2C, record(22, tls13_server_hello()) + CCS + record(23, bytes(500)))
    w.send(C2S, record(21, bytes([2, 42])))  # fatal bad_certificate, 2 bytes: plaintext
    w.send(C2S, record(21, bytes(19)))  # 19 bytes: cannot be a plaintext alert
    plain, enc = w.of(TlsAlert)
    assert (plain.level, plain.description_name, plain.encrypted) == (2, "bad_certificate", False)
    assert enc.encrypted
    assert enc.length == 19


def test_plaintext_alert_with_bad_level_is_reported_as_encrypted() -> None:
    w = Wire()
    w.send(S2C, record(21, bytes([7, 40])))
    (alert,) = w.of(TlsAlert)
    assert alert.encrypted
    assert alert.level is None


def test_two_alerts_in_one_record() -> None:
    w = Wire()
    w.send(S2C, record(21, bytes([1, 112, 2, 40])))
    assert [(a.level, a.description_name) for a in w.of(TlsAlert)] == [
        (1, "unrecognized_name"),
        (2, "handshake_failure"),
    ]


# --- TLS 1.3 ------------------------------------------------------------------------------------------------------


def test_tls13_handshake_is_encrypted_after_server_hello() -> None:
    w = Wire()
    w.send(C2S, CH_RECORD)
    out = w.send(S2C, record(22, tls13_server_hello()) + CCS + record(23, bytes(900)) + record(23, bytes(80)))
    assert [e.kind for e in out] == ["tls.server_hello", "tls.change_cipher_spec", "tls.encrypted", "tls.encrypted"]
    sh = out[0]
    assert isinstance(sh, TlsServerHello)
    assert (sh.legacy_version, sh.version, sh.version_name) == (0x0303, 0x0304, "TLSv1.3")
    assert sh.cipher_name == "TLS_AES_128_GCM_SHA256"
    assert sh.key_share_group == 0x001D
    assert sh.random_time is None
    assert sh.ja3s == "771,4865,43-51"
    enc = out[2]
    assert isinstance(enc, TlsEncrypted)
    assert (enc.content_type, enc.length, enc.index) == (23, 900, 3)
    # a type-22 record from the client now is ciphertext, not a message to parse
    w.send(C2S, CCS + record(22, bytes.fromhex("01 000010") + bytes(16)))
    assert w.of(TlsClientHello)[1:] == []
    assert w.of(TlsEncrypted)[-1].content_type == 22
    assert w.dec.session.tls13
    assert w.dec.session.version == 0x0304


def test_hello_retry_request_then_second_client_hello() -> None:
    """RFC 8446 §4.1.4: a HelloRetryRequest is a ServerHello with a special random; nothing is encrypted yet.
    The client's compatibility ChangeCipherSpec before its second ClientHello switches nothing (§D.4)."""
    w = Wire()
    w.send(C2S, CH_RECORD)
    hrr_exts = ext(43, bytes.fromhex("0304")) + ext(51, bytes.fromhex("0017"))
    w.send(S2C, record(22, handshake(2, server_hello_body(random=HRR_RANDOM, suite=0x1302, extensions=hrr_exts))) + CCS)
    w.send(C2S, CCS + CH_RECORD)
    w.send(S2C, record(22, tls13_server_hello(suite=0x1302)) + record(23, bytes(300)))
    hrr, sh = w.of(TlsServerHello)
    assert hrr.hello_retry_request
    assert hrr.key_share_group == 0x0017
    assert hrr.random_time is None
    assert "HelloRetryRequest" in hrr.summary()
    assert not sh.hello_retry_request
    assert len(w.of(TlsClientHello)) == 2
    assert w.dec.session.hello_retry


def test_draft_server_hello_without_legacy_fields() -> None:
    """TLS 1.3 drafts before -22: version 0x7FXX in the ServerHello, no session id, no compression."""
    body = (
        bytes.fromhex("7f12")
        + bytes(32)
        + bytes.fromhex("1301")
        + vec(2, ext(40, bytes.fromhex("001d 0004") + bytes(4)))
    )
    w = Wire()
    w.send(S2C, record(22, handshake(2, body)))
    (sh,) = w.of(TlsServerHello)
    assert sh.version == 0x7F12
    assert sh.version_name == "TLSv1.3-draft18"
    assert sh.cipher_suite == 0x1301
    assert sh.extensions == (40,)
    assert sh.ja3s == "32530,4865,40"
    assert sh.session_id_len == 0


def test_downgrade_sentinel() -> None:
    random = bytes(24) + b"DOWNGRD\x01"
    w = Wire()
    w.send(S2C, record(22, handshake(2, server_hello_body(random=random))))
    assert w.of(TlsServerHello)[0].downgrade_sentinel == 1


def test_data_after_a_tls13_server_hello_in_its_record() -> None:
    w = Wire()
    w.send(S2C, record(22, tls13_server_hello() + SERVER_HELLO_DONE))
    assert w.anomalies() == ["tls.data_after_server_hello"]


# --- encrypted records, summary, flights --------------------------------------------------------------------------


def tls12_session(w: Wire, *, app_both_ways: bool) -> None:
    w.send(C2S, record(22, handshake(1, client_hello_body())))
    w.send(S2C, record(22, handshake(2, server_hello_body()) + SERVER_HELLO_DONE))
    w.send(C2S, record(22, handshake(16, bytes(33))) + CCS + record(22, bytes(40)))
    w.send(S2C, CCS + record(22, bytes(40)))
    for _ in range(20):
        w.send(C2S, record(23, bytes(100)))
    if app_both_ways:
        w.send(S2C, record(23, bytes(50)))


def test_encrypted_records_are_reported_one_by_one_only_at_first() -> None:
    w = Wire()
    tls12_session(w, app_both_ways=True)
    w.close()
    client_enc = [e for e in w.of(TlsEncrypted) if e.direction == C2S]
    assert len(client_enc) == MAX_ENCRYPTED_EVENTS  # the Finished and 7 application data records
    (s,) = w.of(TlsSummary)
    assert s.records == (24, 4)
    assert s.encrypted_records == (21, 2)
    assert s.app_data_records == (20, 1)
    client_hello = 5 + 4 + len(client_hello_body())
    assert s.bytes[0] == client_hello + (5 + 4 + 33) + (5 + 1) + (5 + 40) + 20 * (5 + 100)
    assert s.bytes[1] == (5 + 4 + len(server_hello_body()) + 4) + (5 + 1) + (5 + 40) + (5 + 50)
    assert s.last_record_frame == (24, 25)
    assert s.last_record_type == (23, 23)
    assert s.last_record_length == (100, 50)
    assert s.first_encrypted_frame == (3, 4)
    assert s.version == 0x0303
    assert s.version_name == "TLSv1.2"
    assert s.app_data_both_ways is True
    assert [(f.direction, f.records) for f in s.flights] == [(0, 1), (1, 1), (0, 3), (1, 2), (0, 20), (1, 1)]
    assert s.flights_total == 6
    assert s.stopped == (False, False)
    assert s.frame == 26
    assert s.direction is None


def test_summary_tells_client_silence_after_the_server_flight() -> None:
    """The client aborted right after the server's flight: its last record is the ClientHello."""
    w = Wire()
    w.send(C2S, record(22, handshake(1, client_hello_body())))
    w.send(S2C, record(22, handshake(2, server_hello_body()) + SERVER_HELLO_DONE))
    w.close()
    (s,) = w.of(TlsSummary)
    assert s.records == (1, 1)
    assert s.last_record_frame == (1, 2)
    assert s.app_data_both_ways is False
    assert [(f.direction, f.first_frame) for f in s.flights] == [(0, 1), (1, 2)]


def test_summary_tls13_app_data_needs_two_encrypted_flights_each_way() -> None:
    w = Wire()
    w.send(C2S, CH_RECORD)
    w.send(S2C, record(22, tls13_server_hello()) + CCS + record(23, bytes(900)))
    w.send(C2S, CCS + record(23, bytes(60)) + record(23, bytes(300)))  # Finished + first request
    w.send(S2C, record(23, bytes(19)))  # e.g. an encrypted alert: the server's second encrypted flight
    w.close()
    (s,) = w.of(TlsSummary)
    assert s.version_name == "TLSv1.3"
    assert s.app_data_both_ways is False
    w2 = Wire()
    for direction, data in [
        (C2S, CH_RECORD),
        (S2C, record(22, tls13_server_hello()) + CCS + record(23, bytes(900))),
        (C2S, CCS + record(23, bytes(60)) + record(23, bytes(300))),
        (S2C, record(23, bytes(200))),
        (C2S, record(23, bytes(120))),
    ]:
        w2.send(direction, data)
    w2.close()
    assert w2.of(TlsSummary)[0].app_data_both_ways is True


# --- clock --------------------------------------------------------------------------------------------------------


def test_client_random_time_near_the_capture_time_is_a_clock_sample() -> None:
    seconds = T0 // 10**9 - 3600  # the charger's clock is an hour behind
    w = Wire()
    w.send(C2S, record(22, handshake(1, client_hello_body(random=seconds.to_bytes(4, "big") + bytes(28)))))
    ch, sample = w.events
    assert isinstance(ch, TlsClientHello)
    assert ch.random_time == seconds
    assert isinstance(sample, ClockSample)
    assert (sample.side, sample.source, sample.value_ns) == ("charger", "tls.client_random", seconds * 10**9)
    assert sample.raw == "2023-11-14T21:13:20Z"
    assert sample.frame == ch.frame


def test_any_time_before_2100_is_a_sample_and_the_clock_analysis_judges_it() -> None:
    """A clock reset to 2000-01-01 is what the clock analysis looks for; a random value also reads as a time."""
    seconds = int(datetime(2000, 1, 1, 0, 3, 12, tzinfo=UTC).timestamp())
    w = Wire()
    w.send(C2S, record(22, handshake(1, client_hello_body(random=seconds.to_bytes(4, "big") + bytes(28)))))
    w.send(S2C, record(22, handshake(2, server_hello_body(random=(T0 // 10**9).to_bytes(4, "big") + bytes(28)))))
    charger, csms = w.of(ClockSample)
    assert (charger.side, charger.value_ns, charger.raw) == ("charger", seconds * 10**9, "2000-01-01T00:03:12Z")
    assert (csms.side, csms.source, csms.value_ns) == ("csms", "tls.server_random", T0)
    assert w.of(TlsClientHello)[0].random_time == seconds


def test_a_reset_clock_counting_from_1970() -> None:
    w = Wire()
    w.send(C2S, record(22, handshake(1, client_hello_body(random=bytes.fromhex("00000e10") + bytes(28)))))
    (sample,) = w.of(ClockSample)
    assert sample.raw == "1970-01-01T01:00:00Z"


@pytest.mark.parametrize("first4", ["f4865700", "ffffffff"])  # 2100-01-01 and later
def test_random_time_from_2100_on_is_none(first4: str) -> None:
    w = Wire()
    w.send(C2S, record(22, handshake(1, client_hello_body(random=bytes.fromhex(first4) + bytes(28)))))
    assert w.events[0].random_time is None  # type: ignore[attr-defined]
    assert len(w.events) == 1


def test_no_time_in_a_tls13_server_random() -> None:
    w = Wire()
    w.send(S2C, record(22, tls13_server_hello(random=(T0 // 10**9).to_bytes(4, "big") + bytes(28))))
    assert w.of(TlsServerHello)[0].random_time is None
    assert w.of(ClockSample) == []


# --- gaps, limits, nonsense ---------------------------------------------------------------------------------------


def test_gap_inside_an_encrypted_record_keeps_record_boundaries() -> None:
    w = Wire()
    tls12_session(w, app_both_ways=False)
    app = record(23, bytes(1000))
    w.send(S2C, app[:300])
    (gap,) = w.lose(S2C, 400)
    assert gap.name == "tls.gap"
    assert "record boundaries kept" in gap.detail
    w.send(S2C, app[700:] + record(21, bytes([1, 0])))
    assert w.of(TlsAlert)[-1].description_name == "close_notify"


@pytest.mark.parametrize("keys", [False, True], ids=["no key log", "a key log, as analyze always has"])
def test_gap_inside_a_handshake_record_loses_that_record_only(keys: bool) -> None:
    """As in tls-failures/ndpi__tls_missing_ch_frag.pcap: a segment of the ClientHello is missing. A key log
    changes nothing: the anomaly's "not parsed" holds in the product too."""
    w = Wire(TlsDecoder(FLOW, keys=KeyLog()) if keys else None)
    w.send(C2S, CH_RECORD[:50])
    w.lose(C2S, 60)
    w.send(C2S, CH_RECORD[110:])
    assert w.of(TlsClientHello) == []
    assert w.anomalies() == ["tls.gap"]
    assert "not parsed" in w.events[0].detail
    # later handshake records of that direction are counted, not parsed: a message boundary is unknown
    w.send(C2S, record(22, handshake(1, client_hello_body())))
    assert w.of(TlsClientHello) == []
    w.send(S2C, record(22, tls13_server_hello()))  # the other direction is unaffected
    assert len(w.of(TlsServerHello)) == 1
    w.send(C2S, CCS + record(23, bytes(50)) + record(21, bytes([2, 48])))  # other record types still are
    assert len(w.of(TlsChangeCipherSpec)) == 1
    assert len(w.of(TlsEncrypted)) == 1
    assert w.of(TlsAlert)[0].description_name == "unknown_ca"
    w.close()
    assert w.of(TlsSummary)[0].records == (5, 1)  # the damaged ClientHello record counts


def test_gap_between_records_resynchronises_on_a_record_header() -> None:
    w = Wire()
    w.send(S2C, record(23, bytes(10)))
    w.lose(S2C, 500)
    w.send(S2C, record(21, bytes([2, 40])))
    assert w.anomalies() == ["tls.gap"]
    assert w.of(TlsAlert)[0].description == 40


def test_gap_then_no_record_header_stops_the_direction() -> None:
    w = Wire()
    w.send(S2C, record(23, bytes(10)))
    w.lose(S2C, 500, GapReason.SNAPLEN)
    w.send(S2C, b"garbage bytes in the middle of a record")
    w.send(S2C, record(21, bytes([2, 40])))
    assert w.anomalies() == ["tls.gap", "tls.resync_failed"]
    assert "snaplen" in w.of(DecodeAnomaly)[0].detail
    assert w.of(TlsAlert) == []
    w.send(C2S, record(21, bytes([1, 0])))  # the other direction goes on
    assert len(w.of(TlsAlert)) == 1
    w.close()
    assert w.of(TlsSummary)[0].stopped == (False, True)


def test_not_tls_stops_that_direction_only() -> None:
    """As in tls-failures/zeek__https-to-http.pcap: the server answers a ClientHello with HTML."""
    w = Wire()
    w.send(C2S, CH_RECORD)
    w.send(S2C, b"<html><body>400 Bad Request</body></html>")
    (a,) = [e for e in w.events if isinstance(e, DecodeAnomaly)]
    assert a.name == "tls.bad_record"
    assert a.decoder == "tls"
    assert a.direction == S2C
    assert w.send(S2C, record(21, bytes([2, 40]))) == []


@pytest.mark.parametrize(
    "header",
    [
        bytes.fromhex("19 0303 0010"),  # type 25
        bytes.fromhex("16 0403 0010"),  # major 4
        bytes.fromhex("16 0305 0010"),  # minor 5
        bytes.fromhex("17 0303") + (MAX_RECORD_LEN + 1).to_bytes(2, "big"),  # too long
    ],
)
def test_record_header_nonsense_is_an_anomaly(header: bytes) -> None:
    w = Wire()
    w.send(C2S, header + bytes(16))
    assert w.anomalies() == ["tls.bad_record"]


def test_handshake_message_over_the_limit() -> None:
    w = Wire()
    w.send(S2C, record(22, bytes([11]) + (MAX_HANDSHAKE_LEN + 1).to_bytes(3, "big")))
    assert w.anomalies() == ["tls.buffer_limit"]
    assert w.send(S2C, record(21, bytes([2, 40]))) == []


def test_unfinished_handshake_message_before_change_cipher_spec() -> None:
    w = Wire()
    w.send(S2C, record(22, handshake(2, server_hello_body())))
    w.send(S2C, record(22, bytes.fromhex("0b 000100") + bytes(10)) + CCS)
    assert w.anomalies() == ["tls.incomplete_handshake"]


def test_offsets_that_skip_bytes_count_as_a_gap() -> None:
    dec = TlsDecoder(FLOW)
    dec.feed(StreamChunk(FLOW, 0, 0, record(23, bytes(10)), 1, 1, T0))
    out = dec.feed(StreamChunk(FLOW, 0, 100, record(21, bytes([1, 0])), 2, 2, T0))
    assert [e.kind for e in out] == ["decode.anomaly", "tls.alert"]


def test_overlapping_chunk_is_trimmed() -> None:
    dec = TlsDecoder(FLOW)
    dec.feed(StreamChunk(FLOW, 0, 0, CH_RECORD[:100], 1, 1, T0))
    (ch,) = dec.feed(StreamChunk(FLOW, 0, 50, CH_RECORD[50:], 2, 2, T0))
    assert isinstance(ch, TlsClientHello)


def test_close_twice_and_feed_after_close() -> None:
    w = Wire()
    w.send(C2S, CH_RECORD)
    assert len(w.close()) == 1
    assert w.close() == []
    assert w.send(C2S, CH_RECORD) == []


def test_no_summary_without_records() -> None:
    assert Wire().close() == []


# --- the record observer (where a decrypter plugs in) -------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.records: list[tuple[TlsRecord, int | None]] = []

    def record(self, rec: TlsRecord, session: TlsSession) -> list[Event]:
        self.records.append((rec, session.cipher_suite))
        return []


def test_observer_sees_every_record_with_its_payload() -> None:
    rec = Recorder()
    w = Wire(TlsDecoder(FLOW, observer=rec))
    tls12_session(w, app_both_ways=True)
    assert len(rec.records) == 28
    first, suite = rec.records[0]
    assert first.content_type == 22
    assert not first.encrypted
    assert first.offset == 0
    assert suite is None
    last, suite = rec.records[-1]
    assert last.content_type == 23
    assert last.encrypted
    assert last.payload == bytes(50)
    assert suite == 0xC02F
    finished = [r for r, _ in rec.records if r.content_type == 22 and r.encrypted]
    assert len(finished) == 2


# --- robustness ---------------------------------------------------------------------------------------------------


def _valid_stream() -> tuple[bytes, bytes]:
    ca = bytes.fromhex("3082 0010") + b"not a certificate"
    client = CH_RECORD + record(22, certificate_message([]) + handshake(16, bytes(33))) + CCS + record(22, bytes(40))
    server = b"".join(record(22, m) for m in tls12_server_flight([ca])) + CCS + record(23, bytes(64))
    return client + record(21, bytes([1, 0])), server + record(21, bytes(26))


VALID_CLIENT, VALID_SERVER = _valid_stream()


def _mutate(data: bytes, edits: list[tuple[int, int, int]]) -> bytes:
    b = bytearray(data)
    for kind, pos, value in edits:
        if not b:
            break
        p = pos % len(b)
        if kind == 0:
            b[p] = value
        elif kind == 1:
            b.insert(p, value)
        else:
            del b[p]
    return bytes(b)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    source=st.sampled_from(["client", "server", "random"]),
    random_bytes=st.binary(max_size=3000),
    edits=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 10**6), st.integers(0, 255)), max_size=8),
    cuts=st.lists(st.integers(1, 400), max_size=20),
    gap_at=st.none() | st.integers(0, 30),
)
def test_random_and_mutated_input_gives_events_or_decode_error(
    source: str, random_bytes: bytes, edits: list[tuple[int, int, int]], cuts: list[int], gap_at: int | None
) -> None:
    data = {"client": VALID_CLIENT, "server": VALID_SERVER, "random": random_bytes}[source]
    data = _mutate(data, edits)
    w = Wire()
    pos = 0
    chunks = []
    for c in cuts:
        chunks.append(data[pos : pos + c])
        pos += c
    chunks.append(data[pos:])
    try:
        for i, chunk in enumerate(chunks):
            if gap_at == i:
                w.lose(i % 2, 1 + i)
            if chunk:
                w.send(i % 2, chunk)
        w.close()
    except DecodeError:
        pass
    assert all(isinstance(e, Event) for e in w.events)
    assert len(w.events) <= len(data) // 2 + 20
    for h in w.dec._halves:
        assert len(h.hs) <= MAX_HANDSHAKE_LEN
        assert len(h.hdr) < 5
        assert h.body is None or len(h.body) <= MAX_RECORD_LEN


def test_memory_is_bounded_on_a_long_encrypted_session() -> None:
    w = Wire()
    tls12_session(w, app_both_ways=True)
    segment = record(23, bytes(16_000)) * 4
    tracemalloc.start()
    try:
        for _ in range(300):  # ~19 MB each way
            w.send(C2S, segment)
            w.send(S2C, segment)
        current, _peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert current < 1_000_000
    assert len(w.events) < 40
    w.close()
    assert w.of(TlsSummary)[0].records[0] == 24 + 1200


def test_summary_timestamps_are_those_given_to_close() -> None:
    w = Wire()
    w.send(C2S, CH_RECORD)
    (s,) = w.dec.close(99, T0 + 5)
    assert (s.frame, s.ts_ns) == (99, T0 + 5)
    assert s.summary().startswith("TLS ?:")


def test_events_are_json_friendly() -> None:
    """Fields hold only str, int, bool, None and tuples of those or of small frozen dataclasses."""
    import dataclasses

    w = Wire()
    tls12_session(w, app_both_ways=True)
    w.send(S2C, record(22, certificate_message([make_cert_cached()])))
    w.close()

    def check(value: object) -> None:
        if dataclasses.is_dataclass(value):
            for f in dataclasses.fields(value):
                check(getattr(value, f.name))
        elif isinstance(value, tuple):
            for v in value:
                check(v)
        else:
            assert value is None or isinstance(value, str | int | bool), repr(value)

    for e in w.events:
        check(e)


_CACHED: list[bytes] = []


def make_cert_cached() -> bytes:
    if not _CACHED:
        key = ec.generate_private_key(ec.SECP256R1())
        _CACHED.append(
            make_cert(
                "old.test",
                key,
                "old.test",
                key,
                ca=False,
                not_before=datetime(1960, 1, 1, tzinfo=UTC),
                not_after=datetime(2060, 1, 1, tzinfo=UTC) + timedelta(seconds=1),
            )
        )
    return _CACHED[0]
