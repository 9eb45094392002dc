"""Events of the passive TLS decoder (``analyzer.decoders.tls``): what the record and handshake layers show
without keys.

Conventions shared by every event here: ``frame``/``ts_ns`` are those of the packet that completed the message
(``StreamChunk.at_frame``/``ts_ns``); ``direction`` is the TCP direction that carried it (0 = client→server as the
flow layer decided). Code points are kept as sent, GREASE values (RFC 8701) included, except where a field says
otherwise; the fingerprints (JA3, JA4) drop GREASE as their definitions require. Binary values are hex strings.
"""

from __future__ import annotations

from typing import ClassVar

from analyzer.events.base import Event, event

BOTH_WAYS = {True: "yes", False: "no", None: "not known (no version negotiated)"}


def _hex4(value: int) -> str:
    return f"0x{value:04x}"


@event
class TlsEvent(Event):
    """Common base of the TLS events (never instantiated itself)."""

    kind: ClassVar[str] = "tls.event"
    layer: ClassVar[str] = "tls"


@event
class TlsClientHello(TlsEvent):
    """A plaintext ClientHello (RFC 8446 §4.1.2, RFC 5246 §7.4.1.2).

    Fields: ``record_version`` (version in the header of the record that carried its first byte);
    ``legacy_version`` (``client_version``); ``supported_versions`` (extension 43, empty when absent);
    ``sni`` (first host_name of extension 0, or ``None``); ``alpn`` (protocol names of extension 16, in order);
    ``cipher_suites``; ``compression_methods``; ``groups`` (extension 10); ``signature_algorithms`` (extension 13);
    ``ec_point_formats`` (extension 11); ``key_share_groups`` (groups of the key shares offered, extension 51 or
    the drafts' 40); ``extensions`` (extension type ids in wire order); ``session_id_len``; ``random``
    (32 bytes, hex: the key under which a key log files this connection's secrets); ``random_time`` (first 4
    bytes of the random as unix seconds when they read as a time before 2100 and the hello does not offer TLS 1.3,
    else ``None``: RFC 5246 stacks may put ``gmt_unix_time`` there, but RFC 8446 and most modern stacks send 32
    random bytes, which read as such a time with probability ~0.96, so it is a candidate, not a clock reading; the
    decoder emits it as a ``ClockSample`` and the clock analysis judges its credibility); ``length`` (handshake
    body length); ``ja3``/``ja3_hash`` (Salesforce JA3 string and its MD5);
    ``ja4`` (FoxIO JA4, ``t`` = TLS over TCP).
    """

    kind: ClassVar[str] = "tls.client_hello"
    record_version: int
    legacy_version: int
    supported_versions: tuple[int, ...] = ()
    sni: str | None = None
    alpn: tuple[str, ...] = ()
    cipher_suites: tuple[int, ...] = ()
    compression_methods: tuple[int, ...] = ()
    groups: tuple[int, ...] = ()
    signature_algorithms: tuple[int, ...] = ()
    ec_point_formats: tuple[int, ...] = ()
    key_share_groups: tuple[int, ...] = ()
    extensions: tuple[int, ...] = ()
    session_id_len: int = 0
    random: str = ""
    random_time: int | None = None
    length: int = 0
    ja3: str = ""
    ja3_hash: str = ""
    ja4: str = ""

    def summary(self) -> str:
        versions = ",".join(_hex4(v) for v in self.supported_versions) or _hex4(self.legacy_version)
        alpn = ",".join(self.alpn) or "-"
        return (
            f"ClientHello SNI={self.sni or '-'} versions={versions} ALPN={alpn} "
            f"{len(self.cipher_suites)} suites JA4={self.ja4}"
        )


@event
class TlsServerHello(TlsEvent):
    """A ServerHello (RFC 8446 §4.1.3) or HelloRetryRequest (a ServerHello whose random is the RFC 8446 §4.1.3
    special value SHA-256("HelloRetryRequest")).

    Fields: ``legacy_version`` (``server_version``); ``version`` (the selected version: extension 43 when present,
    else ``legacy_version``; TLS 1.3 drafts put 0x7FXX in either); ``version_name`` (``TLSv1.3``,
    ``TLSv1.3-draft18``, ...); ``cipher_suite`` and ``cipher_name`` (IANA name or ``None``); ``compression_method``;
    ``alpn`` (the selected protocol or ``None``); ``extensions`` (type ids in wire order); ``key_share_group``;
    ``hello_retry_request``; ``downgrade_sentinel`` (RFC 8446 §4.1.3: last 8 bytes of the random are
    ``DOWNGRD`` + 0x01 (server supports TLS 1.3, negotiated 1.2) or + 0x00 (negotiated ≤ 1.1); else ``None``);
    ``session_id_len``; ``random`` (hex); ``random_time`` (as for the ClientHello; ``None`` when it selects TLS 1.3
    and for a HelloRetryRequest, whose random is fixed); ``ja3s``/``ja3s_hash``.
    """

    kind: ClassVar[str] = "tls.server_hello"
    legacy_version: int
    version: int
    version_name: str | None = None
    cipher_suite: int
    cipher_name: str | None = None
    compression_method: int = 0
    alpn: str | None = None
    extensions: tuple[int, ...] = ()
    key_share_group: int | None = None
    hello_retry_request: bool = False
    downgrade_sentinel: int | None = None
    session_id_len: int = 0
    random: str = ""
    random_time: int | None = None
    ja3s: str = ""
    ja3s_hash: str = ""

    def summary(self) -> str:
        what = "HelloRetryRequest" if self.hello_retry_request else "ServerHello"
        cipher = self.cipher_name or _hex4(self.cipher_suite)
        return f"{what} {self.version_name or _hex4(self.version)} {cipher} ALPN={self.alpn or '-'}"


@event
class CertInfo:
    """Facts of one X.509 certificate as sent (``analyzer.decoders.x509.cert_info``).

    ``subject``/``issuer`` are RFC 4514 strings; ``san`` the subjectAltName dNSName and iPAddress entries in
    certificate order (addresses as text); ``not_before_ns``/``not_after_ns`` ns since the epoch (negative before
    1970); ``serial`` hex; ``sha256`` of the DER; ``der_len``; ``self_signed`` = self-issued (issuer name equals
    subject name, RFC 5280 §3.3); ``is_ca`` (basicConstraints cA, ``None`` without the extension);
    ``public_key`` (``RSA-2048``, ``EC-secp256r1``, ``Ed25519``...); ``signature_algorithm`` (dotted OID name as
    ``cryptography`` gives it). ``parse_error`` is ``None``, or why ``cryptography`` refused the DER: the other
    fields then come from a lenient DER reader and may be empty/``None``.
    """

    subject: str | None = None
    issuer: str | None = None
    san: tuple[str, ...] = ()
    not_before_ns: int | None = None
    not_after_ns: int | None = None
    serial: str | None = None
    sha256: str = ""
    der_len: int = 0
    self_signed: bool | None = None
    is_ca: bool | None = None
    public_key: str | None = None
    signature_algorithm: str | None = None
    parse_error: str | None = None


@event
class TlsCertificate(TlsEvent):
    """A plaintext Certificate message (TLS ≤ 1.2 from either side; in TLS 1.3 it is encrypted and not seen).

    ``certificates`` leaf first as sent; an empty tuple is a client saying it has no certificate (RFC 5246
    §7.4.6). ``sender`` is ``server`` or ``client``: the side that sent ServerHello, or the other one.
    """

    kind: ClassVar[str] = "tls.certificate"
    sender: str = "server"
    certificates: tuple[CertInfo, ...] = ()

    def summary(self) -> str:
        if not self.certificates:
            return f"{self.sender} Certificate: empty"
        leaf = self.certificates[0]
        names = ",".join(leaf.san[:3]) or leaf.subject or "?"
        return f"{self.sender} Certificate: {len(self.certificates)} cert(s), leaf {names}"


@event
class TlsCertificateRequest(TlsEvent):
    """The server asks for a client certificate (RFC 5246 §7.4.4; TLS 1.3 encrypts it, so it shows only ≤ 1.2).

    Fields: ``certificate_types`` (ClientCertificateType values; empty in TLS 1.3); ``signature_algorithms``
    (empty before TLS 1.2); ``ca_names`` (acceptable CA distinguished names, RFC 4514 strings, at most
    ``MAX_CA_NAMES`` of them) and ``ca_count`` (how many were sent).
    """

    kind: ClassVar[str] = "tls.certificate_request"
    certificate_types: tuple[int, ...] = ()
    signature_algorithms: tuple[int, ...] = ()
    ca_names: tuple[str, ...] = ()
    ca_count: int = 0

    def summary(self) -> str:
        return f"CertificateRequest ({self.ca_count} acceptable CA names)"


@event
class TlsAlert(TlsEvent):
    """An alert record (RFC 8446 §6).

    ``encrypted`` is decided by the record alone: a plaintext alert record is exactly 2 bytes with level 1 or 2;
    anything else after encryption started (an alert type record after ChangeCipherSpec in TLS ≤ 1.2) is an
    encrypted alert whose ``level``/``description`` are ``None``. So a plaintext alert sent after a TLS 1.3
    ServerHello (OpenSSL 3 clients do this when they reject the server certificate) is reported in clear.
    TLS 1.3 alerts under encryption travel as type-23 records and appear as ``TlsEncrypted`` instead, unless the
    key log decrypts them: then ``encrypted`` and ``decrypted`` are both true and the alert is read (TLS 1.2 and
    1.3 alike). ``record_frame`` is the frame that carried the record's last byte; ``length`` the record length.
    """

    kind: ClassVar[str] = "tls.alert"
    level: int | None = None
    description: int | None = None
    description_name: str | None = None
    encrypted: bool = False
    decrypted: bool = False
    record_frame: int = 0
    length: int = 2

    def summary(self) -> str:
        if self.encrypted and not self.decrypted:
            return f"encrypted alert ({self.length} bytes)"
        if self.decrypted:
            return f"{self._level()} alert {self._description()} (decrypted)"
        return f"{self._level()} alert {self._description()}"

    def _level(self) -> str:
        return {1: "warning", 2: "fatal"}.get(self.level or 0, f"level-{self.level}" if self.level else "level-?")

    def _description(self) -> str:
        return self.description_name or (str(self.description) if self.description is not None else "?")


@event
class TlsChangeCipherSpec(TlsEvent):
    """A ChangeCipherSpec record (RFC 5246 §7.1; in TLS 1.3 only the middlebox-compatibility dummy, RFC 8446
    §D.4). ``record_frame`` as for ``TlsAlert``."""

    kind: ClassVar[str] = "tls.change_cipher_spec"
    record_frame: int = 0

    def summary(self) -> str:
        return "ChangeCipherSpec"


@event
class TlsHandshake(TlsEvent):
    """Any other plaintext handshake message (ServerHelloDone, ServerKeyExchange, ClientKeyExchange,
    NewSessionTicket, CertificateStatus, ...): ``msg_type``, ``msg_name`` (RFC name or ``unknown_<n>``) and the
    body ``length``."""

    kind: ClassVar[str] = "tls.handshake"
    msg_type: int
    msg_name: str
    length: int

    def summary(self) -> str:
        return f"{self.msg_name} ({self.length} bytes)"


@event
class TlsEncrypted(TlsEvent):
    """An encrypted record: ``content_type`` as sent (the outer, opaque type: 23 for every TLS 1.3 ciphertext;
    22 for a TLS 1.2 Finished), ``length``, ``index`` (1-based count of records this direction sent, all types),
    ``record_frame``. Only the first ``MAX_ENCRYPTED_EVENTS`` encrypted records of a direction are reported one
    by one; ``TlsSummary`` counts them all. In TLS 1.3 an encrypted alert is a type-23 record of 19 bytes
    (2 + inner type + 16-byte AEAD tag; 11 with an 8-byte tag). ``inner_type``: the real content type when the
    key log decrypted the record, else ``None``."""

    kind: ClassVar[str] = "tls.encrypted"
    content_type: int
    length: int
    index: int
    record_frame: int = 0
    inner_type: int | None = None

    def summary(self) -> str:
        inner = f", decrypted: {_CONTENT_TYPES.get(self.inner_type, self.inner_type)}" if self.inner_type else ""
        return f"encrypted record #{self.index} type {self.content_type} ({self.length} bytes{inner})"


_CONTENT_TYPES = {20: "change_cipher_spec", 21: "alert", 22: "handshake", 23: "application_data", 24: "heartbeat"}


@event
class TlsFlight:
    """A run of records one direction sent before the other direction sent any: ``direction``,
    ``first_frame``/``last_frame`` (frames that carried the first and last record), ``records``,
    ``encrypted_records``, ``bytes`` (record headers included)."""

    direction: int
    first_frame: int
    last_frame: int
    records: int
    encrypted_records: int
    bytes: int


@event
class TlsSummary(TlsEvent):
    """What the record layer showed over the whole connection, emitted once by ``close()``.

    Per direction (index 0 = client→server, 1 = server→client): ``records``, ``bytes`` (record headers
    included), ``encrypted_records``, ``app_data_records`` (outer type 23), ``alerts``, ``first_encrypted_frame``,
    ``last_record_frame``, ``last_record_type``, ``last_record_length`` (``None`` where nothing was sent).
    ``version`` / ``version_name``: the version the ServerHello selected (``None`` without one);
    ``client_hello``/``server_hello``: whether each was seen; ``flights`` (first ``MAX_FLIGHTS`` of them) and
    ``flights_total``; ``app_data_both_ways``: TLS ≤ 1.2: both directions sent a type-23 record (application
    data by definition); TLS 1.3 (where the handshake's end is type 23 too): both directions sent encrypted
    records in at least two flights, i.e. each side sent encrypted records again after hearing the other's
    encrypted flight; ``None`` when no version was negotiated. ``stopped`` per direction: decoding of that
    direction stopped early (see the anomaly).
    """

    kind: ClassVar[str] = "tls.summary"
    records: tuple[int, int] = (0, 0)
    bytes: tuple[int, int] = (0, 0)
    encrypted_records: tuple[int, int] = (0, 0)
    app_data_records: tuple[int, int] = (0, 0)
    alerts: tuple[int, int] = (0, 0)
    first_encrypted_frame: tuple[int | None, int | None] = (None, None)
    last_record_frame: tuple[int | None, int | None] = (None, None)
    last_record_type: tuple[int | None, int | None] = (None, None)
    last_record_length: tuple[int | None, int | None] = (None, None)
    version: int | None = None
    version_name: str | None = None
    client_hello: bool = False
    server_hello: bool = False
    flights: tuple[TlsFlight, ...] = ()
    flights_total: int = 0
    app_data_both_ways: bool | None = None
    stopped: tuple[bool, bool] = (False, False)
    decryption: str | None = None
    decryption_detail: str = ""
    decrypted_records: tuple[int, int] = (0, 0)

    def summary(self) -> str:
        keys = f", {self.decryption}" if self.decryption else ""
        return (
            f"TLS {self.version_name or '?'}: client {self.records[0]} records/{self.bytes[0]} B, "
            f"server {self.records[1]} records/{self.bytes[1]} B, "
            f"app data both ways: {BOTH_WAYS[self.app_data_both_ways]}{keys}"
        )
