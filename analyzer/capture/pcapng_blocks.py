"""pcapng blocks as bytes (little-endian): a Section Header, an Interface Description and an Enhanced Packet Block
with its options (``opt_comment``: the packet comments Wireshark shows and ``frame.comment`` filters on).

Pure encoding, no I/O; ``analyzer.capture.pcapng_writer`` puts them in a stream. Layout: the pcapng specification
(IETF draft-ietf-opsawg-pcapng): every block is type, total length, body padded to 32 bits, total length again.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable

BLOCK_SHB, BLOCK_IDB, BLOCK_EPB = 0x0A0D0D0A, 0x00000001, 0x00000006
BYTE_ORDER_MAGIC = 0x1A2B3C4D
OPT_ENDOFOPT, OPT_COMMENT = 0, 1
SHB_USERAPPL = 4
IF_TSRESOL = 9
TSRESOL_NS = 9  # if_tsresol 9: timestamps in nanoseconds (10^-9 s)
MAX_OPTION = 0xFFFF  # an option's length field is 16 bits
MAX_TS = (1 << 64) - 1
_SURROGATE = re.compile("[\ud800-\udfff]")


def _pad(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def option(code: int, value: bytes) -> bytes:
    """One option: code, length, value padded to 32 bits (a value longer than an option holds is cut)."""
    value = value[:MAX_OPTION]
    return struct.pack("<HH", code, len(value)) + _pad(value)


def options(items: Iterable[tuple[int, bytes]]) -> bytes:
    """Options followed by ``opt_endofopt``; nothing at all for no options (the end marker is optional)."""
    body = b"".join(option(c, v) for c, v in items)
    return body + struct.pack("<HH", OPT_ENDOFOPT, 0) if body else b""


def text(s: str) -> bytes:
    """An option's UTF-8 text (a lone surrogate from a hostile capture string becomes U+FFFD), cut to fit an
    option without splitting a character."""
    raw = _SURROGATE.sub("\ufffd", s).encode("utf-8")
    if len(raw) > MAX_OPTION:
        raw = raw[:MAX_OPTION].decode("utf-8", "ignore").encode("utf-8")
    return raw


def block(btype: int, body: bytes) -> bytes:
    body = _pad(body)
    total = len(body) + 12
    return struct.pack("<II", btype, total) + body + struct.pack("<I", total)


def section_header(application: str | None = None) -> bytes:
    """A Section Header Block: version 1.0, section length unknown (-1), ``shb_userappl`` naming the writer."""
    opts = options([(SHB_USERAPPL, text(application))] if application else [])
    return block(BLOCK_SHB, struct.pack("<IHHq", BYTE_ORDER_MAGIC, 1, 0, -1) + opts)


def interface(linktype: int, snaplen: int = 0, tsresol: int = TSRESOL_NS) -> bytes:
    """An Interface Description Block (snaplen 0: no limit) with its timestamp resolution."""
    return block(BLOCK_IDB, struct.pack("<HHI", linktype, 0, snaplen) + options([(IF_TSRESOL, bytes([tsresol]))]))


def enhanced_packet(iface: int, ts: int, data: bytes, orig_len: int, comments: Iterable[str] = ()) -> bytes:
    """An Enhanced Packet Block: interface id, timestamp in the interface's units (0 to 2^64-1), captured
    bytes, original length, and one ``opt_comment`` per comment."""
    head = struct.pack("<IIIII", iface, ts >> 32, ts & 0xFFFFFFFF, len(data), orig_len)
    return block(BLOCK_EPB, head + _pad(data) + options((OPT_COMMENT, text(c)) for c in comments))
