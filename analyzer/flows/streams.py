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
base sequence numbers, packed in bytes with their addresses and ports: ``Ended``) up to
``Budgets.remembered_conversations``; past it the oldest are forgotten, a returning one gets a new number, and the
numbers after it may differ from Wireshark's (a capture warning says from which frame).
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator

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
BUCKETS = 256  # ``Ended``'s buckets per key length at first ...
BUCKET_RECORDS = 16  # ... four times as many when they hold this many records each on average

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


# a record of ``Ended``: the key's bytes, then ``_VALUE_BYTES`` little-endian bytes holding the packed
# conversation (``_S + 2 * _B`` bits) and above it the record's insertion number (the oldest go first)
_SEQ = _S + 2 * _B
_VALUE_BYTES = 20
_VALUE = (1 << _SEQ) - 1


class _Records:
    """The records of one key length, spread over buckets (bytearrays) by the key's hash."""

    __slots__ = ("buckets", "count", "klen", "mask", "size")

    def __init__(self, klen: int) -> None:
        self.klen = klen
        self.size = klen + _VALUE_BYTES
        self.buckets = [bytearray() for _ in range(BUCKETS)]
        self.mask = BUCKETS - 1
        self.count = 0

    def add(self, key: bytes, value: int) -> None:
        self.buckets[hash(key) & self.mask] += key + value.to_bytes(_VALUE_BYTES, "little")
        self.count += 1
        if self.count > BUCKET_RECORDS * len(self.buckets):
            self._spread(4 * len(self.buckets))

    def records(self) -> Iterator[tuple[bytes, int]]:
        klen, size = self.klen, self.size
        for bucket in self.buckets:
            for at in range(0, len(bucket), size):
                yield bytes(bucket[at : at + klen]), int.from_bytes(bucket[at + klen : at + size], "little")

    def _spread(self, n: int) -> None:
        """The records over ``n`` buckets: shorter scans (each record moved as it is, its key hashed again)."""
        buckets = [bytearray() for _ in range(n)]
        mask, klen, size = n - 1, self.klen, self.size
        for bucket in self.buckets:
            for at in range(0, len(bucket), size):
                buckets[hash(bytes(bucket[at : at + klen])) & mask] += bucket[at : at + size]
        self.buckets, self.mask = buckets, mask

    def keep_newer(self, seq: int) -> int:
        """Drop the records inserted at ``seq`` or before; how many were dropped."""
        before = self.count
        kept = [(k, v) for k, v in self.records() if v >> _SEQ > seq]
        self.buckets = [bytearray() for _ in range(len(self.buckets))]
        self.count = 0
        for key, value in kept:
            self.add(key, value)
        return before - len(kept)


class Ended:
    """Ended conversations by ``_flat`` key, as records in bytes: 40-41 bytes each on IPv4 where a dict of bytes
    keys and int values took 136-147 (45,000 conversations; the 2M-packet gateway capture has that many in each
    partition of two, and they were the most of what a partition's memory grew by from one hour to two). A key is
    found in its hash's bucket, where ``bytearray.find`` scans a few dozen records at C speed; keys are compared
    whole, never by hash alone. Each record's insertion number gives the oldest to forget first."""

    __slots__ = ("count", "seq", "tables")

    def __init__(self) -> None:
        self.tables: dict[int, _Records] = {}
        self.count = 0
        self.seq = 0

    def __len__(self) -> int:
        return self.count

    def pop(self, key: bytes) -> int | None:
        """The value filed under ``key``, taken out; None when there is none (the common case: one test)."""
        t = self.tables.get(len(key))
        if t is None:
            return None
        bucket = t.buckets[hash(key) & t.mask]
        at = bucket.find(key)
        if at < 0:
            return None
        size = t.size
        while at % size:  # found across two records: look on
            at = bucket.find(key, at + 1)
            if at < 0:
                return None
        value = int.from_bytes(bucket[at + t.klen : at + size], "little")
        del bucket[at : at + size]
        t.count -= 1
        self.count -= 1
        return value & _VALUE

    def put(self, key: bytes, value: int) -> None:
        """File ``value`` under ``key``, which holds none: ``StreamNumbers`` files a conversation when its flow ends,
        and a flow's key was recalled (taken out) when the flow began, so no key is filed twice."""
        t = self.tables.get(len(key))
        if t is None:
            t = self.tables[len(key)] = _Records(len(key))
        self.seq += 1
        self.count += 1
        t.add(key, value | self.seq << _SEQ)

    def drop_oldest(self, n: int) -> int:
        """Drop the ``n`` oldest records (inserted first); how many were dropped."""
        seqs = sorted(v >> _SEQ for t in self.tables.values() for _, v in t.records())
        if not seqs:
            return 0
        cutoff = seqs[min(n, len(seqs)) - 1]
        dropped = sum(t.keep_newer(cutoff) for t in self.tables.values())
        self.count -= dropped
        return dropped


class StreamNumbers:
    """Hands out stream numbers and remembers ended conversations, keyed by their client→server flow key."""

    __slots__ = ("ended", "firsts", "forgot_at", "forgotten", "limit", "next")

    def __init__(self, limit: int) -> None:
        self.next = {TCP: 0, UDP: 0}
        # with ``analyze --workers``: the frame that opened each number, per protocol (``analyzer.parallel``
        # numbers a partition's conversations again in the order of the whole capture)
        self.firsts: dict[int, array[int]] | None = None
        self.ended = Ended()
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
        v = self.ended.pop(_flat(key))
        if v is not None:
            return v & _SMASK, ((v >> _S) & _MASK) - 1, (v >> (_S + _B)) - 1
        v = self.ended.pop(_flat(rkey))
        if v is not None:
            return v & _SMASK, (v >> (_S + _B)) - 1, ((v >> _S) & _MASK) - 1
        return None

    def remember(self, key: Key, stream: int, base_fwd: int, base_rev: int, frame: int) -> None:
        """An ended conversation (``key`` one of its two ways, the bases in that way and the other)."""
        ended = self.ended
        ended.put(_flat(key), stream | (base_fwd + 1) << _S | (base_rev + 1) << (_S + _B))
        if ended.count > self.limit:
            # the oldest tenth at once: one scan per batch
            self.forgotten += ended.drop_oldest(max(1, self.limit // 10))
            if self.forgot_at is None:
                self.forgot_at = frame

    def quoted_udp(self, key: Key, rkey: Key, frame: int) -> None:
        """An ICMP error quotes a UDP datagram of no live flow: Wireshark finds its conversation, or opens one."""
        known = self.recall(key, rkey)
        stream = known[0] if known is not None else self.number(UDP, frame)
        self.remember(key, stream, UNSET, UNSET, frame)
