"""Budgets, named in one place: how much state reading one capture may hold (the packet layer), and how much of a
big capture a report carries.

A budget bounds memory and time on hostile or damaged captures (SYN floods, endless out-of-order segments,
fragment storms); a normal capture never reaches one. Reaching a budget is never silent: the excess is given up in a
documented way (a gap, a dropped fragment, a flow summarised early), counted, and reported as a capture warning.
Suricata calls these memcaps with an exception policy; Zeek ends idle connections by inactivity timeouts.

``Budgets`` holds every limit with its default; pass another ``Budgets`` to ``FlowTable`` / ``IpDecoder`` (or
``Capture``) to change them. Stdlib only, importable from every layer.

Reports: a report's size is bounded by the chargers and their failures, not by the capture's length (report
contract, ``../shared/spec/report-json.md``). Small captures are below every budget and are reported whole.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Budgets:
    """Fields:

    - ``live_flows``: flows (TCP, UDP, other) kept live at once. Past it, the least recently active flows are
      finished early (their summary and ``flow_end`` as for an idle timeout) and released, a tenth of the budget
      at a time (which amortises the sort that finds them); a later packet of such a flow starts a new flow.
    - ``ooo_bytes_per_direction``: out-of-order bytes one TCP direction may buffer while waiting for a hole.
    - ``ooo_segments_per_direction``: out-of-order segments one TCP direction may buffer (each costs memory
      beyond its bytes: 40,000 one-byte segments are 40 KB of data and several MB of objects).
    - ``ooo_bytes_total``: out-of-order bytes all TCP directions together may buffer.
      Past any of the three, the hole before the buffered data is given up as a gap
      (``GapReason.BUFFER_LIMIT``) and the data after it delivered.
    - ``fragments_per_datagram``: IP fragments kept for one datagram (64 KiB over a 576-byte MTU is 119); more are
      dropped and counted.
    - ``datagrams_in_flight``: IP datagrams waiting for missing fragments at once; past it the oldest is dropped.
    - ``fragment_bytes_in_flight``: fragment bytes waiting at once; past it the oldest datagrams are dropped.
    - ``remembered_conversations``: ended TCP/UDP conversations remembered for Wireshark's stream numbers
      (``analyzer.flows.streams``: a later packet of one continues its ``tcp.stream``/``udp.stream``); past it the
      oldest tenth is forgotten, and stream numbers from then on may differ from Wireshark's.
    """

    live_flows: int = 100_000
    ooo_bytes_per_direction: int = 4 << 20
    ooo_segments_per_direction: int = 4096
    ooo_bytes_total: int = 256 << 20
    fragments_per_datagram: int = 128
    datagrams_in_flight: int = 4096
    fragment_bytes_in_flight: int = 32 << 20
    remembered_conversations: int = 1_000_000


DEFAULT_BUDGETS = Budgets()


# -- reports --------------------------------------------------------------------------------------------------------
# the JSON report's timeline: every event up to this many; beyond, the events the findings, their evidence and the
# attempts' boundaries point to, with their neighbours (``timeline_complete: false``, ``timeline_omitted``)
TIMELINE_FULL_EVENTS = 5_000
TIMELINE_CONTEXT = 2  # events kept on each side of a pointed-to event, within its charger's events
# decoded OCPP messages listed per charger (the rest are counted in ``ocpp_messages_omitted``)
OCPP_MESSAGES_PER_CHARGER = 500
OCPP_MESSAGES_PER_CHARGER_BIG = 40  # when the timeline is bounded: the messages around the findings first
OCPP_MESSAGES_HEALTHY_BIG = 6  # ... and for a healthy charger then (its verdict rests on the session working)
# clock samples listed per charger (small captures, big ones)
CLOCK_SAMPLES = 50
CLOCK_SAMPLES_BIG = 8
# attempts listed per charger before the identical ones are counted instead
ATTEMPTS_SHOWN = 50
# HTML: chargers drawn in full (plots, message sequence, tables), failing ones first; the others are one row each
HTML_DETAILED_CHARGERS = 25
# HTML plots: skeletons kept per kind of plot (timeline, message sequence), each drawn once per distinct shape and
# filled with each capture's texts (``analyzer.report.svg``: ``timelines``, ``ladders``); a timeline plot of more
# events than ``REPORT_PLOT_SHAPE_EVENTS`` is drawn each time instead (a big capture's plot is seldom shared, and
# its key is big)
REPORT_PLOT_SHAPES = 256
REPORT_PLOT_SHAPE_EVENTS = 500
# the report's time texts remembered with the time each was written from, so the HTML page reads them back without
# parsing (``analyzer.report.times``); emptied when full
REPORT_TIME_TEXTS = 8192
# texts a report page's ``{{ }}`` remembers written (``analyzer.report.page.shown``), up to this many characters
# each, per process: nine in ten of a page's texts recur across a fleet's pages (verdicts, layers, the CSMS); the
# memory is emptied when it holds ``REPORT_SHOWN_TEXTS``
REPORT_SHOWN_TEXTS = 4096
REPORT_SHOWN_LONGEST = 100
# Markdown: findings and evidence rows per failing charger (a page at most), chargers named per verdict group
MD_EVIDENCE_ROWS = 12
MD_FINDINGS = 10
MD_NAMES_PER_GROUP = 20
# diagnosis: a capture without OCPP and without a CSMS name is read as a capture taken at one charger (its clients
# are the charger) only while it has at most this many client addresses; past it (a gateway, a SYN flood) none is
# guessed and the report says to name the CSMS with --csms
GUESSED_CHARGERS = 8

# ``analyze --workers auto`` (the default): a capture file of at least this many bytes is read by as many processes
# as the machine gives this one cores, at most ``AUTO_WORKERS``; a smaller one by one (measured on this project's
# 2-core VM, the whole job with one process and with two: 13 MB of gateway capture 0.87 → 0.72 s, 31 MB 1.08 →
# 0.92 s, 59 MB 2.3 → 1.7 s; 3 MB 0.43 → 0.48 s and an 11 KB lab capture 0.33 → 0.36 s: starting a process is
# not paid back)
AUTO_WORKERS_BYTES = 8 << 20
AUTO_WORKERS = 4

# -- what analyze keeps while reading (``analyzer.timeline.keeper``) --------------------------------------------------
# a flow holding this many events has the routine middle of it thinned (complete clean OCPP exchanges, answered
# pings), keeping its first and last ``FLOW_EVENTS_EDGE`` events; past ``FLOW_EVENTS_HARD`` only the first event of
# each kind of message in the middle is kept
FLOW_EVENTS_THIN = 500
FLOW_EVENTS_EDGE = 100
FLOW_EVENTS_HARD = 3_000
# a thinned connection's clock readings: the offsets (clock minus capture time) of the samples its thinning drops are
# kept per side for the clock analysis's medians, this many at most; past it every other one goes and only every
# other one from then on is taken (a sample spread evenly over the connection: 16 KB a side, under what its two
# edges of events hold)
CLOCK_OFFSETS_PER_FLOW = 2_048
# finished flows without HTTP/WebSocket/OCPP waiting to be judged (kept if a charger's, released if background)
PENDING_FLOWS = 5_000

# the cyclic garbage collector while a capture is read, diagnosed and reported (``ghostcap analyze``): a young
# generation of 700 objects (CPython's default) makes it walk every live object again and again while millions of
# short-lived ones come and go; this many is cheaper (measured on the 1M-packet gateway capture: 46 s CPU with the
# default, 29 s with 50,000 while reading; with 200,000 while reading and after, the collector's own time 2.1 s →
# 0.1 s of the job's 21 s, peak memory 194 → 196 MiB). Cycles still go: past it, not after every 700 objects
GC_THRESHOLDS = (200_000, 50, 50)
# ... and while a capture is read (``engine.read_capture``), a young generation this large: what reading leaves
# alive grows past 200,000 objects only with what the keeper holds, which a collection walks for nothing (the 1M
# gateway capture: 350k at the most with one process, 200k and 213k in a partition of the 1M and 2M captures, each
# collection of them 0.14 s; 692 objects in cycles at the end of a partition's reading, measured with the collector
# off). Cyclic garbage, were a capture to make any, is still collected past it. At the end of the reading, what is
# alive goes to the oldest generation unwalked (``engine._age_survivors``) before the thresholds drop back
GC_READING_THRESHOLDS = (500_000, 50, 50)
# ``ghostcap timeline``: events held to put the output in frame order (a connection's end comes when it ends)
TIMELINE_REORDER = 20_000
# analyze: the distinct names and servers the event keeper remembers: the addresses of the latest lookups (a CSMS
# name's are never forgotten), and released lookups and connections counted by name or server (past it they are
# counted together); a gateway looking up 300,000 distinct names held 100 MB in these before
KEEPER_NAMES = 10_000
# ``analyze --workers``: TCP/UDP conversations whose partition each process remembers, an entry per direction
# (forgotten all at once when full; a forgotten one is hashed again: a few thousand live conversations, once per
# clearing). 1 << 16 held 5 MiB more in each process at its peak on the 1M and 2M gateway captures, and grew from one
# to the other
PARTITION_CONVERSATIONS = 1 << 14
# ``analyze --workers``: events per piece of a part sent to the parent (the process pickles the next piece while the
# parent unpickles this one; a piece's pickle is its only copy in flight)
PART_PIECE_EVENTS = 8192
# DNS messages whose parse is remembered (keyed by their bytes after the id): a gateway repeats the same lookups
DNS_PARSE_CACHE = 1024

# fleet triage: failures with one CSMS-side signature are one incident while their time windows (failure point to
# capture end) are no further apart than this
INCIDENT_GAP_S = 6 * 3600
# fleet triage: the store commits after this many captures or seconds, whichever comes first (a commit per capture
# cost the supervisor CPU that two workers on two cores need); a killed supervisor loses at most these, and the
# next run analyses them again
TRIAGE_COMMIT_CAPTURES = 64
TRIAGE_COMMIT_S = 1.0
# captures a local triage worker holds: at least TRIAGE_WORKER_QUEUE, the one it analyses and the next, already in
# its pipe, so it never waits for the supervisor between two; more while its captures are quick, about
# TRIAGE_WORKER_QUEUE_S of work by the times of its last ones, at most TRIAGE_WORKER_QUEUE_MAX (a capture given to
# a worker that dies or is killed is given to another; at the end of a batch at most these wait behind a slow one)
TRIAGE_WORKER_QUEUE = 2
TRIAGE_WORKER_QUEUE_S = 0.05
TRIAGE_WORKER_QUEUE_MAX = 16
# a local triage worker sends the outcomes of its captures together: when the first it holds back is this old, or
# when it has nothing left to analyse (one message, one wake-up of the supervisor, for several quick captures; a
# slow capture's outcome goes alone, at once)
TRIAGE_ANSWER_S = 0.02
# TLS hellos whose JA3/JA4 fingerprints are remembered, per process (``decoders.tls_fingerprint``): a fleet's
# chargers and a gateway's downloads send a handful of hello shapes
FINGERPRINT_CACHE = 256
# TLS sessions remembered, per process, as having set up their keys before their secrets were known
# (``tls.keylog.KeyLog.miss``), so that secrets a Decryption Secrets Block brings later are said to have come late,
# not to be wrong: a gateway capture without keys has one per TLS connection; past this they are counted, not kept
LATE_SECRETS_SESSIONS = 4096
# idle sweeps of the flow table (one every ``flows.table.SWEEP_EVERY`` packets, 32,768) between two returns of the
# C heap's free pages to the system (``analyzer.heap``: about 2 ms each): what a long capture frees is given back
TRIM_EVERY_SWEEPS = 4
# bytes read at a time to hash a capture (its sha256 names it in reports and the triage store): below the size
# malloc serves with mmap, so the thousands of small files of a triage batch do not each map and unmap a buffer
HASH_BLOCK = 64 << 10
# a capture of this size or more is hashed by a process of its own while it is read (``engine.sha256_meanwhile``),
# a smaller one in a thread: about 10 ms to start a process against about 23 ms to hash this much (1.4 GB/s)
HASH_PROCESS_BYTES = 32 << 20
# how much lower the priority of that process is when a capture is read by several (``analyze --workers``): it
# starts once one of them has read its part, and takes the CPU that the rest of the job leaves free (a process
# at nice 10 gets about a tenth of a core that a busy one wants too, never nothing: other load cannot stop it)
HASH_NICE = 10
# --verify: the frames tshark is asked about (a root cause and its evidence; per charger, and per capture in all),
# and how long one tshark run (through pyshark) may take before it is killed and the verification given up
VERIFY_FRAMES_PER_CHARGER = 16
VERIFY_FRAMES = 256
VERIFY_TIMEOUT_S = 120.0
VERIFY_PROBE_TIMEOUT_S = 10.0  # ``tshark -v``
VERIFY_REAP_TIMEOUT_S = 10.0  # a killed tshark to exit
# --charger: chargers named in the one-line message for a charger the capture does not have
CHARGERS_NAMED = 20
# OCPP message ids one connection remembers per direction and table (duplicate ids, answered CALLs, sent
# CALLRESULTs): a long session's memory stops growing here (4096 kept a day-long gateway capture growing: 300
# sessions, six tables each)
OCPP_IDS_REMEMBERED = 128
# OCPP timestamp texts remembered with the time each names (``decoders.ocpp.parse_timestamp_ns``), per process;
# emptied when full; a text longer than ``OCPP_TIMESTAMP_LONGEST`` characters is never kept (``2024-05-14T07:59:41.
# 123456789+01:00`` has 35)
OCPP_TIMESTAMPS = 4096
OCPP_TIMESTAMP_LONGEST = 40
# ``analyze``'s JSON report is written as it is made (``report.writer.write_json_report``), about this many
# characters at a time: the 1M-packet gateway capture's 6 MB report took 33 MiB at the peak of making it whole, and
# takes 2 MiB so (and 0.075 s where making it whole and writing it took 0.11)
WRITE_CHUNK = 1 << 18
