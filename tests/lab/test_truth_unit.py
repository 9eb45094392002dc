"""Fast tests of the ground-truth checker: the pcap reader on synthetic frames, and the row matching."""

from __future__ import annotations

import struct
from pathlib import Path

from tests.lab import pcapread as pr
from tests.lab import truth


def _frame(src: str, sport: int, dst: str, dport: int, seq: int, flags: int, payload: bytes = b"") -> bytes:
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, flags, 65535, 0, 0) + payload
    ip = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(tcp),
        0,
        0,
        64,
        6,
        0,
        bytes(map(int, src.split("."))),
        bytes(map(int, dst.split("."))),
    )
    return b"\0" * 12 + b"\x08\x00" + ip + tcp


def _pcap(path: Path, frames: list[bytes]) -> Path:
    data = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)
    for i, f in enumerate(frames):
        data += struct.pack("<IIII", 1000 + i, 0, len(f), len(f)) + f
    path.write_bytes(data)
    return path


def test_http_401_and_ws_frames_are_located(tmp_path: Path) -> None:
    c, s = ("127.0.0.1", 40000), ("127.0.0.30", 9530)
    req = b"GET /ocpp/CP-1 HTTP/1.1\r\nHost: x\r\n\r\n"
    resp = b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 13\r\n\r\n"
    body = b"Unauthorized\n"
    frames = [
        _frame(*c, *s, 100, pr.SYN),
        _frame(*s, *c, 500, pr.SYN | pr.ACK),
        _frame(*c, *s, 101, pr.ACK, req),
        _frame(*s, *c, 501, pr.ACK, resp),  # headers ...
        _frame(*s, *c, 501 + len(resp), pr.ACK, body),  # ... body completes the response in frame 5
    ]
    _, packets = pr.read_pcap(_pcap(tmp_path / "x.pcap", frames))
    (conn,) = pr.connections(packets, 9530)
    msg, _ = pr.http_message(conn.down)
    assert msg is not None
    assert msg.info["status"] == 401
    assert msg.frame == 5


def test_masked_ws_close_frame() -> None:
    half = pr.Half(base=0)
    mask = b"\x01\x02\x03\x04"
    body = struct.pack("!H", 1008) + b"bye"
    frame = bytes([0x88, 0x80 | len(body)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(body))
    half.data += frame
    half.ends.append((len(frame), 7))
    (pdu,) = list(pr.ws_frames(half, 0))
    assert pdu.frame == 7
    assert pdu.info["close_code"] == 1008
    assert pdu.info["close_reason"] == "bye"


def test_row_matching() -> None:
    assert truth._row_match(["12", "2", "42"], ["12", "2", "42"])
    assert not truth._row_match(["12", "2", "42"], ["12", "2", "48"])
    assert truth._row_match([""], [])
