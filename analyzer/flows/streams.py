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


# a record of ``Ended``: the key's bytes, then the packed conversation (``_S + 2 * _B`` bits) in ``_VALUE_BYTES``
# little-endian bytes
_VALUE_BYTES = (_S + 2 * _B + 7) // 8


class _Records:
    """The records of one key length, spread over buckets (bytearrays) by the key's hash."""

    __slots__ = ("buckets", "count", "klen", "mask", "size")

    def __init__(self, klen: int) -> None:
        self.klen = klen
        self.size = klen + _VALUE_BYTES
        self.buckets = [bytearray() for _ in range(BUCKETS)]
        self.mask = BUCKETS - 1
        self.count = 0

    def pop(self, key: bytes, h: int) -> int | None:
        """The value filed under ``key`` (whose hash is ``h``), taken out; None when there is none."""
        bucket = self.buckets[h & self.mask]
        at = bucket.find(key)
        if at < 0:
            return None
        size = self.size
        while at % size:  # found across two records: look on
            at = bucket.find(key, at + 1)
            if at < 0:
                return None
        value = int.from_bytes(bucket[at + self.klen : at + size], "little")
        del bucket[at : at + size]
        self.count -= 1
        return value

    def add(self, key: bytes, value: int) -> None:
        self.buckets[hash(key) & self.mask] += key + value.to_bytes(_VALUE_BYTES, "little")
        self.count += 1
        if self.count > BUCKET_RECORDS * len(self.buckets):
            self._spread(4 * len(self.buckets))

    def _spread(self, n: int) -> None:
        """The records over ``n`` buckets: shorter scans (each record moved as it is, its key hashed again)."""
        buckets = [bytearray() for _ in range(n)]
        mask, klen, size = n - 1, self.klen, self.size
        for bucket in self.buckets:
            for at in range(0, len(bucket), size):
                buckets[hash(bytes(bucket[at : at + klen])) & mask] += bucket[at : at + size]
        self.buckets, self.mask = buckets, mask


class Ended:
    """Ended conversations by ``_flat`` key, as records in bytes: 34-35 bytes each on IPv4 where a dict of bytes
    keys and int values took 136-147 (45,000 conversations; the 2M-packet gateway capture has that many in each
    partition of two, and they were the most of what a partition's memory grew by from one hour to two). A key is
    found in its hash's bucket, where ``bytearray.find`` scans a few dozen records at C speed; keys are compared
    whole, never by hash alone.

    The records are filed by age in generations of ``per_generation`` insertions each, the oldest forgotten whole
    (``drop_oldest``): no scan of the others. A key not filed, the common case, is looked for in each generation;
    a capture has more than one only past ``per_generation`` ended conversations (the budget's tenth: 100,000)."""

    __slots__ = ("count", "filed", "generations", "per_generation")

    def __init__(self, per_generation: int) -> None:
        self.per_generation = max(1, per_generation)
        self.generations: list[dict[int, _Records]] = [{}]  # by key length; the oldest first
        self.filed = 0  # insertions into the newest generation
        self.count = 0

    def __len__(self) -> int:
        return self.count

    def pop(self, key: bytes) -> int | None:
        """The value filed under ``key``, taken out; None when there is none (a test per generation)."""
        n, h = len(key), hash(key)
        for generation in self.generations:
            t = generation.get(n)
            if t is not None:
                value = t.pop(key, h)
                if value is not None:
                    self.count -= 1
                    return value
        return None

    def put(self, key: bytes, value: int) -> None:
        """File ``value`` under ``key``, which holds none: ``StreamNumbers`` files a conversation when its flow ends,
        and a flow's key was recalled (taken out) when the flow began, so no key is filed twice."""
        if self.filed >= self.per_generation:
            self.generations.append({})
            self.filed = 0
        newest = self.generations[-1]
        t = newest.get(len(key))
        if t is None:
            t = newest[len(key)] = _Records(len(key))
        t.add(key, value)
        self.filed += 1
        self.count += 1

    def drop_oldest(self) -> int:
        """Forget the oldest generation (the only one: empty it); how many records it held."""
        oldest = self.generations.pop(0)
        if not self.generations:
            self.generations.append({})
            self.filed = 0
        dropped = sum(t.count for t in oldest.values())
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
        self.ended = Ended(limit // 10)
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
            while ended.count > self.limit:  # the oldest tenth at once (fewer where some were recalled)
                self.forgotten += ended.drop_oldest()
            if self.forgot_at is None:
                self.forgot_at = frame

    def quoted_udp(self, key: Key, rkey: Key, frame: int) -> None:
        """An ICMP error quotes a UDP datagram of no live flow: Wireshark finds its conversation, or opens one."""
        known = self.recall(key, rkey)
        stream = known[0] if known is not None else self.number(UDP, frame)
        self.remember(key, stream, UNSET, UNSET, frame)
