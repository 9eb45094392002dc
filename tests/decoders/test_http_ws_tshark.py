"""Differential tests: the HTTP upgrade and WebSocket decoders against tshark (the oracle) on real captures.

Captures: every file in the shared ``websocket/`` and ``ocpp/`` folders (read in place) and the lab's
``captures/*.pcap``. A capture with no connection that starts like HTTP (the TLS, DNS and TCP-failure ones: their
HTTP, if any, is encrypted) is skipped without running tshark. tshark runs once per capture, told with
``-d tcp.port==P,http`` about every server port where ghostcap found HTTP by content (the lab uses ports tshark
does not know).

Compared, frame by frame: HTTP requests (method, URI, Host, Upgrade, offered subprotocols, extensions) and
responses (status, Upgrade, subprotocol, extensions, accept); WebSocket frame counts by opcode, masked and
unmasked, compressed (RSV1); close status codes with their frames; text messages with their frames (tshark
reassembles fragments and inflates permessage-deflate when the 101 accepted it; its text rendering is reproduced
by ``tshark_text``).

Documented differences (``DIFFERENCES``), each applied as an exact transformation of tshark's side:
- a bearer token offered as a subprotocol is redacted by ghostcap (``redact_subprotocol``).
"""

from __future__ import annotations

import functools
import subprocess
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from analyzer.decoders.http_upgrade import HttpUpgradeDecoder, redact_subprotocol, starts_like_http
from analyzer.events.base import Event
from analyzer.events.http import HttpRequest, HttpResponse
from analyzer.events.websocket import WsClose, WsSummary
from analyzer.redaction import redact_url
from tests import tshark_oracle
from tests.conftest import EXTERNAL, PROJECT_CAPTURES, capture_files, capture_id
from tests.decoders.drive import run_stream_decoder

CAPTURES = [
    p
    for p in capture_files()
    if p.parent in (EXTERNAL / "websocket", EXTERNAL / "ocpp") or (p.parent == PROJECT_CAPTURES and p.suffix == ".pcap")
]
AGG = "\x1f"  # aggregator: occurs in no field value here
FIELDS = (
    "frame.number",
    "http.request.method",
    "http.request.uri",
    "http.host",
    "http.upgrade",
    "http.sec_websocket_protocol",
    "http.sec_websocket_extensions",
    "http.response.code",
    "http.sec_websocket_accept",
    "websocket.opcode",
    "websocket.mask",
    "websocket.rsv",
    "websocket.payload.close.status_code",
    "websocket.payload.text",
    "sip.Request-Line",
    "sip.Status-Line",
)
OPCODES = {0: "continuation", 1: "text", 2: "binary", 8: "close", 9: "ping", 10: "pong"}
RSV1 = 0x4  # websocket.rsv shows the three RSV bits as a number: RSV1 = 4

# Per capture: the transformations of tshark's values that ghostcap's documented behaviour explains.
REDACT_TOKENS = "bearer token in Sec-WebSocket-Protocol: ghostcap keeps 'authorization.bearer.<redacted>'"
SIP_SUBDISSECTOR = (
    "tshark hands the text of subprotocol 'sip' to its SIP dissector and shows no websocket.payload.text: the "
    "first line of each text message is compared with sip.Request-Line / sip.Status-Line instead"
)
DIFFERENCES: dict[str, set[str]] = {
    "captures-external/websocket/zeek__wstunnel-http.pcap": {REDACT_TOKENS},
    "captures-external/websocket/zeek__wstunnel-https.pcap": {REDACT_TOKENS},
    "captures-external/websocket/lekensteyn__websocket-sip.pcapng": {SIP_SUBDISSECTOR},
}

_TSHARK_ESCAPES = str.maketrans({"\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"})


def tshark_text(text: str) -> str:
    """A string as tshark 4.0 prints it with ``-T fields``: cut at the first NUL, \\b \\t \\n \\f \\r escaped
    (other control characters and backslashes as they are); invalid UTF-8 was already replaced by U+FFFD."""
    return text.split("\0", 1)[0].translate(_TSHARK_ESCAPES)


@dataclass
class Facts:
    requests: list[tuple] = field(default_factory=list)
    responses: list[tuple] = field(default_factory=list)
    frames: Counter[str] = field(default_factory=Counter)
    closes: list[tuple[int, int]] = field(default_factory=list)
    texts: list[tuple[int, str]] = field(default_factory=list)


class _TextSink:
    """A message decoder that records whole text messages (the full text, not the event's excerpt)."""

    def __init__(self, texts: list[tuple[int, str]]) -> None:
        self.texts = texts

    def message(self, *, direction: int, data: bytes, text: bool, frame: int, ts_ns: int) -> list[Event]:
        if text:
            self.texts.append((frame, tshark_text(data.decode("utf-8", "replace"))))
        return []

    def close(self, frame: int, ts_ns: int) -> list[Event]:
        return []


def ours(path: Path) -> tuple[Facts, set[int]]:
    """ghostcap's facts, and the server ports of the connections that start like HTTP."""
    facts = Facts()
    ports: set[int] = set()

    def factory(flow_id: int, data: bytes, client_port: int, server_port: int) -> HttpUpgradeDecoder | None:
        if not starts_like_http(data):
            return None
        ports.add(server_port)
        return HttpUpgradeDecoder(flow_id, message_factory=lambda f, s: _TextSink(facts.texts))

    for e in run_stream_decoder(path, factory):
        if isinstance(e, HttpRequest):
            facts.requests.append(
                (e.frame, e.method, e.target, e.host, e.upgrade, ", ".join(e.ws_protocols) or None, e.ws_extensions)
            )
        elif isinstance(e, HttpResponse):
            facts.responses.append((e.frame, e.status, e.upgrade, e.ws_protocol, e.ws_extensions, e.ws_accept))
        elif isinstance(e, WsClose) and e.code is not None:
            facts.closes.append((e.frame, e.code))
        elif isinstance(e, WsSummary):
            for name in ("continuation", "text", "binary", "close", "ping", "pong", "reserved"):
                facts.frames[name] += getattr(e, name)
            facts.frames["masked"] += e.masked
            facts.frames["unmasked"] += e.unmasked
            facts.frames["compressed"] += e.compressed
    facts.texts.sort()
    return facts, ports


def _values(cell: str) -> list[str]:
    return cell.split(AGG) if cell else []


def http_frames(path: Path) -> list[str]:
    """Frames tshark dissects as HTTP or WebSocket over TCP with its default port registrations."""
    args = [
        str(tshark_oracle.TSHARK),
        "-n",
        "-r",
        str(path),
        "-Y",
        "tcp && (http || websocket)",
        "-T",
        "fields",
        "-e",
        "frame.number",
    ]
    out = subprocess.run(args, capture_output=True, text=True, timeout=tshark_oracle.TIMEOUT_S, check=True).stdout
    return out.split()


def theirs(path: Path, ports: set[int], differences: set[str]) -> Facts:
    """tshark's facts (one tshark run)."""
    args = [str(tshark_oracle.TSHARK), "-n", "-r", str(path)]
    for port in sorted(ports):
        args += ["-d", f"tcp.port=={port},http"]
    # HTTP over TCP only: ghostcap's HTTP decoder is a stream decoder (SSDP's HTTP-over-UDP is out of its scope)
    args += ["-Y", "((http.request or http.response) and tcp) or websocket", "-T", "fields", "-E", "occurrence=a"]
    args += ["-E", f"aggregator={AGG}"]
    for f in FIELDS:
        args += ["-e", f]
    out = subprocess.run(args, capture_output=True, text=True, timeout=tshark_oracle.TIMEOUT_S, check=True).stdout
    facts = Facts()

    def one(cell: str) -> str | None:
        vs = _values(cell)
        return ", ".join(vs) if vs else None

    for line in out.splitlines():
        row = dict(zip(FIELDS, line.split("\t"), strict=True))
        frame = int(row["frame.number"])
        protocols = one(row["http.sec_websocket_protocol"])
        if protocols is not None and REDACT_TOKENS in differences:
            protocols = ", ".join(redact_subprotocol(p.strip()) for p in protocols.split(","))
        extensions = one(row["http.sec_websocket_extensions"])
        if row["http.request.method"]:
            facts.requests.append(
                (
                    frame,
                    row["http.request.method"],
                    redact_url(row["http.request.uri"]),  # query values are hidden (analyzer.redaction)
                    one(row["http.host"]),
                    one(row["http.upgrade"]),
                    protocols,
                    extensions,
                )
            )
        if row["http.response.code"]:
            facts.responses.append(
                (
                    frame,
                    int(row["http.response.code"]),
                    one(row["http.upgrade"]),
                    protocols,
                    extensions,
                    one(row["http.sec_websocket_accept"]),
                )
            )
        for op in _values(row["websocket.opcode"]):
            facts.frames[OPCODES.get(int(op), "reserved")] += 1
        for mask in _values(row["websocket.mask"]):
            facts.frames["masked" if mask in ("1", "True") else "unmasked"] += 1
        for rsv in _values(row["websocket.rsv"]):
            facts.frames["compressed"] += bool(int(rsv, 0) & RSV1)
        for code in _values(row["websocket.payload.close.status_code"]):
            facts.closes.append((frame, int(code)))
        for text in _values(row["websocket.payload.text"]):
            facts.texts.append((frame, text))
        if SIP_SUBDISSECTOR in differences:
            for line in _values(row["sip.Request-Line"]) + _values(row["sip.Status-Line"]):
                facts.texts.append((frame, line))
    facts.texts.sort()
    return facts


def test_the_captures_are_there() -> None:
    assert len([p for p in CAPTURES if p.is_relative_to(EXTERNAL)]) == 24
    assert len([p for p in CAPTURES if p.is_relative_to(PROJECT_CAPTURES)]) >= 30


@functools.cache
def _runs() -> dict[Path, tuple[Facts, Future[Facts] | None]]:
    """Both sides for every capture; the tshark runs (one per capture) go in parallel to keep the file fast."""
    if tshark_oracle.TSHARK is None:
        raise RuntimeError("tshark is not installed: the differential tests need it (apt-get install tshark)")
    pool = ThreadPoolExecutor(max_workers=4)
    runs: dict[Path, tuple[Facts, Future[Facts] | Future[list[str]]]] = {}
    for path in CAPTURES:
        mine, ports = ours(path)
        differences = DIFFERENCES.get(capture_id(path), set())
        runs[path] = (mine, pool.submit(theirs, path, ports, differences) if ports else pool.submit(http_frames, path))
    pool.shutdown(wait=False)
    return runs


@pytest.mark.parametrize("path", CAPTURES, ids=capture_id)
def test_http_and_websocket_agree_with_tshark(path: Path) -> None:
    mine, pending = _runs()[path]
    if isinstance(oracle := pending.result(), list):
        # no connection starts like HTTP here (TLS, DNS or TCP only): tshark's own HTTP and WebSocket dissectors,
        # on their default ports, find none either
        assert (mine.requests, mine.responses, +mine.frames) == ([], [], Counter())
        assert oracle == []
        return
    differences = DIFFERENCES.get(capture_id(path), set())
    assert mine.requests == oracle.requests
    assert mine.responses == oracle.responses
    assert +mine.frames == +oracle.frames
    assert mine.closes == oracle.closes
    if SIP_SUBDISSECTOR in differences:
        assert [(f, t.split("\\r\\n", 1)[0]) for f, t in mine.texts] == oracle.texts
    else:
        assert mine.texts == oracle.texts
