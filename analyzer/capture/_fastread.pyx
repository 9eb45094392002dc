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
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_GetItemWithError
from cpython.ref cimport PyObject
from libc.stdint cimport int64_t, uint32_t

ABI = 3  # bumped when the interface with analyzer.capture.compiled changes

# what stopped ``scan``
NEED_HEADER = 0  # fewer than 16 bytes left in the buffer
ZERO_HEADER = 1  # an all-zero record header at or after ``zeros_from``
CORRUPT = 2  # captured length > max_len (``incl``)
NEED_RECORD = 3  # the record runs past the buffer (``incl``)
SLOW = 4  # a record off the fast path, counted and consumed: ``slow`` = (ts_ns, data, orig_len)

cdef enum:
    TCP = 6
    UDP = 17


cdef inline uint32_t _u32(const unsigned char* p, bint big) noexcept nogil:
    if big:
        return (<uint32_t>p[0] << 24) | (<uint32_t>p[1] << 16) | (<uint32_t>p[2] << 8) | <uint32_t>p[3]
    return (<uint32_t>p[3] << 24) | (<uint32_t>p[2] << 16) | (<uint32_t>p[1] << 8) | <uint32_t>p[0]


cdef class PcapScanner:
    """The per-record state of one pcap file: frames read, truncated records, first and last timestamps."""

    cdef readonly int64_t frame
    cdef readonly int64_t truncated
    cdef readonly int64_t first_ns
    cdef readonly int64_t last_ns
    cdef readonly uint32_t incl
    cdef readonly object slow
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

    def __init__(
        self, bint big_endian, int64_t mult, bint ethernet, uint32_t max_len, object part=None, int64_t sweep_every=0
    ):
        self.big = big_endian
        self.mult = mult
        self.ethernet = ethernet
        self.max_len = max_len
        self.part = part
        if part is not None:
            self.mine = part.mine
            self.learn = part.learn
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

    cdef inline int _skip(self, list out, int64_t frame, int64_t ts) except -1:
        self.items += 1
        if not self.sweep_every:
            out.append((frame, ts, -1, b"", b"", b"", 0))
            return 0
        self.run_n += 1
        self.run_frame = frame
        self.run_ts = ts
        if self.items % self.sweep_every == 0:
            self.flush(out)
        return 0

    cpdef flush(self, list out):
        """Append the run of skipped packets not yet appended (before ``out`` is handed on)."""
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
        self.flush(out)
        self.items += 1
        out.append(packet)

    def scan(self, bytes buf, Py_ssize_t pos, int64_t base, int64_t zeros_from, list out):
        """Decode records of ``buf`` from ``pos`` into ``out``; return ``(pos, why it stopped)``."""
        cdef const unsigned char* b = <const unsigned char*>PyBytes_AS_STRING(buf)
        cdef Py_ssize_t end = PyBytes_GET_SIZE(buf)
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
            ts = <int64_t>sec * 1000000000 + <int64_t>frac * self.mult
            self.frame += 1
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
                    if partitioned:
                        if proto == TCP or proto == UDP:
                            keyend = 38 if incl >= 38 else incl
                            key = PyBytes_FromStringAndSize(<const char*>d + 26, keyend - 26)
                            hit = PyDict_GetItemWithError(self.mine, key)
                            if hit is NULL:
                                taken = self.learn(key)
                            else:
                                taken = <object>hit
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
                    if self.run_n:
                        self.flush(out)
                    self.items += 1
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
                    continue
            self.slow = (ts, PyBytes_FromStringAndSize(<const char*>d, incl), orig)
            return pos, SLOW
