"""Differential test: the passive TLS decoder against tshark 4.0.17 on every TLS capture we have.

Per capture: our decoder runs first (it finds TLS by content, on any port), then tshark runs once with
``-d tcp.port==N,tls`` for every port where we found TLS. Compared per frame (tshark reports a message in the frame
that completed it; so do we: hellos and certificates at the event ``frame``, alerts at ``record_frame``):

- ClientHello: SNI, ALPN list, supported_versions, JA3 string and MD5;
- ServerHello: legacy version, selected version (supported_versions), cipher suite, ALPN, JA3S string and MD5;
- alerts: sender port, level and description of plaintext alerts, number of encrypted alerts (an alert record
  without a description in tshark);
- certificates: the dNSName subjectAltNames of every certificate in the frame, in order.

Known differences are listed in ``EXPECTED_DIFFERENCES`` with the reason; nothing else is tolerated.
Frames tshark dissects as QUIC (UDP) are not compared: this decoder reads TCP only.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from analyzer.decoders.tls import TlsDecoder, starts_like_tls
from analyzer.events.tls import TlsAlert, TlsCertificate, TlsClientHello, TlsServerHello
from tests import tshark_oracle
from tests.conftest import EXTERNAL, PROJECT_CAPTURES, capture_files, capture_id
from tests.decoders.drive import run_stream_decoder

TLS_DIRS = ("tls-keylog", "tls-failures", "tls-misc", "derived")
DEFAULT_TLS_PORT = 443
SEP = "\x1f"  # field aggregator: never in a JA3 string, an SNI or an ALPN value

FIELDS = (
    "frame.number",
    "tcp.stream",
    "tcp.srcport",
    "tls.handshake.type",
    "tls.handshake.extensions_server_name",
    "tls.handshake.extensions_alpn_str",
    "tls.handshake.extensions.supported_version",
    "tls.handshake.ja3",
    "tls.handshake.ja3_full",
    "tls.handshake.ja3s",
    "tls.handshake.ja3s_full",
    "tls.handshake.version",
    "tls.handshake.ciphersuite",
    "tls.record.content_type",
    "tls.alert_message.level",
    "tls.alert_message.desc",
    "x509ce.dNSName",
)

MISSING = "-"
# Known differences, per capture id: (frame, fact) -> (ours, tshark's), values as ``_digest`` renders them.
EXPECTED_DIFFERENCES: dict[str, dict[tuple[int, str], tuple[str, str]]] = {
    # tshark 4.0.17 does not reassemble a handshake message spread over 24 records (a 339 KB Certificate with
    # 10000 subjectAltNames): it labels the pieces "Encrypted Handshake Message". We reassemble it (frame 410
    # completes it) and read all 10000 names.
    "captures-external/tls-misc/zeek__tls-fragmented-handshake.pcap.gz": {
        (410, "san"): (
            "10000 items: '1.alt.helloIamADomain.example' .. '10000.alt.helloIamADomain.example'",
            MISSING,
        ),
    },
    # A pcapng with a Decryption Secrets Block: tshark decrypts with the embedded key log and reads the
    # close_notify; this decoder does not decrypt, so the alert stays encrypted.
    "captures-external/derived/illustrated-tls12__capture.dsb.pcapng": {
        (17, "alerts"): ("[(50159, None)]", "[(50159, (1, 0))]"),
    },
    # The same for TLS 1.3: with the DSB keys tshark reads the encrypted Certificate (frame 6) and the encrypted
    # close_notify (frame 31, a type-23 record: no alert at all for us).
    "captures-external/derived/snet__TLS1_3_TLS_AES_128_GCM_SHA256.dsb.pcapng": {
        (6, "san"): (MISSING, "['localhost']"),
        (31, "alerts"): (MISSING, "[(54420, (1, 0))]"),
    },
}

# Extra tshark options per capture id, each with its reason.
TSHARK_OPTIONS: dict[str, list[str]] = {
    # The real ServerHello (frame 11) arrives out of order after a lost segment. Our flow layer reassembles
    # out-of-order segments; tshark does so only when asked (tcp.reassemble_out_of_order defaults to FALSE). It
    # is not set for every capture because with it tshark never resynchronises after the snaplen cuts in
    # derived/illustrated-tls12__capture.snaplen200.pcap.
    "captures-external/tls-failures/zeek__hrr.pcap": ["-o", "tcp.reassemble_out_of_order:TRUE"],
}


def _digest(value: object) -> str:
    """Short, stable text of a fact for EXPECTED_DIFFERENCES (long lists by length and ends)."""
    if value is None:
        return MISSING
    if isinstance(value, list) and len(value) > 5:
        return f"{len(value)} items: {value[0]!r} .. {value[-1]!r}"
    return repr(value)


def _is_tls_capture(p: Path) -> bool:
    """External captures of the TLS folders; the lab's TLS scenarios (named tls* or *wss*)."""
    if p.is_relative_to(EXTERNAL):
        return p.relative_to(EXTERNAL).parts[0] in TLS_DIRS
    return p.is_relative_to(PROJECT_CAPTURES) and ("tls" in p.name or "wss" in p.name)


def _tls_captures() -> list[Path]:
    return [p for p in capture_files() if _is_tls_capture(p)]


CAPTURES = _tls_captures()


def _hex4(v: int) -> str:
    return f"0x{v:04x}"


def _dns_only(names: tuple[str, ...]) -> list[str]:
    out = []
    for n in names:
        try:
            ipaddress.ip_address(n)
        except ValueError:
            out.append(n)
    return out


def ours(path: Path) -> tuple[dict[int, dict[str, object]], set[int]]:
    """Facts per frame from our decoder, and the ports of the connections where it found TLS."""
    ports: dict[int, tuple[int, int]] = {}

    def factory(fid: int, data: bytes, cport: int, sport: int) -> TlsDecoder | None:
        ports[fid] = (cport, sport)
        return TlsDecoder(fid) if starts_like_tls(data) else None

    facts: dict[int, dict[str, object]] = {}
    tls_ports: set[int] = set()
    for e in run_stream_decoder(path, factory):
        if e.flow_id is None or e.direction is None or not e.kind.startswith("tls."):
            continue
        tls_ports.add(ports[e.flow_id][1])
        sender = ports[e.flow_id][e.direction]
        if isinstance(e, TlsClientHello):
            f = facts.setdefault(e.frame, {})
            f["client_hello"] = (
                e.sni or "",
                ",".join(e.alpn),
                ",".join(_hex4(v) for v in e.supported_versions),
                e.ja3,
                e.ja3_hash,
            )
        elif isinstance(e, TlsServerHello):
            f = facts.setdefault(e.frame, {})
            selected = _hex4(e.version) if 43 in e.extensions else ""
            f["server_hello"] = (
                _hex4(e.legacy_version),
                selected,
                _hex4(e.cipher_suite),
                e.alpn or "",
                e.ja3s,
                e.ja3s_hash,
            )
        elif isinstance(e, TlsAlert):
            f = facts.setdefault(e.record_frame, {})
            alerts = f.setdefault("alerts", [])
            assert isinstance(alerts, list)
            alerts.append((sender, None if e.encrypted else (e.level, e.description)))
        elif isinstance(e, TlsCertificate):
            f = facts.setdefault(e.frame, {})
            names = f.setdefault("san", [])
            assert isinstance(names, list)
            for cert in e.certificates:
                names += _dns_only(cert.san)
    for f in facts.values():
        if "alerts" in f:
            f["alerts"] = sorted(f["alerts"], key=str)  # type: ignore[arg-type]
        if f.get("san") == []:
            del f["san"]
    return facts, tls_ports


def theirs(path: Path, tls_ports: set[int]) -> dict[int, dict[str, object]]:
    """The same facts per frame from one tshark run."""
    args = ["-r", str(path), *TSHARK_OPTIONS.get(capture_id(path), [])]
    for port in sorted(tls_ports - {DEFAULT_TLS_PORT}):
        args += ["-d", f"tcp.port=={port},tls"]
    args += ["-Y", "tls", "-T", "fields", "-E", "separator=/t", "-E", "occurrence=a", "-E", f"aggregator={SEP}"]
    for name in FIELDS:
        args += ["-e", name]
    facts: dict[int, dict[str, object]] = {}
    for line in tshark_oracle._run(args).splitlines():
        cols = line.split("\t")
        if len(cols) != len(FIELDS):
            continue
        row = dict(zip(FIELDS, cols, strict=True))
        if not row["tcp.stream"]:
            continue  # QUIC
        frame = int(row["frame.number"])

        def values(name: str, row: dict[str, str] = row) -> list[str]:
            return [v for v in row[name].split(SEP) if v]

        f: dict[str, object] = {}
        types = values("tls.handshake.type")
        if "1" in types:
            f["client_hello"] = (
                row["tls.handshake.extensions_server_name"],
                ",".join(values("tls.handshake.extensions_alpn_str")),
                ",".join(values("tls.handshake.extensions.supported_version")),
                row["tls.handshake.ja3_full"],
                row["tls.handshake.ja3"],
            )
        if "2" in types:
            f["server_hello"] = (
                row["tls.handshake.version"],
                row["tls.handshake.extensions.supported_version"],
                row["tls.handshake.ciphersuite"],
                row["tls.handshake.extensions_alpn_str"],
                row["tls.handshake.ja3s_full"],
                row["tls.handshake.ja3s"],
            )
        n_alert_records = values("tls.record.content_type").count("21")
        if n_alert_records:
            sender = int(row["tcp.srcport"])
            plain = list(zip(values("tls.alert_message.level"), values("tls.alert_message.desc"), strict=False))
            alerts: list[tuple[int, tuple[int, int] | None]] = [(sender, (int(a), int(b))) for a, b in plain]
            alerts += [(sender, None)] * (n_alert_records - len(plain))
            f["alerts"] = sorted(alerts, key=str)
        names = values("x509ce.dNSName")
        if names:
            f["san"] = names
        if f:
            facts[frame] = f
    return facts


def test_there_are_tls_captures() -> None:
    assert len(CAPTURES) >= 55


@pytest.mark.parametrize("path", CAPTURES, ids=capture_id)
def test_tls_facts_match_tshark(path: Path) -> None:
    mine, tls_ports = ours(path)
    reference = theirs(path, tls_ports)
    expected = EXPECTED_DIFFERENCES.get(capture_id(path), {})
    problems = []
    seen = set()
    for frame in sorted(set(mine) | set(reference)):
        got, want = mine.get(frame, {}), reference.get(frame, {})
        for fact in sorted(set(got) | set(want)):
            pair = (_digest(got.get(fact)), _digest(want.get(fact)))
            if (frame, fact) in expected:
                seen.add((frame, fact))
                if pair != expected[(frame, fact)]:
                    problems.append(f"frame {frame} {fact}: documented difference changed: {pair}")
            elif pair[0] != pair[1]:
                problems.append(f"frame {frame} {fact}:\n  ours   {pair[0]}\n  tshark {pair[1]}")
    problems += [f"frame {f} {fact}: documented difference not seen" for f, fact in set(expected) - seen]
    assert not problems, "\n".join(problems)
