"""Passive TLS decoder (sans-IO): record layer and plaintext handshake of one TCP connection, without keys.

What it does, per direction: reassembles records (RFC 8446 §5.1, RFC 5246 §6.2) across TCP segments, splits
coalesced ones, reassembles handshake messages across records (RFC 8446 §5.1: a message may span records and a
record may carry several messages), parses the plaintext messages (ClientHello, ServerHello, Certificate,
CertificateRequest; the others are reported by type and length), reports alerts, ChangeCipherSpec and encrypted
records, and counts everything for a closing ``TlsSummary``.

Where encryption starts (decided by what the connection showed, not by port or configuration):

- TLS ≤ 1.2: a direction's records are encrypted after that direction's ChangeCipherSpec (RFC 5246 §7.1);
- TLS 1.3 (0x0304 or a 0x7FXX draft selected by a ServerHello that is not a HelloRetryRequest): both directions'
  handshake records are encrypted after the ServerHello (RFC 8446 §2); its ciphertext records carry the outer type
  23, and a ChangeCipherSpec there is the middlebox-compatibility dummy (§D.4), which switches nothing. A client
  that offered TLS 1.3 may send that dummy before its second ClientHello (after a HelloRetryRequest), so a
  ChangeCipherSpec switches nothing either while a TLS 1.3 offer has no final ServerHello yet;
- an alert record is judged by itself: exactly 2 bytes with level 1 or 2 is plaintext (OpenSSL 3 clients send their
  certificate-rejection alert in clear even in TLS 1.3), anything else is encrypted.

Decryption (``keys``: a ``KeyLog``): encrypted records are decrypted with the session's secrets
(``analyzer.tls.session``). Their content then goes where the plaintext would: handshake messages (the TLS 1.3
Certificate and CertificateRequest, Finished, KeyUpdate) are parsed like plaintext ones; an alert is reported with
its description (``decrypted=True``); application data feeds an inner stream decoder chosen by ``inner`` (HTTP
upgrade → WebSocket → OCPP, as on a plain connection). ``TlsSummary.decryption`` says whether and why not. A
``RecordObserver`` still sees every record as sent.

Anomalies (``DecodeAnomaly`` with ``decoder="tls"``), by name:

- ``tls.bad_record``: a record header with a type outside 20..24, a version other than 3.0-3.4, or a length over
  2^14 + 2048 (RFC 5246 §6.2.3): that direction is not (or no longer) TLS and is not decoded further;
- ``tls.gap``: bytes of the direction are missing. Inside a record the decoder was only passing over, it stays in
  step; inside a plaintext record, that record is lost; anywhere else the next bytes must look like a record
  header, else ``tls.resync_failed`` and that direction stops. Once handshake bytes are lost, that direction's
  later handshake records are counted but not parsed (message boundaries are unknown);
- ``tls.buffer_limit``: a handshake message declares more than ``MAX_HANDSHAKE_LEN`` bytes: the direction stops;
- ``tls.event_limit``: more than ``MAX_MESSAGE_EVENTS`` message events in a direction: the rest is only counted;
- ``tls.incomplete_handshake``: part of a handshake message was pending when encryption started or at close;
- ``tls.data_after_server_hello``: bytes after a TLS 1.3 ServerHello in its record (RFC 8446 §5.1 forbids it);
- ``tls.truncated_record``: the connection ended inside a record;
- ``tls.decrypt_failed``: a record did not authenticate under the key log's secrets (wrong keys): that direction
  is not decrypted further; ``tls.decrypt_unsupported``: the cipher suite is not one ghostcap decrypts.

A handshake message whose fields contradict their own lengths raises ``DecodeError``.

Skipping (``SkippingDecoder``): without an observer, the body of a record the decoder does not keep is only
counted: an encrypted record while the key log holds no secret at all (it is kept for decryption when secrets are
known as it starts: a Decryption Secrets Block read in the middle of a record applies from the next record on),
and, without keys, a handshake record once handshake bytes were lost. ``skip_window`` shares with the flow layer,
per direction, the stream offset where that body ends; the flow layer delivers no chunk for the segments wholly
inside it but the last, and the decoder takes the bytes it was not given off its skip count when the next chunk,
gap or ``passed_over`` call shows where the stream got to. Records, their frames, flights, gaps and truncated
records come out as if every byte had been delivered.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, ClassVar, NamedTuple, Protocol

from analyzer.decoders.base import DecodeError, StreamDecoder
from analyzer.decoders.tls_fingerprint import client_fingerprints, server_fingerprints
from analyzer.decoders.tls_names import (
    ALERT_LEVELS,
    alert_name,
    cipher_name,
    handshake_name,
    is_tls13,
    version_name,
)
from analyzer.decoders.x509 import DerError, cert_info, name_from_der
from analyzer.events.base import DecodeAnomaly, Event, GapReason, StreamChunk, StreamGap
from analyzer.events.clock import ClockSample
from analyzer.events.tls import (
    CertInfo,
    TlsAlert,
    TlsCertificate,
    TlsCertificateRequest,
    TlsChangeCipherSpec,
    TlsClientHello,
    TlsEncrypted,
    TlsFlight,
    TlsHandshake,
    TlsServerHello,
    TlsSummary,
)

if TYPE_CHECKING:
    from analyzer.tls.keylog import KeyLog
    from analyzer.tls.session import SessionKeys

UNKNOWN_LOSS = 1 << 40  # gap size told to the inner decoder when how much plaintext was lost is unknown
InnerFactory = Callable[[bytes, int], StreamDecoder | None]  # (first plaintext bytes, direction) → decoder

# Record layer (RFC 8446 §5.1, RFC 5246 §6.2.1, RFC 6520 for heartbeat)
RECORD_HEADER_LEN = 5
CT_CHANGE_CIPHER_SPEC = 20
CT_ALERT = 21
CT_HANDSHAKE = 22
CT_APPLICATION_DATA = 23
CT_HEARTBEAT = 24
MAX_RECORD_LEN = 2**14 + 2048  # RFC 5246 §6.2.3: TLSCiphertext.length ≤ 2^14 + 2048 (RFC 8446 §5.2: 2^14 + 256)
SSL3_MAJOR = 3
MAX_MINOR = 4  # 3.0 SSL 3.0 ... 3.4 (TLS 1.3 never puts 3.4 in a record header, but it is not nonsense)

# Handshake layer (RFC 8446 §4)
HANDSHAKE_HEADER_LEN = 4
HS_CLIENT_HELLO = 1
HS_SERVER_HELLO = 2
HS_CERTIFICATE = 11
HS_CERTIFICATE_REQUEST = 13
HELLO_RANDOM_LEN = 32
# RFC 8446 §4.1.3: a ServerHello with this random is a HelloRetryRequest (SHA-256 of "HelloRetryRequest")
HRR_RANDOM = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")
# RFC 8446 §4.1.3: last 8 bytes of a ServerHello random of a TLS 1.3 server that negotiated an older version
DOWNGRADE_PREFIX = b"DOWNGRD"
# TLS 1.3 drafts before -22 had a ServerHello without legacy_session_id_echo and compression (draft-22 §4.1.3)
DRAFT_WITH_LEGACY_FIELDS = 22

# Extension types (IANA; RFC 6066, RFC 7301, RFC 8422, RFC 8446)
EXT_SERVER_NAME = 0
EXT_SUPPORTED_GROUPS = 10
EXT_EC_POINT_FORMATS = 11
EXT_SIGNATURE_ALGORITHMS = 13
EXT_ALPN = 16
EXT_SUPPORTED_VERSIONS = 43
EXT_CERTIFICATE_AUTHORITIES = 47
EXT_KEY_SHARE_DRAFT = 40
EXT_KEY_SHARE = 51
SNI_HOST_NAME = 0  # RFC 6066 §3 NameType host_name

# Decoder limits
MAX_HANDSHAKE_LEN = 1 << 20  # bytes buffered for one handshake message, per direction
MAX_ENCRYPTED_EVENTS = 8  # TlsEncrypted events per direction; later records are only counted
MAX_MESSAGE_EVENTS = 256  # handshake/alert/CCS events per direction
MAX_FLIGHTS = 16  # flights kept in TlsSummary
MAX_CERTIFICATES = 32  # certificates parsed per Certificate message
MAX_CA_NAMES = 32  # CA names kept per CertificateRequest

# ``random_time`` and a ``ClockSample`` are reported when the first 4 random bytes read as a time before
# 2100-01-01 UTC (from 1970 on: a reset clock counts from 0) and the hello may carry a time at all: not a hello
# offering or selecting TLS 1.3 (RFC 8446 §4.1.2-4.1.3: 32 random bytes) nor a HelloRetryRequest (fixed random).
# RFC 5246 §7.4.1.2 stacks put ``gmt_unix_time`` there; most modern ones send random bytes, which land in this window
# with probability ~0.96: whether a sample is credible (near the capture time, or just after a default date) is for
# the clock analysis to decide, not the decoder.
PLAUSIBLE_TIME_MIN = 0
PLAUSIBLE_TIME_MAX = 4_102_444_800
NS = 1_000_000_000

_HDR = struct.Struct("!BHH")


def starts_like_tls(data: bytes) -> bool:
    """True if ``data`` (the first bytes of a TCP direction) begins like a TLS record: content type 20..23,
    version major 3 and minor 0..4, and, when the 5-byte header is complete, a length of 1..2^14+2048.
    Fewer than 3 bytes: False. SSLv2-compatible ClientHellos (RFC 5246 §E.2) are not recognised."""
    if len(data) < 3:
        return False
    if not CT_CHANGE_CIPHER_SPEC <= data[0] <= CT_APPLICATION_DATA or data[1] != SSL3_MAJOR or data[2] > MAX_MINOR:
        return False
    if len(data) >= RECORD_HEADER_LEN:
        length = (data[3] << 8) | data[4]
        return 0 < length <= MAX_RECORD_LEN
    return True


class TlsRecord(NamedTuple):
    """One complete record as a ``RecordObserver`` sees it: ``payload`` is the record body as sent (ciphertext
    when ``encrypted``); ``offset`` is the stream offset of its header; ``frame`` the frame that carried its last
    byte; ``at_frame``/``ts_ns`` those of the chunk that completed it."""

    direction: int
    content_type: int
    version: int
    payload: bytes
    encrypted: bool
    offset: int
    frame: int
    at_frame: int
    ts_ns: int


class TlsSession:
    """What the decoder learnt about the session so far (read-only for observers)."""

    __slots__ = (
        "cipher_suite",
        "client_direction",
        "client_random",
        "hello_retry",
        "offered_tls13",
        "server_direction",
        "server_extensions",
        "server_random",
        "version",
    )

    def __init__(self) -> None:
        self.client_random: bytes | None = None  # of the last ClientHello
        self.server_random: bytes | None = None  # of the last ServerHello (HelloRetryRequest included)
        self.cipher_suite: int | None = None
        self.version: int | None = None  # selected by the last ServerHello that is not a HelloRetryRequest
        self.hello_retry = False  # a HelloRetryRequest was seen
        self.offered_tls13 = False  # a ClientHello offered TLS 1.3 or a draft of it
        self.client_direction: int | None = None  # direction that carried the ClientHello
        self.server_direction: int | None = None  # direction that carried the ServerHello
        self.server_extensions: tuple[int, ...] = ()  # extension types of the last ServerHello

    @property
    def tls13(self) -> bool:
        return is_tls13(self.version)


class RecordObserver(Protocol):
    """Receives every complete record (the place for a key-log driven decrypter); returns its own events."""

    def record(self, rec: TlsRecord, session: TlsSession) -> list[Event]: ...


class _Reader:
    """Bounds-checked big-endian reads over one handshake message; every overrun raises ``DecodeError``."""

    __slots__ = ("data", "end", "offset", "pos", "what")

    def __init__(self, data: bytes, what: str, offset: int | None, pos: int = 0, end: int | None = None) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end
        self.what = what
        self.offset = offset

    def _need(self, n: int) -> int:
        p = self.pos
        if p + n > self.end:
            raise DecodeError(f"{self.what}: needs {n} bytes at {p}, has {self.end - p}", self.offset)
        self.pos = p + n
        return p

    def u8(self) -> int:
        return self.data[self._need(1)]

    def u16(self) -> int:
        p = self._need(2)
        return (self.data[p] << 8) | self.data[p + 1]

    def u24(self) -> int:
        p = self._need(3)
        return (self.data[p] << 16) | (self.data[p + 1] << 8) | self.data[p + 2]

    def take(self, n: int) -> bytes:
        p = self._need(n)
        return self.data[p : p + n]

    def sub(self, n: int, what: str) -> _Reader:
        p = self._need(n)
        return _Reader(self.data, what, self.offset, p, p + n)

    def vec8(self, what: str) -> _Reader:
        return self.sub(self.u8(), what)

    def vec16(self, what: str) -> _Reader:
        return self.sub(self.u16(), what)

    def vec24(self, what: str) -> _Reader:
        return self.sub(self.u24(), what)

    @property
    def left(self) -> int:
        return self.end - self.pos

    def u16_list(self) -> tuple[int, ...]:
        if self.left % 2:
            raise DecodeError(f"{self.what}: odd length {self.left} for a list of 16-bit values", self.offset)
        d, p = self.data, self.pos
        self.pos = self.end
        return tuple((d[i] << 8) | d[i + 1] for i in range(p, self.end, 2))

    def take_all(self) -> bytes:
        return self.take(self.left)

    def u8_list(self) -> tuple[int, ...]:
        out = tuple(self.data[self.pos : self.end])
        self.pos = self.end
        return out

    def done(self) -> None:
        if self.pos != self.end:
            raise DecodeError(f"{self.what}: {self.end - self.pos} trailing bytes", self.offset)


class _Half:
    """State of one direction."""

    __slots__ = (
        "alerts",
        "app_records",
        "body",
        "bytes",
        "ehs",
        "enc_events",
        "enc_flight_marked",
        "enc_flights",
        "enc_records",
        "encrypted",
        "first_enc_frame",
        "hdr",
        "hs",
        "hs_lost",
        "hs_version",
        "last_frame",
        "last_len",
        "last_type",
        "limit_noted",
        "msg_events",
        "need",
        "pos",
        "rdamaged",
        "records",
        "resync",
        "rlen",
        "roffset",
        "rtype",
        "rver",
        "skip",
        "stopped",
    )

    def __init__(self) -> None:
        self.pos = 0  # stream offset of the next byte expected
        self.hdr = bytearray()  # partial record header
        self.rtype = -1  # type of the record being read, -1 between records
        self.rver = 0
        self.rlen = 0
        self.roffset = 0  # stream offset of its header
        self.rdamaged = False  # bytes of it are missing
        self.body: bytearray | None = None  # its body, when kept
        self.need = 0  # body bytes still to keep
        self.skip = 0  # body bytes still to pass over
        self.hs = bytearray()  # handshake bytes not yet forming a whole message
        self.hs_version = 0  # record version of the record that began the buffered message
        self.hs_lost = False  # handshake bytes were lost: message boundaries unknown
        self.ehs = bytearray()  # decrypted handshake bytes not yet forming a whole message
        self.encrypted = False
        self.resync = False
        self.stopped = False
        self.records = 0
        self.bytes = 0
        self.enc_records = 0
        self.app_records = 0
        self.alerts = 0
        self.enc_events = 0
        self.msg_events = 0
        self.limit_noted = False
        self.first_enc_frame: int | None = None
        self.last_frame: int | None = None
        self.last_type: int | None = None
        self.last_len: int | None = None
        self.enc_flights = 0  # flights with an encrypted record after the ServerHello
        self.enc_flight_marked = False


def _encrypted(h: _Half, rtype: int) -> bool:
    """Whether a record of ``rtype`` in direction ``h`` is ciphertext (an alert is judged by its body)."""
    return rtype == CT_APPLICATION_DATA or (h.encrypted and rtype != CT_ALERT and rtype != CT_CHANGE_CIPHER_SPEC)


def _plausible_time(random: bytes) -> int | None:
    t = int.from_bytes(random[:4], "big")
    return t if PLAUSIBLE_TIME_MIN <= t < PLAUSIBLE_TIME_MAX else None


def _text(raw: bytes) -> str:
    return raw.decode("ascii", "backslashreplace")


class ClientHelloFields(NamedTuple):
    """What the decoder reads of a ClientHello body (RFC 8446 §4.1.2, RFC 5246 §7.4.1.2); lists in wire order."""

    legacy_version: int
    random: bytes
    session_id_len: int
    cipher_suites: tuple[int, ...]
    compression_methods: tuple[int, ...]
    extensions: tuple[int, ...]  # extension type ids
    sni: str | None  # the first host_name of server_name
    alpn: tuple[bytes, ...]  # the raw protocol names
    groups: tuple[int, ...]
    signature_algorithms: tuple[int, ...]
    ec_point_formats: tuple[int, ...]
    supported_versions: tuple[int, ...]
    key_share_groups: tuple[int, ...]  # of key_share or the drafts' 40


def _read_client_hello(body: bytes, offset: int | None) -> ClientHelloFields:
    """A ClientHello body read with bounds checks: raises ``DecodeError`` naming the field a length overruns (the
    reference for ``_scan_client_hello``)."""
    r = _Reader(body, "ClientHello", offset)
    legacy_version = r.u16()
    random = r.take(HELLO_RANDOM_LEN)
    session_id_len = r.vec8("ClientHello session_id").left
    ciphers = r.vec16("ClientHello cipher_suites").u16_list()
    compression = r.vec8("ClientHello compression_methods").u8_list()
    sni: str | None = None
    alpn_raw: list[bytes] = []
    groups: tuple[int, ...] = ()
    sigalgs: tuple[int, ...] = ()
    point_formats: tuple[int, ...] = ()
    versions: tuple[int, ...] = ()
    key_shares: list[int] = []
    extensions: list[int] = []
    for etype, e in _extensions(r, "ClientHello"):
        extensions.append(etype)
        if etype == EXT_SERVER_NAME:
            names = e.vec16("server_name list")
            while names.left:
                name_type = names.u8()
                host = names.vec16("server_name").take_all()
                if name_type == SNI_HOST_NAME and sni is None:
                    sni = _text(host)
        elif etype == EXT_ALPN:
            protos = e.vec16("ALPN list")
            while protos.left:
                alpn_raw.append(protos.vec8("ALPN protocol").take_all())
        elif etype == EXT_SUPPORTED_GROUPS:
            groups = e.vec16("supported_groups").u16_list()
        elif etype == EXT_SIGNATURE_ALGORITHMS:
            sigalgs = e.vec16("signature_algorithms").u16_list()
        elif etype == EXT_EC_POINT_FORMATS:
            point_formats = e.vec8("ec_point_formats").u8_list()
        elif etype == EXT_SUPPORTED_VERSIONS:
            versions = e.vec8("supported_versions").u16_list()
        elif etype == EXT_KEY_SHARE or etype == EXT_KEY_SHARE_DRAFT:
            shares = e.vec16("key_share")
            while shares.left:
                key_shares.append(shares.u16())
                shares.vec16("key_exchange")
    r.done()
    return ClientHelloFields(
        legacy_version,
        random,
        session_id_len,
        ciphers,
        compression,
        tuple(extensions),
        sni,
        tuple(alpn_raw),
        groups,
        sigalgs,
        point_formats,
        versions,
        tuple(key_shares),
    )


def _extensions(r: _Reader, hello: str) -> Iterator[tuple[int, _Reader]]:
    """Each extension of a hello's extension list, when it has one: (type, reader over its data)."""
    if r.left:
        exts = r.vec16(f"{hello} extensions")
        while exts.left:
            etype = exts.u16()
            yield etype, exts.vec16(f"{hello} extension {etype}")


def _scan_client_hello(body: bytes) -> ClientHelloFields | None:
    """``_read_client_hello`` of a well-formed ClientHello, by plain index arithmetic (a fifth of the calls); ``None``
    as soon as a length overruns what holds it or a list of 16-bit values has an odd length: the bounds-checked
    reading then says what is wrong."""
    end = len(body)
    p = _vec_end(body, 2 + HELLO_RANDOM_LEN, end, 1)  # session_id
    ciphers = _u16_vec(body, p, end, 2)
    p = _vec_end(body, p, end, 2)
    compression = _u8_vec(body, p, end)
    p = _vec_end(body, p, end, 1)
    if ciphers is None or compression is None:
        return None
    extensions: list[int] = []
    sni: str | None = None
    alpn: list[bytes] = []
    key_shares: list[int] = []
    groups: tuple[int, ...] | None = ()
    sigalgs: tuple[int, ...] | None = ()
    point_formats: tuple[int, ...] | None = ()
    versions: tuple[int, ...] | None = ()
    if p < end:
        if _vec_end(body, p, end, 2) != end:  # the extensions end the body
            return None
        p += 2
    while p < end:
        e, stop = p + 4, _vec_end(body, p + 2, end, 2)
        if stop < 0:
            return None
        etype = (body[p] << 8) | body[p + 1]
        extensions.append(etype)
        p = stop
        items: list[tuple[int, int]] | None = []
        if etype == EXT_SERVER_NAME:  # (name_type, host_name<2>) items
            items = _vec_items(body, e, stop, 1, 2)
            for a, b in items or ():
                if body[a] == SNI_HOST_NAME and sni is None:
                    sni = _text(body[a + 3 : b])
        elif etype == EXT_ALPN:  # protocol_name<1> items
            items = _vec_items(body, e, stop, 0, 1)
            alpn.extend(body[a + 1 : b] for a, b in items or ())
        elif etype == EXT_KEY_SHARE or etype == EXT_KEY_SHARE_DRAFT:  # (group, key_exchange<2>) items
            items = _vec_items(body, e, stop, 2, 2)
            key_shares.extend((body[a] << 8) | body[a + 1] for a, _ in items or ())
        elif etype == EXT_SUPPORTED_GROUPS:
            groups = _u16_vec(body, e, stop, 2)
        elif etype == EXT_SIGNATURE_ALGORITHMS:
            sigalgs = _u16_vec(body, e, stop, 2)
        elif etype == EXT_EC_POINT_FORMATS:
            point_formats = _u8_vec(body, e, stop)
        elif etype == EXT_SUPPORTED_VERSIONS:
            versions = _u16_vec(body, e, stop, 1)
        if items is None or groups is None or sigalgs is None or point_formats is None or versions is None:
            return None
    return ClientHelloFields(
        (body[0] << 8) | body[1],
        body[2 : 2 + HELLO_RANDOM_LEN],
        body[2 + HELLO_RANDOM_LEN],
        ciphers,
        compression,
        tuple(extensions),
        sni,
        tuple(alpn),
        groups,
        sigalgs,
        point_formats,
        versions,
        tuple(key_shares),
    )


def _vec_end(data: bytes, p: int, end: int, width: int) -> int:
    """Where the vector whose ``width``-byte length (1 or 2) is at ``p`` ends; -1 when it does not fit before
    ``end`` (or ``p`` is -1 already)."""
    if p < 0 or p + width > end:
        return -1
    stop = p + width + (data[p] if width == 1 else (data[p] << 8) | data[p + 1])
    return stop if stop <= end else -1


def _u8_vec(data: bytes, p: int, end: int) -> tuple[int, ...] | None:
    """The bytes of the vector with a 1-byte length at ``p``; None when it overruns ``end``."""
    stop = _vec_end(data, p, end, 1)
    return None if stop < 0 else tuple(data[p + 1 : stop])


def _u16_vec(data: bytes, p: int, end: int, width: int) -> tuple[int, ...] | None:
    """The 16-bit values of the vector with a ``width``-byte length at ``p``; None when it overruns ``end`` or holds
    an odd count of bytes."""
    stop = _vec_end(data, p, end, width)
    start = p + width
    if stop < 0 or (stop - start) & 1:
        return None
    return struct.unpack_from(f"!{(stop - start) >> 1}H", data, start)


def _vec_items(data: bytes, p: int, end: int, head: int, width: int) -> list[tuple[int, int]] | None:
    """The (start, end) of each item of the vector with a 2-byte length at ``p``, an item being ``head`` bytes and
    then a vector with a ``width``-byte length; None when the list or an item overruns what holds it."""
    stop = _vec_end(data, p, end, 2)
    if stop < 0:
        return None
    items = []
    k = p + 2
    while k < stop:
        item_end = _vec_end(data, k + head, stop, width)
        if item_end < 0:
            return None
        items.append((k, item_end))
        k = item_end
    return items


class TlsDecoder:
    """Decodes the TLS of one TCP connection, both directions (``StreamDecoder``)."""

    name: ClassVar[str] = "tls"

    def __init__(
        self,
        flow_id: int,
        observer: RecordObserver | None = None,
        *,
        keys: KeyLog | None = None,
        inner: InnerFactory | None = None,
    ) -> None:
        self.flow_id = flow_id
        self.observer = observer
        self._keys: SessionKeys | None = None
        if keys is not None:
            from analyzer.tls.session import SessionKeys

            self._keys = SessionKeys(keys)
        self._inner_factory = inner
        self._inner: StreamDecoder | None = None
        self._inner_done = False  # the inner decoder was chosen (or none fits) or it failed
        self._inner_pos = [0, 0]
        self._inner_lost = [0, 0]  # ciphertext bytes lost since the inner decoder's last bytes, per direction
        self._key_noted = False  # a decryption problem was reported as an anomaly
        self.session = TlsSession()
        self._halves = (_Half(), _Half())
        self._flights: list[list[int]] = []  # [direction, first_frame, last_frame, records, encrypted, bytes]
        self._flights_total = 0
        self._flight_dir = -1
        self._client_hello_seen = False
        self._server_hello_seen = False  # a final (non-HRR) ServerHello
        self._closed = False
        self._chunk: StreamChunk | None = None  # the chunk being decoded (frame/ts of completed messages)
        # per direction: the end of the record body being passed over, read by the flow layer (``skip_window``)
        self._window: list[int] | None = None

    # --- StreamDecoder -----------------------------------------------------------------------------------------

    def feed(self, chunk: StreamChunk) -> list[Event]:
        d = chunk.direction
        h = self._halves[d]
        if h.stopped or self._closed:
            return []
        out: list[Event] = []
        data = chunk.data
        offset = chunk.offset
        if offset != h.pos:
            if offset > h.pos and self._window is not None:
                self._catch_up(h, d, offset)
            if offset > h.pos:  # the flow layer skipped bytes without a gap: treat it as one
                missing = offset - h.pos
                out += self._lose(h, d, offset, missing, chunk.at_frame, chunk.ts_ns, "not delivered")
                if h.stopped:
                    return out
            elif offset < h.pos:  # bytes already seen: keep only the new ones
                data = data[h.pos - offset :]
        self._chunk = chunk
        self._consume(h, d, data, out)
        return out

    def gap(self, gap: StreamGap) -> list[Event]:
        h = self._halves[gap.direction]
        if h.stopped or self._closed:
            return []
        if self._window is not None:
            self._catch_up(h, gap.direction, gap.offset)
        reason = gap.reason.name.lower() if isinstance(gap.reason, GapReason) else str(gap.reason)
        return self._lose(h, gap.direction, gap.offset + gap.size, gap.size, gap.frame, gap.ts_ns, reason)

    # --- the skip window (``SkippingDecoder``) ------------------------------------------------------------------

    def skip_window(self) -> list[int] | None:
        """Let the flow layer pass over the bodies of records this decoder does not keep: the list of, per
        direction, the stream offset where the body being passed over ends. ``None`` with an observer (it sees
        every record's bytes)."""
        if self.observer is not None:
            return None
        if self._window is None:
            self._window = [0, 0]
        return self._window

    def passed_over(self, direction: int, upto: int) -> None:
        """The flow layer got to stream offset ``upto`` of ``direction``: the bytes before it that were not
        delivered and lie in the window were passed over (a connection's end: call it before ``close``)."""
        h = self._halves[direction]
        if self._window is not None and not h.stopped and not self._closed:
            self._catch_up(h, direction, upto)

    def _catch_up(self, h: _Half, d: int, upto: int) -> None:
        """Take the bytes between the position and ``upto`` that lie in the window off the skip count.

        While a body is passed over, the window is where it ends (position + skip count); any other time it is
        at or behind the position (a record ends, or a gap gives up its boundaries, only past its end), so
        nothing is taken. The flow layer never withholds the body's last byte, nor is it taken here: the record
        ends on a chunk or a gap, with its frame."""
        last = self._window[d] - 1  # type: ignore[index]
        if upto > last:
            upto = last
        if upto > h.pos:
            h.skip -= upto - h.pos
            h.pos = upto

    def close(self, frame: int, ts_ns: int) -> list[Event]:
        if self._closed:
            return []
        self._closed = True
        out: list[Event] = []
        for d, h in enumerate(self._halves):
            if h.stopped:
                continue
            if h.rtype >= 0 or h.hdr:
                have = len(h.hdr) if h.rtype < 0 else (h.rlen - h.need - h.skip)
                want = RECORD_HEADER_LEN if h.rtype < 0 else h.rlen
                what = "record header" if h.rtype < 0 else f"type {h.rtype} record"
                out.append(self._anomaly(frame, ts_ns, d, "tls.truncated_record", f"{what}: {have} of {want} bytes"))
            elif h.hs and not h.hs_lost:
                out.append(
                    self._anomaly(
                        frame, ts_ns, d, "tls.incomplete_handshake", f"{len(h.hs)} bytes of a handshake message"
                    )
                )
        if self._inner is not None:
            self._chunk = StreamChunk(self.flow_id, 0, 0, b"", frame, frame, ts_ns)
            inner = self._inner
            self._run_inner(lambda: inner.close(frame, ts_ns), out)
        a, b = self._halves
        if a.records or b.records:
            out.append(self._summary(frame, ts_ns))
        return out

    # --- record layer --------------------------------------------------------------------------------------------

    def _consume(self, h: _Half, d: int, data: bytes, out: list[Event]) -> None:
        n = len(data)
        i = 0
        h.pos += n
        while i < n:
            if h.rtype < 0:  # header
                if not h.hdr and n - i >= RECORD_HEADER_LEN:
                    rtype, rver, rlen = _HDR.unpack_from(data, i)
                    i += RECORD_HEADER_LEN
                else:
                    take = min(RECORD_HEADER_LEN - len(h.hdr), n - i)
                    h.hdr += data[i : i + take]
                    i += take
                    if len(h.hdr) < RECORD_HEADER_LEN:
                        return
                    rtype, rver, rlen = _HDR.unpack(h.hdr)
                    h.hdr.clear()
                if not self._start_record(h, d, rtype, rver, rlen, h.pos - (n - i) - RECORD_HEADER_LEN, out):
                    return
                if rlen == 0:
                    self._end_record(h, d, b"", out)
                    if h.stopped:
                        return
                continue
            if h.skip:
                take = min(h.skip, n - i)
                h.skip -= take
                i += take
                if h.skip == 0 and h.need == 0:
                    self._end_record(h, d, None, out)
                continue
            # keeping the body
            take = min(h.need, n - i)
            if h.body is None:
                if take == h.need:  # the whole body is here: no copy into a buffer
                    h.need = 0
                    i += take
                    self._end_record(h, d, data[i - take : i], out)
                    if h.stopped:
                        return
                    continue
                h.body = bytearray()
            h.body += data[i : i + take]
            h.need -= take
            i += take
            if h.need == 0:
                body = bytes(h.body)
                h.body = None
                self._end_record(h, d, body, out)
            if h.stopped:
                return

    def _start_record(self, h: _Half, d: int, rtype: int, rver: int, rlen: int, offset: int, out: list[Event]) -> bool:
        sane = (
            CT_CHANGE_CIPHER_SPEC <= rtype <= CT_HEARTBEAT
            and rver >> 8 == SSL3_MAJOR
            and rver & 0xFF <= MAX_MINOR
            and rlen <= MAX_RECORD_LEN
        )
        if not sane:
            name = "tls.resync_failed" if h.resync else "tls.bad_record"
            detail = f"record header type {rtype} version 0x{rver:04x} length {rlen} at stream offset {offset}"
            if h.resync:
                detail = "bytes after the gap do not start a record: " + detail
            self._stop(h, d, name, detail, out)
            return False
        h.resync = False
        h.rtype, h.rver, h.rlen, h.roffset = rtype, rver, rlen, offset
        h.rdamaged = False
        if self.observer is not None or rtype == CT_ALERT or rtype == CT_CHANGE_CIPHER_SPEC:
            keep = True
        elif _encrypted(h, rtype):  # kept to be decrypted, when secrets are known as it starts
            keep = self._keys is not None and self._keys.active()
            if not keep and self._keys is not None and self._chunk is not None:  # a TLS 1.3 key setup, unkeyed
                self._keys.unkeyed_record(self._role(d), self.session, self._chunk.frame)
        else:  # plaintext: a handshake record is parsed unless handshake bytes were lost before it (where a
            # message begins is unknown then: reading one from the record's first byte could make up a message)
            keep = rtype == CT_HANDSHAKE and not h.hs_lost
        if keep:
            h.need, h.skip = rlen, 0
        else:
            h.need, h.skip = 0, rlen
            if self._window is not None:  # the flow layer need not deliver the body's bytes
                self._window[d] = offset + RECORD_HEADER_LEN + rlen
        h.body = None
        return True

    def _lose(self, h: _Half, d: int, end: int, size: int, frame: int, ts_ns: int, reason: str) -> list[Event]:
        """Bytes up to stream offset ``end`` are missing (``size`` of them reported by the flow layer)."""
        missing = end - h.pos
        out: list[Event] = []
        if missing <= 0:
            return out
        self._chunk = StreamChunk(self.flow_id, d, end, b"", frame, frame, ts_ns)
        detail = f"{size} bytes missing before stream offset {end} ({reason})"
        h.pos = end
        in_body = h.rtype >= 0
        remaining = h.need + h.skip
        if in_body and missing <= remaining:  # the gap ends inside (or at the end of) the current record
            h.rdamaged = True  # counted, not decoded (whether its body was kept or passed over)
            if h.need:  # a kept body: this record is lost
                h.skip = remaining - missing
                h.need = 0
                h.body = None
                if h.rtype == CT_HANDSHAKE and not h.encrypted and not h.hs_lost:
                    h.hs_lost = True
                    h.hs.clear()
                    detail += "; handshake bytes lost: later handshake records of this direction are not parsed"
            else:
                h.skip -= missing
            detail += f"; inside a type {h.rtype} record, record boundaries kept"
            out.append(self._anomaly(frame, ts_ns, d, "tls.gap", detail))
            if h.skip == 0 and h.need == 0:
                self._end_record(h, d, None, out)
            return out
        # record boundaries are lost
        if (h.hs or (in_body and h.rtype == CT_HANDSHAKE)) and not h.encrypted and not h.hs_lost:
            h.hs_lost = True
            detail += "; handshake bytes lost: later handshake records of this direction are not parsed"
        h.hs.clear()
        h.hdr.clear()
        h.rtype, h.need, h.skip, h.body = -1, 0, 0, None
        h.resync = True
        if self._keys is not None:
            self._keys.lost_bytes(self._role(d))
            self._inner_lost[d] += UNKNOWN_LOSS  # whole records may be gone: the inner decoder must resynchronise
        out.append(self._anomaly(frame, ts_ns, d, "tls.gap", detail + "; resynchronising on the next record header"))
        return out

    def _stop(self, h: _Half, d: int, name: str, detail: str, out: list[Event]) -> None:
        c = self._chunk
        assert c is not None
        h.stopped = True
        h.hs = bytearray()
        h.hdr = bytearray()
        h.body = None
        out.append(self._anomaly(c.at_frame, c.ts_ns, d, name, detail + "; this direction is no longer decoded"))

    def _end_record(self, h: _Half, d: int, payload: bytes | None, out: list[Event]) -> None:
        """A record is complete; ``payload`` is its body, or ``None`` when the decoder passed over it."""
        c = self._chunk
        assert c is not None
        rtype, rlen = h.rtype, h.rlen
        h.rtype = -1
        h.records += 1
        h.bytes += RECORD_HEADER_LEN + rlen
        h.last_frame, h.last_type, h.last_len = c.frame, rtype, rlen
        self._count_flight(d, c.frame, rlen)
        if h.rdamaged:  # bytes missing: counted, not decoded
            if rtype == CT_APPLICATION_DATA or h.encrypted:
                self._count_encrypted(h, rtype, c.frame)
                if self._keys is not None:
                    self._keys.lost_record(self._role(d))
                    self._inner_lost[d] += max(rlen - self._keys.overhead(), 0)  # its whole plaintext is lost
            return
        encrypted = False
        if _encrypted(h, rtype):
            encrypted = True
            self._count_encrypted(h, rtype, c.frame)
            plain = self._decrypt(d, rtype, h.rver, payload, out) if payload is not None else None
            if h.enc_events < MAX_ENCRYPTED_EVENTS:
                h.enc_events += 1
                event = TlsEncrypted(
                    ts_ns=c.ts_ns,
                    frame=c.at_frame,
                    flow_id=self.flow_id,
                    direction=d,
                    content_type=rtype,
                    length=rlen,
                    index=h.records,
                    record_frame=c.frame,
                    inner_type=plain[0] if plain is not None else None,
                )
                out.append(event)
            if plain is not None:
                self._inner_content(h, d, plain[0], plain[1], rlen, out)
        elif rtype == CT_HANDSHAKE:
            if payload is not None:  # None: handshake bytes were lost earlier in this direction
                self._handshake_bytes(h, d, payload, out)
        elif rtype == CT_ALERT:
            assert payload is not None
            encrypted = self._alert(h, d, payload, out)
        elif rtype == CT_CHANGE_CIPHER_SPEC:
            self._change_cipher_spec(h, d, out)
        # a plaintext heartbeat (RFC 6520) is only counted
        if self.observer is not None and payload is not None:
            rec = TlsRecord(d, rtype, h.rver, bytes(payload), encrypted, h.roffset, c.frame, c.at_frame, c.ts_ns)
            out += self.observer.record(rec, self.session)

    def _count_encrypted(self, h: _Half, rtype: int, frame: int) -> None:
        h.enc_records += 1
        if rtype == CT_APPLICATION_DATA:
            h.app_records += 1
        if h.first_enc_frame is None:
            h.first_enc_frame = frame
        if len(self._flights) == self._flights_total:
            self._flights[-1][4] += 1
        if self._server_hello_seen and not h.enc_flight_marked:
            h.enc_flight_marked = True
            h.enc_flights += 1

    def _count_flight(self, d: int, frame: int, rlen: int) -> None:
        if d != self._flight_dir:
            self._flight_dir = d
            self._flights_total += 1
            self._halves[d].enc_flight_marked = False
            if len(self._flights) < MAX_FLIGHTS:
                self._flights.append([d, frame, frame, 0, 0, 0])
        if len(self._flights) == self._flights_total:  # the current flight is kept
            f = self._flights[-1]
            f[2] = frame
            f[3] += 1
            f[5] += RECORD_HEADER_LEN + rlen

    def _emit(self, h: _Half, d: int, event: Event, out: list[Event]) -> None:
        """Append a message event unless this direction reached ``MAX_MESSAGE_EVENTS``."""
        if h.msg_events < MAX_MESSAGE_EVENTS:
            h.msg_events += 1
            out.append(event)
        elif not h.limit_noted:
            h.limit_noted = True
            out.append(
                self._anomaly(
                    event.frame, event.ts_ns, d, "tls.event_limit", f"more than {MAX_MESSAGE_EVENTS} messages"
                )
            )

    def _alert(self, h: _Half, d: int, body: bytes, out: list[Event]) -> bool:
        """Report an alert record; returns whether it was encrypted."""
        c = self._chunk
        assert c is not None
        n = len(body)
        plain = n == 2 and body[0] in ALERT_LEVELS
        if not plain and not h.encrypted and n and n % 2 == 0:
            plain = all(body[k] in ALERT_LEVELS for k in range(0, n, 2))  # several alerts in one record
        if plain:
            self._readable_alerts(h, d, body, n, False, out)
            return False
        self._count_encrypted(h, CT_ALERT, c.frame)
        plain = self._decrypt(d, CT_ALERT, h.rver, body, out)
        if plain is not None:
            self._inner_content(h, d, plain[0], plain[1], n, out)
            return True
        h.alerts += 1
        event = TlsAlert(
            ts_ns=c.ts_ns,
            frame=c.at_frame,
            flow_id=self.flow_id,
            direction=d,
            encrypted=True,
            record_frame=c.frame,
            length=n,
        )
        self._emit(h, d, event, out)
        return True

    def _readable_alerts(self, h: _Half, d: int, body: bytes, length: int, decrypted: bool, out: list[Event]) -> None:
        """One event per (level, description) pair: sent in clear, or decrypted from an encrypted record."""
        c = self._chunk
        assert c is not None
        for k in range(0, len(body) - 1, 2):
            h.alerts += 1
            desc = body[k + 1]
            event = TlsAlert(
                ts_ns=c.ts_ns,
                frame=c.at_frame,
                flow_id=self.flow_id,
                direction=d,
                level=body[k],
                description=desc,
                description_name=alert_name(desc),
                encrypted=decrypted,
                decrypted=decrypted,
                record_frame=c.frame,
                length=length,
            )
            self._emit(h, d, event, out)

    def _change_cipher_spec(self, h: _Half, d: int, out: list[Event]) -> None:
        c = self._chunk
        assert c is not None
        self._emit(
            h,
            d,
            TlsChangeCipherSpec(
                ts_ns=c.ts_ns, frame=c.at_frame, flow_id=self.flow_id, direction=d, record_frame=c.frame
            ),
            out,
        )
        s = self.session
        if self._server_hello_seen:
            switch = not s.tls13
        else:
            switch = not s.offered_tls13  # a TLS 1.3 offer's compatibility CCS may precede a second ClientHello
        if switch and not h.encrypted:
            self._encrypt(h, d, "ChangeCipherSpec", out)
            if self._keys is not None:
                self._keys.change_cipher_spec(self._role(d), s, c.frame)

    def _encrypt(self, h: _Half, d: int, why: str, out: list[Event]) -> None:
        h.encrypted = True
        if h.hs and not h.hs_lost:
            c = self._chunk
            assert c is not None
            detail = f"{len(h.hs)} bytes of an unfinished handshake message before {why}"
            out.append(self._anomaly(c.at_frame, c.ts_ns, d, "tls.incomplete_handshake", detail))
        h.hs.clear()

    # --- handshake layer -----------------------------------------------------------------------------------------

    def _handshake_bytes(self, h: _Half, d: int, payload: bytes, out: list[Event], decrypted: bool = False) -> None:
        """Parse the handshake messages ``payload`` completes (``decrypted``: from encrypted records, whose
        messages are buffered apart from the plaintext ones)."""
        hs = h.ehs if decrypted else h.hs
        if not hs:
            h.hs_version = h.rver
            buf: bytes | bytearray = payload
        else:
            hs += payload
            buf = hs
        was_encrypted = h.encrypted
        pos = 0
        end = len(buf)
        while end - pos >= HANDSHAKE_HEADER_LEN:
            msg_type = buf[pos]
            length = (buf[pos + 1] << 16) | (buf[pos + 2] << 8) | buf[pos + 3]
            if length > MAX_HANDSHAKE_LEN:
                self._stop(
                    h,
                    d,
                    "tls.buffer_limit",
                    f"{handshake_name(msg_type)} of {length} bytes exceeds the {MAX_HANDSHAKE_LEN}-byte limit",
                    out,
                )
                return
            if end - pos - HANDSHAKE_HEADER_LEN < length:
                break
            body = bytes(buf[pos + HANDSHAKE_HEADER_LEN : pos + HANDSHAKE_HEADER_LEN + length])
            pos += HANDSHAKE_HEADER_LEN + length
            self._message(h, d, msg_type, body, out)
            if decrypted and self._keys is not None:
                self._keys.handshake_message(self._role(d), msg_type)
            if h.stopped:
                return
            if h.encrypted and not was_encrypted:  # a TLS 1.3 ServerHello: the rest of its record is not plaintext
                if pos < end:
                    c = self._chunk
                    assert c is not None
                    detail = f"{end - pos} bytes follow the ServerHello in its record"
                    out.append(self._anomaly(c.at_frame, c.ts_ns, d, "tls.data_after_server_hello", detail))
                h.hs.clear()
                return
            h.hs_version = h.rver
        if buf is hs:
            del hs[:pos]
        elif decrypted:
            h.ehs = bytearray(buf[pos:])
        else:
            h.hs = bytearray(buf[pos:])

    # --- decrypted content ---------------------------------------------------------------------------------------

    def _role(self, d: int) -> int:
        """0 when direction ``d`` is the client's (the ClientHello's sender), else 1."""
        client = self.session.client_direction
        return 0 if d == (client if client is not None else 0) else 1

    def _decrypt(self, d: int, rtype: int, rver: int, payload: bytes, out: list[Event]) -> tuple[int, bytes] | None:
        keys = self._keys
        if keys is None:
            return None
        c = self._chunk
        assert c is not None
        plain = keys.decrypt(self._role(d), rtype, rver, payload, self.session, c.frame)
        role = self._role(d)
        if plain is None and not self._key_noted and keys.stopped(role) and keys.status in ("failed", "unsupported"):
            self._key_noted = True
            name = "tls.decrypt_failed" if keys.status == "failed" else "tls.decrypt_unsupported"
            out.append(self._anomaly(c.at_frame, c.ts_ns, d, name, keys.detail))
        return plain

    def _inner_content(self, h: _Half, d: int, ctype: int, data: bytes, rlen: int, out: list[Event]) -> None:
        if ctype == CT_HANDSHAKE:
            self._handshake_bytes(h, d, data, out, decrypted=True)
        elif ctype == CT_ALERT:
            self._readable_alerts(h, d, data, rlen, True, out)
        elif ctype == CT_APPLICATION_DATA and data:
            self._app_data(d, data, out)

    def _app_data(self, d: int, data: bytes, out: list[Event]) -> None:
        """Decrypted application data: the inner protocol's stream (HTTP upgrade, WebSocket, OCPP)."""
        c = self._chunk
        assert c is not None
        if not self._inner_done:
            self._inner_done = True
            self._inner = self._inner_factory(data, d) if self._inner_factory is not None else None
        inner = self._inner
        if inner is None:
            return
        lost = self._inner_lost[d]
        if lost:  # records were lost: the inner decoder must not join what follows to what came before
            self._inner_lost[d] = 0
            gap = StreamGap(self.flow_id, d, self._inner_pos[d], lost, c.at_frame, c.ts_ns, GapReason.NOT_CAPTURED)
            self._inner_pos[d] += lost
            self._run_inner(lambda: inner.gap(gap), out)
            if self._inner is None:
                return
        chunk = StreamChunk(self.flow_id, d, self._inner_pos[d], data, c.frame, c.at_frame, c.ts_ns)
        self._inner_pos[d] += len(data)
        self._run_inner(lambda: inner.feed(chunk), out)

    def _run_inner(self, call: Callable[[], list[Event]], out: list[Event]) -> None:
        inner = self._inner
        assert inner is not None
        try:
            out += call()
        except DecodeError as e:
            c = self._chunk
            assert c is not None
            self._inner = None
            where = f" at decrypted stream offset {e.offset}" if e.offset is not None else ""
            out.append(
                DecodeAnomaly(
                    ts_ns=c.ts_ns,
                    frame=c.at_frame,
                    flow_id=self.flow_id,
                    decoder=inner.name,
                    name=f"{inner.name}.parse_error",
                    detail=f"{e}{where}; the rest of this connection's decrypted data is not decoded",
                )
            )

    def _message(self, h: _Half, d: int, msg_type: int, body: bytes, out: list[Event]) -> None:
        c = self._chunk
        assert c is not None
        offset = h.roffset
        if msg_type == HS_CLIENT_HELLO:
            self._client_hello(h, d, body, offset, out)
        elif msg_type == HS_SERVER_HELLO:
            self._server_hello(h, d, body, offset, out)
        elif msg_type == HS_CERTIFICATE:
            certs = self._certificates(body, offset)
            server = self.session.server_direction
            sender = "server" if (d == server if server is not None else d == 1) else "client"
            event = TlsCertificate(
                ts_ns=c.ts_ns, frame=c.at_frame, flow_id=self.flow_id, direction=d, sender=sender, certificates=certs
            )
            self._emit(h, d, event, out)
        elif msg_type == HS_CERTIFICATE_REQUEST:
            self._emit(h, d, self._certificate_request(d, body, offset), out)
        else:
            event = TlsHandshake(
                ts_ns=c.ts_ns,
                frame=c.at_frame,
                flow_id=self.flow_id,
                direction=d,
                msg_type=msg_type,
                msg_name=handshake_name(msg_type),
                length=len(body),
            )
            self._emit(h, d, event, out)

    def _client_hello(self, h: _Half, d: int, body: bytes, offset: int, out: list[Event]) -> None:
        c = self._chunk
        assert c is not None
        f = _scan_client_hello(body)
        if f is None:  # not plainly well-formed: the bounds-checked reading says where, or reads it all the same
            f = _read_client_hello(body, offset)
        random, versions, alpn_raw = f.random, f.supported_versions, f.alpn
        ja3, ja3_hash, ja4 = client_fingerprints(
            f.legacy_version,
            versions,
            f.cipher_suites,
            f.extensions,
            f.groups,
            f.ec_point_formats,
            alpn_raw[0] if alpn_raw else None,
            f.signature_algorithms,
        )
        s = self.session
        s.client_random = random
        s.client_direction = d
        offers_tls13 = any(is_tls13(v) for v in versions)
        s.offered_tls13 = s.offered_tls13 or offers_tls13
        self._client_hello_seen = True
        rtime = None if offers_tls13 else _plausible_time(random)
        event = TlsClientHello(
            ts_ns=c.ts_ns,
            frame=c.at_frame,
            flow_id=self.flow_id,
            direction=d,
            record_version=h.hs_version,
            legacy_version=f.legacy_version,
            supported_versions=versions,
            sni=f.sni,
            alpn=tuple(_text(a) for a in alpn_raw),
            cipher_suites=f.cipher_suites,
            compression_methods=f.compression_methods,
            groups=f.groups,
            signature_algorithms=f.signature_algorithms,
            ec_point_formats=f.ec_point_formats,
            key_share_groups=f.key_share_groups,
            extensions=f.extensions,
            session_id_len=f.session_id_len,
            random=random.hex(),
            random_time=rtime,
            length=len(body),
            ja3=ja3,
            ja3_hash=ja3_hash,
            ja4=ja4,
        )
        self._emit(h, d, event, out)
        if rtime is not None:
            self._clock(h, d, "charger", "tls.client_random", rtime, out)

    def _server_hello(self, h: _Half, d: int, body: bytes, offset: int, out: list[Event]) -> None:
        c = self._chunk
        assert c is not None
        r = _Reader(body, "ServerHello", offset)
        legacy_version = r.u16()
        random = r.take(HELLO_RANDOM_LEN)
        draft = legacy_version >> 8 == 0x7F and legacy_version & 0xFF < DRAFT_WITH_LEGACY_FIELDS
        session_id_len = 0 if draft else r.vec8("ServerHello session_id").left
        suite = r.u16()
        compression = 0 if draft else r.u8()
        extensions: list[int] = []
        selected: int | None = None
        alpn: str | None = None
        key_share: int | None = None
        for etype, e in _extensions(r, "ServerHello"):
            extensions.append(etype)
            if etype == EXT_SUPPORTED_VERSIONS:
                selected = e.u16()
            elif etype == EXT_ALPN:
                protos = e.vec16("ALPN list")
                if protos.left:
                    alpn = _text(protos.vec8("ALPN protocol").take_all())
            elif etype == EXT_KEY_SHARE or etype == EXT_KEY_SHARE_DRAFT:
                key_share = e.u16()
        r.done()
        version = selected if selected is not None else legacy_version
        hrr = random == HRR_RANDOM
        s = self.session
        s.server_random = random
        s.server_direction = d
        s.server_extensions = server_extensions = tuple(extensions)
        s.cipher_suite = suite
        if hrr:
            s.hello_retry = True
        else:
            s.version = version
            self._server_hello_seen = True
        tls13 = is_tls13(version)
        tail = random[-8:]
        sentinel = tail[7] if tail[:7] == DOWNGRADE_PREFIX and tail[7] in (0, 1) else None
        rtime = None if hrr or tls13 else _plausible_time(random)
        ja3s, ja3s_hash = server_fingerprints(legacy_version, suite, server_extensions)
        event = TlsServerHello(
            ts_ns=c.ts_ns,
            frame=c.at_frame,
            flow_id=self.flow_id,
            direction=d,
            legacy_version=legacy_version,
            version=version,
            version_name=version_name(version),
            cipher_suite=suite,
            cipher_name=cipher_name(suite),
            compression_method=compression,
            alpn=alpn,
            extensions=server_extensions,
            key_share_group=key_share,
            hello_retry_request=hrr,
            downgrade_sentinel=sentinel,
            session_id_len=session_id_len,
            random=random.hex(),
            random_time=rtime,
            ja3s=ja3s,
            ja3s_hash=ja3s_hash,
        )
        self._emit(h, d, event, out)
        if rtime is not None:
            self._clock(h, d, "csms", "tls.server_random", rtime, out)
        if tls13 and not hrr:  # RFC 8446 §2: everything after the ServerHello is encrypted, both ways
            for dd, hh in enumerate(self._halves):
                if not hh.encrypted:
                    hh.encrypted = True
                    if hh is not h and hh.hs and not hh.hs_lost:
                        detail = f"{len(hh.hs)} bytes of an unfinished handshake message when TLS 1.3 began"
                        out.append(self._anomaly(c.at_frame, c.ts_ns, dd, "tls.incomplete_handshake", detail))
                        hh.hs.clear()

    def _clock(self, h: _Half, d: int, side: str, source: str, seconds: int, out: list[Event]) -> None:
        c = self._chunk
        assert c is not None
        raw = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        sample = ClockSample(
            ts_ns=c.ts_ns,
            frame=c.at_frame,
            flow_id=self.flow_id,
            direction=d,
            side=side,
            source=source,
            value_ns=seconds * NS,
            raw=raw,
        )
        self._emit(h, d, sample, out)

    def _certificates(self, body: bytes, offset: int) -> tuple[CertInfo, ...]:
        r = _Reader(body, "Certificate", offset)
        tls13 = self.session.tls13
        if tls13:
            r.vec8("Certificate request_context")
        chain = r.vec24("Certificate list")
        r.done()
        certs: list[CertInfo] = []
        while chain.left:
            der = chain.vec24("certificate").take_all()
            if tls13:
                chain.vec16("CertificateEntry extensions")
            if len(certs) < MAX_CERTIFICATES:
                certs.append(cert_info(der))
        return tuple(certs)

    def _certificate_request(self, d: int, body: bytes, offset: int) -> TlsCertificateRequest:
        c = self._chunk
        assert c is not None
        version = self.session.version
        types: tuple[int, ...] = ()
        sigalgs: tuple[int, ...] = ()
        raw_names: list[bytes] = []
        if is_tls13(version):  # RFC 8446 §4.3.2
            r = _Reader(body, "CertificateRequest", offset)
            r.vec8("CertificateRequest context")
            exts = r.vec16("CertificateRequest extensions")
            r.done()
            while exts.left:
                etype = exts.u16()
                e = exts.vec16(f"CertificateRequest extension {etype}")
                if etype == EXT_SIGNATURE_ALGORITHMS:
                    sigalgs = e.vec16("signature_algorithms").u16_list()
                elif etype == EXT_CERTIFICATE_AUTHORITIES:
                    names = e.vec16("certificate_authorities")
                    while names.left:
                        raw_names.append(names.vec16("DistinguishedName").take_all())
        else:  # RFC 5246 §7.4.4; signature algorithms only in TLS 1.2 (unknown version: try with, then without)
            layouts = (True,) if version == 0x0303 else (False,) if version is not None else (True, False)
            for k, with_sigalgs in enumerate(layouts):
                try:
                    r = _Reader(body, "CertificateRequest", offset)
                    types = r.vec8("certificate_types").u8_list()
                    sigalgs = r.vec16("signature_algorithms").u16_list() if with_sigalgs else ()
                    names = r.vec16("certificate_authorities")
                    r.done()
                    raw_names = []
                    while names.left:
                        raw_names.append(names.vec16("DistinguishedName").take_all())
                    break
                except DecodeError:
                    if k == len(layouts) - 1:
                        raise
        ca_names = []
        for raw in raw_names[:MAX_CA_NAMES]:
            try:
                ca_names.append(name_from_der(raw))
            except (DerError, IndexError):
                ca_names.append("#" + raw.hex())
        return TlsCertificateRequest(
            ts_ns=c.ts_ns,
            frame=c.at_frame,
            flow_id=self.flow_id,
            direction=d,
            certificate_types=types,
            signature_algorithms=sigalgs,
            ca_names=tuple(ca_names),
            ca_count=len(raw_names),
        )

    # --- helpers -------------------------------------------------------------------------------------------------

    def _anomaly(self, frame: int, ts_ns: int, d: int | None, name: str, detail: str) -> DecodeAnomaly:
        return DecodeAnomaly(
            ts_ns=ts_ns, frame=frame, flow_id=self.flow_id, direction=d, decoder="tls", name=name, detail=detail
        )

    def _summary(self, frame: int, ts_ns: int) -> TlsSummary:
        a, b = self._halves
        k = self._keys
        version = self.session.version
        if version is None:
            both: bool | None = None
        elif is_tls13(version):
            both = a.enc_flights >= 2 and b.enc_flights >= 2
        else:
            both = a.app_records > 0 and b.app_records > 0
        return TlsSummary(
            ts_ns=ts_ns,
            frame=frame,
            flow_id=self.flow_id,
            direction=None,
            records=(a.records, b.records),
            bytes=(a.bytes, b.bytes),
            encrypted_records=(a.enc_records, b.enc_records),
            app_data_records=(a.app_records, b.app_records),
            alerts=(a.alerts, b.alerts),
            first_encrypted_frame=(a.first_enc_frame, b.first_enc_frame),
            last_record_frame=(a.last_frame, b.last_frame),
            last_record_type=(a.last_type, b.last_type),
            last_record_length=(a.last_len, b.last_len),
            version=version,
            version_name=version_name(version),
            client_hello=self._client_hello_seen,
            server_hello=self._server_hello_seen,
            flights=tuple(
                TlsFlight(
                    direction=f[0], first_frame=f[1], last_frame=f[2], records=f[3], encrypted_records=f[4], bytes=f[5]
                )
                for f in self._flights
            ),
            flights_total=self._flights_total,
            app_data_both_ways=both,
            stopped=(a.stopped, b.stopped),
            decryption=k.status if k is not None else None,
            decryption_detail=k.detail if k is not None else "",
            decrypted_records=(k.decrypted[self._role(0)], k.decrypted[self._role(1)]) if k is not None else (0, 0),
        )
