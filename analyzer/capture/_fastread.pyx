# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The compiled core of the pcap reader (``analyzer.capture.compiled`` drives it; the pure-Python reader,
``CaptureReader._pcap`` and ``Capture._ip_packets``, is the reference it must match byte for byte).

``PcapScanner.scan`` walks the pcap records of one read buffer and turns every Ethernet IPv4 packet without options
or fragmentation into the ``IpPacket`` tuple ``Capture.ip_packets`` yields (or the ``SKIPPED`` tuple of another
partition's packets). It stops, leaving the decision to Python, at anything else: the end of the buffer, an
all-zero record header, a corrupt length, or a record off the fast path (handed back in ``slow``, already counted;
what Python makes of it comes back through ``put``).

With ``sweep_every``, n > 1 consecutive skipped packets come as one ``(frame, ts, SKIPPED_RUN, b"", b"", b"", n)``
(frame and ts: the last one's), and a run ends on every multiple of ``sweep_every`` packets of the stream (counting
each skipped packet), so ``FlowTable.run`` sweeps on the same packets as with one ``SKIPPED`` tuple per packet.

Bypass (``BypassTable``, Suricata's "flow bypass" in spirit): the flow table may arm a live TCP flow so that its
routine packets, a pure ACK or an in-order segment in the decoder's skip window, never become tuples. The scanner
counts such a packet as skipped (so the sweeps still fall on the same packets) and adds what it changes to the
flow's ``Bypass``: packets, bytes, next offset, the latest acknowledgement, the segments kept for retransmission
checks, the last frame. That is handed on as ``(frame, ts, BYPASSED, snapshot, b"", b"", 0)`` (``Bypass.snapshot``)
before the flow's next packet that is not passed over, and for every flow before a packet on which the flow table
sweeps (which also turns every flow off: the sweep may end one); the flow table takes in the rest at the end
(``BypassTable.drain``), and stops the bypass near its live-flow budget (``stopped``: what was passed over is
handed on before the next read buffer). Any other packet of a flow turns its bypass off until the flow table arms
it again, which it can only do from the last packet of the flow the scanner read (``Bypass.last_seen``): the
scanner reads ahead of the flow table, a batch at most (``BypassTable.batch``), and ends a batch early (``REARM``)
after a packet from which the flow table may arm its flow again.
"""

from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.dict cimport PyDict_GetItemWithError, PyDict_SetItem
from cpython.ref cimport PyObject
from libc.stdint cimport int64_t, uint32_t

ABI = 8  # bumped when the interface with analyzer.capture.compiled changes

# what stopped ``scan``
NEED_HEADER = 0  # fewer than 16 bytes left in the buffer
ZERO_HEADER = 1  # an all-zero record header at or after ``zeros_from``
CORRUPT = 2  # captured length > max_len (``incl``)
NEED_RECORD = 3  # the record runs past the buffer (``incl``)
SLOW = 4  # a record off the fast path, counted and consumed: ``slow`` = (ts_ns, data, orig_len)
REARM = 5  # after handing on a packet of a bypassed flow that the flow table may arm again at once

cdef enum:
    TCP = 6
    UDP = 17
    BYPASSED = -3  # a tuple carrying a ``Bypass`` whose changes the flow table takes in before the next packet
    RECENT = 32  # reassembly.RECENT_SEGMENTS: the delivered segments a direction keeps


cdef inline uint32_t _u32(const unsigned char* p, bint big) noexcept nogil:
    if big:
        return (<uint32_t>p[0] << 24) | (<uint32_t>p[1] << 16) | (<uint32_t>p[2] << 8) | <uint32_t>p[3]
    return (<uint32_t>p[3] << 24) | (<uint32_t>p[2] << 16) | (<uint32_t>p[1] << 8) | <uint32_t>p[0]


cdef uint32_t _CRC[256]  # CRC-32 (IEEE 802.3, reflected: zlib's ``crc32``), a byte at a time


cdef void _crc_table() noexcept:
    cdef uint32_t c
    cdef int i, j
    for i in range(256):
        c = <uint32_t>i
        for j in range(8):
            c = (c >> 1) ^ <uint32_t>0xEDB88320 if c & 1 else c >> 1
        _CRC[i] = c


_crc_table()


def crc32(const unsigned char[::1] data):
    """``zlib.crc32(data)``, as the scanner computes it (tests compare the two)."""
    return _crc32(&data[0] if data.shape[0] else NULL, data.shape[0])


cdef inline uint32_t _crc32(const unsigned char* p, Py_ssize_t n) noexcept nogil:
    cdef uint32_t c = <uint32_t>0xFFFFFFFF
    cdef Py_ssize_t i
    for i in range(n):
        c = _CRC[(c ^ p[i]) & 0xFF] ^ (c >> 8)
    return c ^ <uint32_t>0xFFFFFFFF


cdef inline bint _server_is_dst(const unsigned char* service, uint32_t sport, uint32_t dport) noexcept nogil:
    """``flows.table.server_is_dst``: ``service[port]`` is 1 for a port of ``SERVICE_PORTS``."""
    if service[dport] != service[sport]:
        return service[dport] != 0
    if (dport < 1024) != (sport < 1024):
        return dport < 1024
    if (dport >= 49152) != (sport >= 49152):
        return sport >= 49152
    return dport <= sport


def unmask(const unsigned char[::1] data, const unsigned char[::1] mask, Py_ssize_t offset):
    """``data`` XOR the 4-byte WebSocket ``mask`` (RFC 6455 §5.3), ``data[0]`` being payload byte ``offset``: what
    ``analyzer.decoders.websocket.unmask_python`` computes, as bytes."""
    if mask.shape[0] != 4:
        raise ValueError("a WebSocket mask is 4 bytes")
    cdef Py_ssize_t n = data.shape[0], i
    out = PyBytes_FromStringAndSize(NULL, n)
    cdef unsigned char* dst = <unsigned char*>PyBytes_AS_STRING(out)
    for i in range(n):
        dst[i] = data[i] ^ mask[(i + offset) & 3]
    return out


cdef class Bypass:
    """What the scanner may pass over of one live TCP flow (armed by its flow table), and what it passed over since
    it last handed that on. Direction d is the flow's (0: client to server)."""

    cdef public object flow
    cdef readonly int64_t last_seen  # frame of the last packet of this flow read, handed on or not (-1: none yet)
    cdef readonly bint stale  # something was turned off (or never armed) since the flow table last armed it
    cdef bint queued  # in its table's ``pending``
    cdef bint armable  # the flow table armed it last time (it may again: worth ending a read buffer early for)
    cdef bint skipping  # a decoder passes over bytes of this flow (it may move a skip window with any segment)
    cdef bint acks[2]  # pure ACKs sent in d may be passed over
    cdef bint data[2]  # in-order segments sent in d ending before skip_end[d] may be passed over
    cdef bint known[2]  # expected[d] and nxt[d] hold
    cdef uint32_t expected[2]  # the next in-order sequence number sent in d
    cdef int64_t nxt[2]  # its stream offset
    cdef int64_t skip_end[2]
    # passed over since last handed on
    cdef int64_t count[2]
    cdef int64_t nbytes[2]
    cdef int64_t ack[2]  # the latest acknowledgement number sent in d, -1: none
    cdef int64_t moved[2]  # the stream offset after the last segment passed over in d
    cdef int64_t frame  # 0: nothing
    cdef int64_t ts
    cdef list recent0
    cdef list recent1

    def __init__(self, flow):
        self.flow = flow
        self.last_seen = -1
        self.stale = True
        self.ack[0] = self.ack[1] = -1
        self.recent0 = []
        self.recent1 = []

    def arm(
        self, int64_t frame, bint armable, bint skipping, bint acks0, bint acks1, int64_t expected0,
        int64_t expected1, int64_t nxt0, int64_t nxt1, int64_t skip_end0, int64_t skip_end1,
    ):
        """Arm from the flow's state after ``frame``: whether it can be armed at all now, whether a decoder passes
        over its bytes, pure ACKs each way, and each way's next sequence number (-1: unknown), stream offset and
        skip window end (data is passed over in a direction while its segments end before it). Ignored, returning
        False, unless ``frame`` is the last packet of the flow the scanner read: it may be a read buffer ahead of
        the flow table."""
        if frame != self.last_seen:
            return False
        self.armable = armable
        self.skipping = skipping
        if not armable:
            self.off()  # stays stale: the flow table tries again at the flow's next packet
            return True
        self.stale = False
        self.acks[0] = acks0
        self.acks[1] = acks1
        self.known[0] = expected0 >= 0
        self.known[1] = expected1 >= 0
        self.expected[0] = <uint32_t>expected0
        self.expected[1] = <uint32_t>expected1
        self.nxt[0] = nxt0
        self.nxt[1] = nxt1
        self.skip_end[0] = skip_end0
        self.skip_end[1] = skip_end1
        self.data[0] = self.known[0] and skip_end0 > nxt0
        self.data[1] = self.known[1] and skip_end1 > nxt1
        return True

    @property
    def armed(self):
        """(pure ACKs each way, data each way) the scanner may pass over now."""
        return (self.acks[0], self.acks[1], self.data[0], self.data[1])

    cdef inline int hand_on(self, list out, int64_t frame, int64_t ts) except -1:
        """Put what was passed over, if anything, in ``out`` (before the tuple that follows it there)."""
        if self.frame:
            out.append((frame, ts, BYPASSED, self.snapshot(), b"", b"", 0))
        return 0

    cdef tuple snapshot(self):
        """What was passed over, handed on and forgotten: ``(flow, count0, count1, bytes0, bytes1, ack0, ack1,
        frame, ts, offset0, offset1, recent0, recent1)``."""
        out = (
            self.flow, self.count[0], self.count[1], self.nbytes[0], self.nbytes[1], self.ack[0], self.ack[1],
            self.frame, self.ts, self.moved[0], self.moved[1], self.recent0, self.recent1,
        )
        self.count[0] = self.count[1] = self.nbytes[0] = self.nbytes[1] = self.frame = 0
        self.ack[0] = self.ack[1] = -1
        if self.recent0:
            self.recent0 = []
        if self.recent1:
            self.recent1 = []
        return out

    cdef inline void off(self) noexcept:
        self.acks[0] = self.acks[1] = self.data[0] = self.data[1] = False
        self.known[0] = self.known[1] = False
        self.stale = True


cdef class BypassTable:
    """The armed flows of one flow table, by the key of each direction (``FlowTable.live``'s TCP keys): ``entries``
    maps a key to ``(bypass, direction)``. ``stopped`` (set by the flow table): the scanner hands on what it passed
    over at its next read buffer and passes nothing over any more."""

    cdef readonly dict entries
    cdef list pending  # flows with something passed over (or handed on since)
    cdef public bint active  # a scanner reads with it
    cdef public bint stopped
    cdef public int64_t batch  # packets a scanner reads at most before handing them on, while it passes any over

    def __init__(self, int64_t batch=4096):
        self.entries = {}
        self.pending = []
        self.active = False
        self.stopped = False
        self.batch = batch

    cdef int sweep_point(self, list out, int64_t frame, int64_t ts) except -1:
        """A packet on which the flow table sweeps: what was passed over goes before it, and every flow is turned
        off until the flow table arms it again after the sweep (which may end it: a later packet must not be
        passed over into it)."""
        cdef Bypass b
        self.hand_on(out, frame, ts)
        for hit in self.entries.values():
            b = <Bypass>(<tuple>hit)[0]
            b.off()
        return 0

    cdef int hand_on(self, list out, int64_t frame, int64_t ts) except -1:
        """Put in ``out`` what every flow passed over and has not handed on."""
        cdef Bypass b
        if not self.pending:
            return 0
        for b in self.pending:
            b.queued = False
            b.hand_on(out, frame, ts)
        self.pending = []
        return 0

    def drain(self):
        """What every flow passed over and has not handed on (at the end of the capture)."""
        out = []
        self.hand_on(out, 0, 0)
        return [t[3] for t in out]


cdef class PcapScanner:
    """The per-record state of one pcap file: frames read, truncated records, first and last timestamps."""

    cdef readonly int64_t frame
    cdef readonly int64_t truncated
    cdef readonly int64_t first_ns
    cdef readonly int64_t last_ns
    cdef readonly uint32_t incl
    cdef readonly object slow
    cdef bint rearm  # end the batch after the packet just handed on (``REARM``)
    cdef int64_t in_batch  # packets read since the last batch was handed on (``end_batch``)
    cdef int64_t batch  # while passing packets over: the most a batch holds (``BypassTable.batch``)
    cdef readonly int64_t items  # packets of the stream so far (each skipped one counted)
    cdef int64_t sweep_every  # 0: a tuple per skipped packet
    cdef int64_t run_n  # the run of skipped packets not yet appended
    cdef int64_t run_frame
    cdef int64_t run_ts
    cdef bint big
    cdef bint ethernet
    cdef int64_t mult
    cdef uint32_t max_len
    cdef object part
    cdef object learn
    cdef dict mine
    # ``parallel.Owner``'s rule, to decide a conversation here: its service ports (a byte per port), k and n;
    # ``service`` None: ``learn`` decides (and ``mine`` remembers)
    cdef bytes service
    cdef int64_t part_k
    cdef int64_t part_n
    cdef BypassTable bypass
    cdef dict armed  # bypass.entries

    def __init__(
        self, bint big_endian, int64_t mult, bint ethernet, uint32_t max_len, object part=None, int64_t sweep_every=0,
        BypassTable bypass=None,
    ):
        self.big = big_endian
        self.mult = mult
        self.ethernet = ethernet
        self.max_len = max_len
        self.part = part
        self.service = None
        if part is not None:
            self.mine = part.mine
            self.learn = part.learn
            rule = getattr(part, "rule", None)
            if rule is not None:
                self.service, self.part_k, self.part_n = rule
                if len(self.service) != 65536 or self.part_n < 1:
                    raise ValueError("a partition rule needs a byte per port and n >= 1")
        self.frame = 0
        self.truncated = 0
        self.first_ns = 0
        self.last_ns = 0
        self.incl = 0
        self.slow = None
        self.items = 0
        self.sweep_every = sweep_every
        self.run_n = 0
        self.run_frame = 0
        self.run_ts = 0
        self.bypass = bypass if sweep_every else None  # what it passes over is counted in runs of skipped packets
        self.in_batch = 0
        self.batch = 0
        if self.bypass is not None:
            self.armed = bypass.entries
            self.batch = bypass.batch if bypass.batch > 0 else 1

    cdef bint _decide(self, const unsigned char* a) noexcept:
        """``Owner``'s decision for a whole key (``a``: src, dst, ports), by its rule: the conversation's client by
        its ports, hashed. A pure function of the key (the same either way round), so nothing is remembered: no key
        object is made and no dict asked for another partition's packet (``Owner.mine`` is only a cache of it)."""
        cdef const unsigned char* service = <const unsigned char*>PyBytes_AS_STRING(self.service)
        cdef uint32_t sport = (<uint32_t>a[8] << 8) | a[9]
        cdef uint32_t dport = (<uint32_t>a[10] << 8) | a[11]
        cdef const unsigned char* client
        cdef int i
        if sport != dport:
            client = a if _server_is_dst(service, sport, dport) else a + 4
        else:  # the lower address (``min`` of the two as bytes)
            client = a
            for i in range(4):
                if a[i] != a[4 + i]:
                    if a[4 + i] < a[i]:
                        client = a + 4
                    break
        return <int64_t>(_crc32(client, 4) % <uint32_t>self.part_n) == self.part_k

    cdef int _passed_over(
        self, object hit, const unsigned char* tcp, Py_ssize_t captured, uint32_t total, int64_t frame, int64_t ts,
        list out,
    ) except -1:
        """A TCP packet of a flow in the bypass table: 1 if passed over (counted as skipped), else 0, after its
        flow's changes so far were put in ``out`` (for the tuple that follows) and the bypass was turned off as far
        as this packet can change what it relies on."""
        cdef Bypass b = <Bypass>(<tuple>hit)[0]
        cdef int d = (<tuple>hit)[1]
        cdef int flags = 0, hoff = 0
        cdef uint32_t seq = 0, win = 0
        cdef int64_t plen = 0
        cdef list recent
        cdef bint first, had
        if captured >= 20:
            flags = tcp[13]
            win = (<uint32_t>tcp[14] << 8) | tcp[15]
            hoff = (tcp[12] >> 4) * 4
            plen = <int64_t>total - 20 - hoff
            seq = _u32(tcp + 4, True)
            if (flags & 0x17) == 0x10 and win:
                if plen == 0 and b.acks[d]:
                    self._took(b, d, tcp, frame, ts, out)
                    return 1
                if (
                    plen > 0 and b.data[d] and seq == b.expected[d] and captured - hoff == plen
                    and b.nxt[d] + plen < b.skip_end[d]
                ):
                    recent = b.recent0 if d == 0 else b.recent1
                    recent.append((b.nxt[d], PyBytes_FromStringAndSize(<const char*>tcp + hoff, plen)))
                    if len(recent) >= 2 * RECENT:
                        del recent[:RECENT]
                    b.nxt[d] += plen
                    b.moved[d] = b.nxt[d]
                    b.expected[d] += <uint32_t>plen
                    b.nbytes[d] += plen
                    self._took(b, d, tcp, frame, ts, out)
                    return 1
        b.hand_on(out, frame, ts)
        first = b.last_seen < 0
        had = b.acks[0] or b.acks[1] or b.data[0] or b.data[1]
        b.last_seen = frame
        self.rearm = first  # the flow table arms a flow from its first packet read after it offered it
        if captured >= 20 and (flags & 0x17) == 0x10 and win:
            if plen == 0:  # a pure ACK not passed over (none yet that way): it changes nothing the bypass needs
                b.stale = True  # but the flow table may arm this way's ACKs after it
                self.rearm = first or b.armable
                return 0
            if plen > 0 and b.known[d] and seq == b.expected[d] and captured - hoff == plen:
                # an in-order segment: nothing changes but the skip windows, which the decoder it reaches may move
                b.nxt[d] += plen
                b.expected[d] += <uint32_t>plen
                if b.skipping:
                    b.data[0] = b.data[1] = False
                    b.stale = True
                    self.rearm = first or b.armable
                return 0
        b.off()
        self.rearm = first or (had and b.armable)
        return 0

    cdef inline int _took(
        self, Bypass b, int d, const unsigned char* tcp, int64_t frame, int64_t ts, list out
    ) except -1:
        b.count[d] += 1
        b.ack[d] = _u32(tcp + 8, True)
        b.frame = b.last_seen = frame
        b.ts = ts
        if not b.queued:
            b.queued = True
            self.bypass.pending.append(b)
        self._skip(out, frame, ts)
        return 0

    cdef inline int _skip(self, list out, int64_t frame, int64_t ts) except -1:
        self.items += 1
        if not self.sweep_every:
            out.append((frame, ts, -1, b"", b"", b"", 0))
            return 0
        self.run_n += 1
        self.run_frame = frame
        self.run_ts = ts
        if self.items % self.sweep_every == 0:
            if self.bypass is not None:
                self.bypass.sweep_point(out, frame, ts)  # before the sweep that follows the run
            self.flush(out)
        return 0

    cdef inline int _count(self, list out, int64_t frame, int64_t ts) except -1:
        """A packet handed on: it is counted; on a sweep's packet, what the flows passed over is handed on first."""
        self.items += 1
        if self.bypass is not None and self.items % self.sweep_every == 0:
            self.bypass.sweep_point(out, frame, ts)
        return 0

    def end_batch(self, list out):
        """``out`` is about to be handed on: the run of skipped packets not yet appended goes in, and the next
        batch starts."""
        self.flush(out)
        self.in_batch = 0

    cpdef flush(self, list out):
        """Append the run of skipped packets not yet appended."""
        if self.run_n == 1:
            out.append((self.run_frame, self.run_ts, -1, b"", b"", b"", 0))
        elif self.run_n:
            out.append((self.run_frame, self.run_ts, -2, b"", b"", b"", self.run_n))
        self.run_n = 0

    def put(self, tuple packet, list out):
        """Append ``packet``, one ``IpPacket`` Python made of a ``slow`` record."""
        if packet[2] == -1:
            self._skip(out, packet[0], packet[1])
            return
        cdef object hit
        cdef Bypass b
        if self.bypass is not None and packet[2] == TCP:
            hit = self.armed.get(packet[3] + packet[4] + packet[5][:4])
            if hit is not None:
                b = <Bypass>hit[0]
                b.hand_on(out, packet[0], packet[1])
                b.last_seen = packet[0]
                b.off()
        self.flush(out)
        self._count(out, packet[0], packet[1])
        out.append(packet)

    def scan(self, bytearray buf, Py_ssize_t pos, Py_ssize_t end, int64_t base, int64_t zeros_from, list out):
        """Decode records of ``buf[:end]`` from ``pos`` into ``out``; return ``(pos, why it stopped)``. Every
        object put in ``out`` is a copy: the caller reads the next bytes into the same buffer."""
        cdef const unsigned char* b = <const unsigned char*>PyByteArray_AS_STRING(buf)
        if end > PyByteArray_GET_SIZE(buf):
            end = PyByteArray_GET_SIZE(buf)
        cdef const unsigned char* h
        cdef const unsigned char* d
        cdef uint32_t sec, frac, incl, orig, total, l4end, keyend
        cdef int64_t ts
        cdef Py_ssize_t stop
        cdef bint big = self.big
        cdef bint ethernet = self.ethernet
        cdef bint partitioned = self.part is not None
        cdef int proto
        cdef object key, taken
        cdef PyObject* hit
        cdef bint bypassing = self.bypass is not None
        cdef dict armed = self.armed
        if bypassing and self.bypass.stopped:  # what was passed over goes before this buffer's packets
            self.bypass.hand_on(out, self.frame, self.last_ns)
            self.bypass = None
            bypassing = False
        while True:
            if end - pos < 16:
                return pos, NEED_HEADER
            h = b + pos
            sec = _u32(h, big)
            frac = _u32(h + 4, big)
            incl = _u32(h + 8, big)
            orig = _u32(h + 12, big)
            if incl == 0 and (sec | frac | orig) == 0 and base + pos >= zeros_from:
                return pos, ZERO_HEADER
            if incl > self.max_len:
                self.incl = incl
                return pos, CORRUPT
            stop = pos + 16 + incl
            if stop > end:
                self.incl = incl
                return pos, NEED_RECORD
            if bypassing and self.in_batch >= self.batch:
                return pos, REARM  # the flow table is never more than a batch behind the packets passed over
            ts = <int64_t>sec * 1000000000 + <int64_t>frac * self.mult
            self.frame += 1
            self.in_batch += 1
            if incl < orig:
                self.truncated += 1
            if self.frame == 1:
                self.first_ns = ts
            self.last_ns = ts
            d = h + 16
            pos = stop
            if (
                ethernet and incl >= 34 and d[12] == 0x08 and d[13] == 0x00 and d[14] == 0x45
                and (d[20] & 0x3F) == 0 and d[21] == 0
            ):
                total = (<uint32_t>d[16] << 8) | d[17]
                if total >= 20:
                    l4end = 14 + total
                    if l4end > incl:
                        l4end = incl
                    proto = d[23]
                    key = None
                    if partitioned:
                        if proto == TCP or proto == UDP:
                            keyend = 38 if incl >= 38 else incl
                            if self.service is not None and keyend == 38:
                                taken = True if self._decide(d + 26) else False
                            else:
                                key = PyBytes_FromStringAndSize(<const char*>d + 26, keyend - 26)
                                hit = PyDict_GetItemWithError(self.mine, key)
                                taken = <object>hit if hit is not NULL else self.learn(key)
                        else:
                            taken = self.part(
                                proto,
                                PyBytes_FromStringAndSize(<const char*>d + 26, 4),
                                PyBytes_FromStringAndSize(<const char*>d + 30, 4),
                                PyBytes_FromStringAndSize(<const char*>d + 34, l4end - 34),
                            )
                        if not taken:
                            self._skip(out, self.frame, ts)
                            continue
                    if bypassing and proto == TCP and armed:
                        if key is None:
                            keyend = 38 if incl >= 38 else incl
                            key = PyBytes_FromStringAndSize(<const char*>d + 26, keyend - 26)
                        hit = PyDict_GetItemWithError(armed, key)
                        if hit is not NULL and self._passed_over(
                            <object>hit, d + 34, <Py_ssize_t>l4end - 34, total, self.frame, ts, out
                        ):
                            continue
                    if self.run_n:
                        self.flush(out)
                    self._count(out, self.frame, ts)
                    out.append(
                        (
                            self.frame,
                            ts,
                            proto,
                            PyBytes_FromStringAndSize(<const char*>d + 26, 4),
                            PyBytes_FromStringAndSize(<const char*>d + 30, 4),
                            PyBytes_FromStringAndSize(<const char*>d + 34, l4end - 34),
                            total - 20,
                        )
                    )
                    if self.rearm:
                        self.rearm = False
                        return pos, REARM
                    continue
            self.slow = (ts, PyBytes_FromStringAndSize(<const char*>d, incl), orig)
            return pos, SLOW
