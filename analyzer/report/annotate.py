"""``ghostcap analyze --annotate OUT.pcapng``: the capture written back as pcapng, with ghostcap's verdict as a
packet comment on every frame a finding or its evidence names, so Wireshark shows it on the frames themselves
(``tshark -r OUT.pcapng -Y frame.comment``).

A second pass over the input, one packet at a time (nothing held): every packet is copied with its timestamp
(nanoseconds), link type, captured bytes and original length; frame N of the output is frame N of the input. Not
copied: interface names and statistics, name resolution blocks, comments the input had, and Decryption Secrets
Blocks (no secret in any output: give Wireshark the key log). The comments come from the report, so they carry
its redaction.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analyzer import __version__
from analyzer.capture.container import CaptureReader
from analyzer.capture.pcapng_writer import PcapngWriter
from analyzer.capture.source import open_source
from analyzer.diagnosis.catalogue import SIDE_WORDS, cx_label
from analyzer.errors import OutputError
from analyzer.report.dispatch import dispatch, fault_words


@dataclass(slots=True)
class Annotated:
    """What ``write_annotated`` wrote: ``packets``, ``commented`` (frames with a comment), ``warnings``."""

    path: str
    packets: int
    commented: int
    warnings: list[str] = field(default_factory=list)


def frame_notes(report: dict[str, Any]) -> dict[int, list[str]]:
    """frame → the comments it gets: each charger's root cause (fault, its meaning, verdict, CX code, who acts)
    and its evidence, then the other findings, warnings and undecided findings, in the report's order."""
    notes: dict[int, list[str]] = {}

    def add(frame: int | None, note: str) -> None:
        if frame:
            notes.setdefault(frame, []).append(note)

    for ch in report.get("chargers") or []:
        who = ch.get("id") or ch.get("address")
        rc = ch.get("root_cause")
        if rc:
            d = dispatch(ch) or {}
            add(
                rc["frame"],
                f"ghostcap {who}: ROOT CAUSE {rc['fault']}: {d.get('words')}. Verdict: {ch.get('verdict')}. "
                f"{d.get('cx') or 'No CX code'}. {d.get('line')}",
            )
            for ev in rc.get("evidence") or []:
                add(
                    ev["frame"],
                    f"ghostcap {who}: evidence for {rc['fault']} (root cause, frame {rc['frame']}): {ev['what']}",
                )
        for kind in ("findings", "warnings", "undecided"):
            for f in ch.get(kind) or []:
                label = {"findings": f.get("severity") or "finding", "warnings": "warning", "undecided": "undecided"}
                side = SIDE_WORDS.get(f.get("fix_side") or "", f.get("fix_side"))
                add(
                    f["frame"],
                    f"ghostcap {who}: {label[kind]} {f['fault']}: {fault_words(f['fault'])}. "
                    f"{cx_label(f.get('cx_code')) or 'No CX code'}. Who acts: {side}.",
                )
    return notes


def write_annotated(capture: str, report: dict[str, Any], out: str | Path) -> Annotated:
    """Read ``capture`` again and write it to ``out`` (atomically: a temporary file beside it, then renamed) with
    the comments of ``frame_notes(report)``. ``OutputError`` when ``out`` cannot be written."""
    notes = frame_notes(report)
    path = Path(out)
    if path.is_dir():
        raise OutputError(f"--annotate {out}: is a directory, not a file name")
    with contextlib.suppress(OSError):
        if path.exists() and os.path.samefile(path, capture):
            raise OutputError(f"--annotate {out}: is the capture itself; name another file")
    tmp = path.with_name(f".{path.name}.tmp")
    reader = CaptureReader(open_source(capture))
    try:
        with open(tmp, "wb") as f:
            writer = PcapngWriter(f, f"ghostcap {__version__}")
            frame = 0
            for batch in reader.batches():
                for ts, lt, data, orig in batch:
                    frame += 1
                    writer.packet(ts, lt, data, orig, notes.get(frame, ()))
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise OutputError(f"--annotate {out}: cannot write: {e.strerror or e}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise
    finally:
        reader.close()
    warnings = []
    expected = report.get("capture", {}).get("packets")
    if expected is not None and writer.packets != expected:
        warnings.append(f"the capture gave {writer.packets} packets on the second reading, {expected} on the first")
    if writer.clamped:
        warnings.append(f"{writer.clamped} timestamps outside what pcapng holds were written as the nearest it can")
    missing = sorted(fr for fr in notes if fr > writer.packets)
    if missing:
        warnings.append(f"frames {', '.join(map(str, missing[:5]))} named by the report are not in the capture")
    return Annotated(str(path), writer.packets, writer.commented, warnings)
