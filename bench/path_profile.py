#!/usr/bin/env python3
"""Where ``ghostcap analyze`` spends its time on the per-message path: WebSocket → OCPP → events → keeper, and DNS.

Runs ``analyze CAPTURE --format html,json,md -q`` in-process under cProfile and prints, from the profiler's own
per-code-object entries (``pstats`` keys functions by file, line and name, so every generated ``<string>`` function
(the dataclasses' ``__init__``, fastjsonschema's validators) would collapse into one entry and lose the others'
counts): the total function calls, the total time, and the cumulative time of each root of the path with its share
of the total, then the top functions by own time. Profiled times are inflated by the profiler (most for code that
makes many small calls); the call counts are exact and repeatable.

Usage: ``python bench/path_profile.py CAPTURE [--top 30]``
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import os
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from types import CodeType

sys.path.append(str(Path(__file__).resolve().parent.parent))  # after PYTHONPATH: another checkout can be measured

# the path's entry points (none calls another): (file name ending, function qualified name)
ROOTS: tuple[tuple[str, str], ...] = (
    ("decoders/websocket.py", "WebSocketDecoder.feed"),
    ("decoders/websocket.py", "WebSocketDecoder.gap"),
    ("decoders/websocket.py", "WebSocketDecoder.close"),
    ("decoders/dns.py", "DnsDecoder.datagram"),
    ("decoders/dns.py", "DnsDecoder.close"),
    ("timeline/keeper.py", "EventKeeper.add"),
    ("timeline/keeper.py", "EventKeeper.finish"),
)


def _label(code: CodeType | str) -> str:
    if isinstance(code, str):
        return code
    return f"{code.co_filename.rsplit('/', 3)[-1]}:{code.co_firstlineno}({code.co_qualname})"


def profile(capture: str, top: int) -> None:
    from analyzer.cli import cli

    with tempfile.TemporaryDirectory() as tmp, open(os.devnull, "w") as null, contextlib.redirect_stdout(null):
        prof = cProfile.Profile()
        prof.enable()
        try:
            cli(["analyze", capture, "-o", tmp, "--format", "html,json,md", "-q"], standalone_mode=False)
        except SystemExit:  # analyze ends with its exit status
            pass
        finally:
            prof.disable()
    entries = prof.getstats()
    calls = sum(e.callcount for e in entries)
    total = max(e.totaltime for e in entries)  # the outermost entry (the cli call) holds the whole job
    print(f"total function calls: {calls:,}   profiled time: {total:.2f} s")
    path = 0.0
    for file_end, qualname in ROOTS:
        found = [
            e
            for e in entries
            if not isinstance(e.code, str) and e.code.co_filename.endswith(file_end) and e.code.co_qualname == qualname
        ]
        cum = sum(e.totaltime for e in found)
        n = sum(e.callcount for e in found)
        path += cum
        print(f"  {qualname:28} {n:>9,} calls  {cum:7.2f} s cumulative  {cum / total:6.1%}")
    print(f"  {'path (sum of the roots)':28} {'':>15}  {path:7.2f} s cumulative  {path / total:6.1%}")
    own: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    for e in entries:
        key = _label(e.code)
        own[key][0] += e.callcount
        own[key][1] += e.inlinetime
    print(f"\ntop {top} by own time (generated <string> functions summed by name):")
    for key, (n, t) in sorted(own.items(), key=lambda kv: -kv[1][1])[:top]:
        print(f"  {t:6.3f} s {int(n):>9,}  {key}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("capture")
    p.add_argument("--top", type=int, default=30)
    args = p.parse_args(argv)
    profile(args.capture, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
