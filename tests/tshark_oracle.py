"""tshark as the test oracle: frames, timestamps and followed TCP streams of a capture.

Only the tests import this. Every function runs one tshark process with a timeout.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

TSHARK = shutil.which("tshark")
TIMEOUT_S = 120


def _run(args: list[str]) -> str:
    if TSHARK is None:
        raise RuntimeError("tshark is not installed: the differential tests need it (apt-get install tshark)")
    proc = subprocess.run([TSHARK, "-n", *args], capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    return proc.stdout


def frame_times_ns(path: Path) -> list[int]:
    out = _run(["-r", str(path), "-T", "fields", "-e", "frame.time_epoch"])
    return [int(Decimal(line) * 1_000_000_000) for line in out.splitlines() if line]


@dataclass
class FollowedStream:
    """One ``tcp.stream`` as tshark follows it: its nodes and the bytes each sent, in order."""

    index: int
    first_frame: int
    nodes: list[tuple[str, int]] = field(default_factory=list)
    data: list[bytearray] = field(default_factory=lambda: [bytearray(), bytearray()])


def tcp_streams(path: Path) -> dict[int, FollowedStream]:
    out = _run(["-r", str(path), "-Y", "tcp", "-T", "fields", "-e", "tcp.stream", "-e", "frame.number"])
    streams: dict[int, FollowedStream] = {}
    for line in out.splitlines():
        if not line.strip():
            continue
        s, f = line.split("\t")
        idx = int(s)
        if idx not in streams:
            streams[idx] = FollowedStream(idx, int(f))
    if not streams:
        return streams
    args = ["-r", str(path), "-q"]
    for idx in streams:
        args += ["-z", f"follow,tcp,raw,{idx}"]
    _parse_follow(_run(args), streams)
    return streams


def _parse_follow(text: str, streams: dict[int, FollowedStream]) -> None:
    current: FollowedStream | None = None
    for line in text.splitlines():
        if line.startswith("Filter: tcp.stream eq "):
            current = streams[int(line.rsplit(" ", 1)[1])]
        elif current is not None and line.startswith(("Node 0: ", "Node 1: ")):
            host, port = line[8:].rsplit(":", 1)
            current.nodes.append((host.strip("[]"), int(port)))
        elif current is not None and line and not line.startswith(("=", "Follow:")):
            node = 1 if line.startswith("\t") else 0
            current.data[node] += bytes.fromhex(line.strip())


def tls_streams(path: Path, keylog: Path | None, tls_ports: list[int]) -> dict[int, FollowedStream]:
    """Decrypted application data per ``tcp.stream`` as tshark's ``follow,tls,raw`` shows it, with ``keylog``
    (or the capture's own Decryption Secrets Blocks) and the ``tls_ports`` decoded as TLS. A node that sent
    nothing is listed with an empty host."""
    opts = ["-o", f"tls.keylog_file:{keylog}"] if keylog else []
    for port in tls_ports:
        opts += ["-d", f"tcp.port=={port},tls"]
    streams = {idx: FollowedStream(idx, s.first_frame) for idx, s in tcp_streams(path).items()}
    if not streams:
        return streams
    args = ["-r", str(path), *opts, "-q"]
    for idx in streams:
        args += ["-z", f"follow,tls,raw,{idx}"]
    _parse_follow(_run(args), streams)
    return streams


def frames(path: Path) -> list[tuple[int, int | None, int | None]]:
    """Every frame as (timestamp ns, tcp.stream, udp.stream), in order (a stream None where the frame has none; the
    first value where a frame has several, as a tunnel's would)."""
    out = _run(["-r", str(path), "-T", "fields", "-e", "frame.time_epoch", "-e", "tcp.stream", "-e", "udp.stream"])
    rows = []
    for line in out.splitlines():
        if not line:
            continue
        ts, tcp, udp = ([*line.split("\t"), "", ""])[:3]
        first = [int(v.split(",")[0]) if v else None for v in (tcp, udp)]
        rows.append((int(Decimal(ts) * 1_000_000_000), first[0], first[1]))
    return rows


def frame_streams(path: Path) -> dict[int, tuple[int | None, int | None]]:
    """frame number → (tcp.stream, udp.stream) as tshark numbers them."""
    return {i: (tcp, udp) for i, (_ts, tcp, udp) in enumerate(frames(path), 1)}


def selected_frames(path: Path, display_filter: str, *options: str) -> list[int]:
    """The frames ``tshark -r PATH -Y FILTER`` selects."""
    out = _run(["-r", str(path), *options, "-Y", display_filter, "-T", "fields", "-e", "frame.number"])
    return [int(x) for x in out.split()]


def comments(path: Path) -> dict[int, list[str]]:
    """frame number → its packet comments, as ``tshark -Y frame.comment -T fields -e frame.comment`` prints them."""
    out = _run(
        ["-r", str(path), "-Y", "frame.comment", "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=\x1f",
         "-e", "frame.number", "-e", "frame.comment"]
    )  # fmt: skip
    rows: dict[int, list[str]] = {}
    for line in out.splitlines():
        frame, _, text = line.partition("\t")
        rows[int(frame)] = text.split("\x1f")
    return rows
