"""Wireshark's own stream numbers (``tcp.stream``, ``udp.stream``), beside the flow table's flow ids.

Wireshark (4.0, whose tshark the tests ask) numbers TCP and UDP conversations separately, from 0, in order of the
first packet of each conversation (a conversation is the two addresses and ports, either way round). A conversation
never ends on a timeout or a FIN: a later packet on the same addresses and ports belongs to it, however late. Only
a bare SYN starts a new TCP conversation on the same addresses and ports, and only when its sequence number differs
from the base sequence number Wireshark keeps for that direction: the first packet's sequence number (a SYN's own,
any other packet's minus one), or, before any packet in that direction, the acknowledgement number of the other
direction's first ACK, minus one. An ICMP error quoting a UDP datagram of no known conversation opens one (and takes
a number); a quoted TCP segment does not.

The flow table splits flows where Wireshark does not (idle timeouts, the live-flow budget, a SYN after a handshake
seen from its SYN-ACK): such flows share a stream number. Ended conversations are remembered (a number and two
base sequence numbers, 100-130 bytes each) up to ``Budgets.remembered_conversations``; past it the oldest are
forgotten, a returning one gets a new number, and the numbers after it may differ from Wireshark's (a capture
warning says from which frame).
"""

from __future__ import annotations

from array import array
from itertools import islice

TCP, UDP = 6, 17
SYN, ACK = 0x02, 0x10
UNSET = -1
M32 = 0xFFFFFFFF
# an ended conversation's number and bases, packed in one int: the number in the low ``_S`` bits (a UDP
# conversation, without bases, is its number: a small int), then each base + 1 in ``_B`` bits (0: unset)
_S = 40
_B = 33
_SMASK = (1 << _S) - 1
_MASK = (1 << _B) - 1
_UDP_TAG = bytes((UDP,))

# a flow's way: (protocol, addresses and ports); a TCP one is the bare bytes (``FlowTable._tcp``'s hot path
# makes no tuple), which no other protocol's tuple equals
Key = bytes | tuple[int, bytes]
Conversation = tuple[int, int, int]  # stream, base in the packet's direction, base in the other (UNSET: none)


def syn_starts_new_stream(flags: int, seq: int, fwd_base: int) -> bool:
    """Whether Wireshark opens a new conversation for this packet on a known one: a bare SYN whose sequence
    number differs from the base of its direction (a SYN sent again with the same number stays)."""
    return flags & (SYN | ACK) == SYN and fwd_base != UNSET and seq != fwd_base


def seen(base: list[int], d: int, flags: int, seq: int, ack: int) -> bool:
    """Take in one TCP packet of direction ``d``: set the bases it gives. Whether both are known now."""
    if base[d] == UNSET:
        base[d] = seq if flags & SYN else (seq - 1) & M32
    if base[1 - d] == UNSET and flags & ACK:
        base[1 - d] = (ack - 1) & M32
    return base[0] != UNSET and base[1] != UNSET


def _flat(key: Key) -> bytes:
    """``key`` as the ended conversations are kept: a TCP key as it is (bytes), a UDP key's bytes with the
    protocol's number after them (a tuple and its bytes were twice the memory; a gateway's DNS and NTP open a new
    conversation per lookup, 75,000 an hour on the gateway capture). Only TCP and UDP conversations are remembered."""
    return key if key.__class__ is bytes else key[1] + _UDP_TAG  # type: ignore[operator,return-value]


class StreamNumbers:
    """Hands out stream numbers and remembers ended conversations, keyed by their client→server flow key."""

    __slots__ = ("ended", "firsts", "forgot_at", "forgotten", "limit", "next")

    def __init__(self, limit: int) -> None:
        self.next = {TCP: 0, UDP: 0}
        # with ``analyze --workers``: the frame that opened each number, per protocol (``analyzer.parallel``
        # numbers a partition's conversations again in the order of the whole capture)
        self.firsts: dict[int, array[int]] | None = None
        self.ended: dict[bytes, int] = {}  # by ``_flat`` key
        self.limit = limit
        self.forgotten = 0
        self.forgot_at: int | None = None  # the frame at which the first conversation was forgotten

    def number(self, proto: int, frame: int) -> int:
        """The next number of ``proto``, for a conversation whose first packet is ``frame``."""
        n = self.next[proto]
        self.next[proto] = n + 1
        if self.firsts is not None:
            self.firsts[proto].append(frame)
        return n

    def recall(self, key: Key, rkey: Key) -> Conversation | None:
        """The ended conversation of a packet going ``key``'s way, which it takes over (it leaves the memory)."""
        v = self.ended.pop(_flat(key), None)
        if v is not None:
            return v & _SMASK, ((v >> _S) & _MASK) - 1, (v >> (_S + _B)) - 1
        v = self.ended.pop(_flat(rkey), None)
        if v is not None:
            return v & _SMASK, (v >> (_S + _B)) - 1, ((v >> _S) & _MASK) - 1
        return None

    def remember(self, key: Key, stream: int, base_fwd: int, base_rev: int, frame: int) -> None:
        """An ended conversation (``key`` one of its two ways, the bases in that way and the other)."""
        self.ended[_flat(key)] = stream | (base_fwd + 1) << _S | (base_rev + 1) << (_S + _B)
        if len(self.ended) > self.limit:
            # the oldest tenth at once: one scan per batch (popping a dict's first entry one by one is quadratic)
            drop = list(islice(self.ended, max(1, self.limit // 10)))
            for k in drop:
                del self.ended[k]
            self.forgotten += len(drop)
            if self.forgot_at is None:
                self.forgot_at = frame

    def quoted_udp(self, key: Key, rkey: Key, frame: int) -> None:
        """An ICMP error quotes a UDP datagram of no live flow: Wireshark finds its conversation, or opens one."""
        known = self.recall(key, rkey)
        stream = known[0] if known is not None else self.number(UDP, frame)
        self.remember(key, stream, UNSET, UNSET, frame)
