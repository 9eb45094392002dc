"""The one tshark run of ``--verify``: dissect the frames a verdict rests on, through pyshark.

One ``pyshark.FileCapture`` per capture, with a display filter naming only those frames (tshark still reads the
whole capture, so TLS decryption and TCP reassembly see every packet), ``keep_packets=False``, the key log as
``tls.keylog_file`` and ``decode_as`` for the CSMS ports that are not HTTP's or TLS's own. The run is bounded:
``tshark -v`` by ``VERIFY_PROBE_TIMEOUT_S``, the dissection by ``VERIFY_TIMEOUT_S`` (then tshark is killed), and
the tshark process is always closed, whatever happens. pyshark and its event loop are private to each call, so
calls in several threads do not meet.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analyzer.budgets import VERIFY_PROBE_TIMEOUT_S, VERIFY_REAP_TIMEOUT_S, VERIFY_TIMEOUT_S
from analyzer.errors import AnalyzerError
from analyzer.verify.compare import Layer

# every Wireshark field ``compare`` reads: only these are taken from pyshark's packets
TSHARK_FIELDS = (
    "dns.qry.name",
    "dns.qry.type",
    "dns.flags.rcode",
    "dns.a",
    "dns.aaaa",
    "tcp.flags.syn",
    "tcp.flags.ack",
    "tcp.flags.fin",
    "tcp.flags.reset",
    "icmp.type",
    "icmp.code",
    "icmpv6.type",
    "icmpv6.code",
    "tls.handshake.type",
    "tls.handshake.extensions_server_name",
    "tls.handshake.extensions.supported_version",
    "tls.handshake.version",
    "tls.alert_message.desc",
    "tls.record.content_type",
    "http.request.method",
    "http.response.code",
    "websocket.opcode",
    "websocket.payload.close.status_code",
    "websocket.payload.text",
)
INSTALL_HINT = "pip install 'ghostcap[verify]'"


class VerifyUnavailable(AnalyzerError):
    """tshark or pyshark cannot be used here (one sentence: which, and what to do)."""


class VerifyFailed(AnalyzerError):
    """The tshark run did not give a dissection (it timed out, or could not read the capture)."""


@dataclass(frozen=True, slots=True)
class Tshark:
    """The tshark found: its ``path``, ``version`` (``4.0.17``) and ``title`` (``tshark 4.0.17``)."""

    path: str
    version: str
    title: str

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])


def find_tshark(timeout_s: float = VERIFY_PROBE_TIMEOUT_S) -> Tshark:
    """The tshark on PATH and its version; ``VerifyUnavailable`` when there is none, it does not answer
    ``tshark -v`` in time, or pyshark is not installed."""
    path = shutil.which("tshark")
    if path is None:
        raise VerifyUnavailable("tshark not found on PATH (install Wireshark's tshark)")
    try:
        import pyshark  # noqa: F401 - only to know it is there
    except ImportError:
        raise VerifyUnavailable(f"pyshark is not installed ({INSTALL_HINT})") from None
    try:
        proc = subprocess.run(
            [path, "-v"], capture_output=True, text=True, errors="replace", timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired:
        raise VerifyUnavailable(f"{path} -v did not answer within {timeout_s:g} s") from None
    except OSError as e:
        raise VerifyUnavailable(f"{path} cannot be run: {e.strerror or e}") from None
    m = re.search(r"(\d+)\.(\d+)\.(\d+)", proc.stdout.partition("\n")[0])
    if proc.returncode != 0 or m is None:
        raise VerifyUnavailable(f"{path} -v did not say which tshark it is")
    return Tshark(path, m.group(0), f"tshark {m.group(0)}")


def frame_filter(frames: Sequence[int], tshark_major: int = 4) -> str:
    """``frame.number in {8,10,12}`` (Wireshark 4 set syntax; ``||`` for older tsharks)."""
    ordered = sorted(set(frames))
    if tshark_major >= 4:
        return "frame.number in {" + ",".join(map(str, ordered)) + "}"
    return " || ".join(f"frame.number == {f}" for f in ordered)


def dissect(
    tshark: Tshark,
    capture: str | Path,
    frames: Sequence[int],
    decode_as: Mapping[str, str] | None = None,
    keylog_files: Sequence[str] = (),
    timeout_s: float = VERIFY_TIMEOUT_S,
) -> dict[int, list[Layer]]:
    """tshark's layers (``TSHARK_FIELDS`` only) of ``frames`` of ``capture``: frame → layers, outermost first.

    ``decode_as``: ``{"tcp.port==9412": "tls", "tls.port==9412": "http"}``; ``keylog_files``: NSS key logs
    (several are joined in a private temporary file, removed afterwards). ``VerifyFailed`` (one sentence) when tshark
    times out (it is killed) or fails."""
    if not frames:
        return {}
    with _keylog(keylog_files) as keylog:
        loop = asyncio.new_event_loop()
        out: dict[int, list[Layer]] = {}
        cap: Any = None
        failed: BaseException | None = None
        try:
            cap = _capture_class(tshark)(
                str(capture),
                keep_packets=False,
                display_filter=frame_filter(frames, tshark.major),
                decode_as=dict(decode_as or {}) or None,
                override_prefs={"tls.keylog_file": keylog} if keylog else None,
                tshark_path=tshark.path,
                eventloop=loop,
            )
            cap.apply_on_packets(_collector(out), timeout=timeout_s)
        except TimeoutError:
            failed = VerifyFailed(f"tshark did not finish within {timeout_s:g} s (it was stopped)")
        except Exception as e:  # noqa: BLE001 - pyshark raises its own types for a tshark that failed
            failed = e
        finally:
            _close(cap, loop)  # also reads the rest of tshark's standard error
    if isinstance(failed, VerifyFailed):
        raise failed
    if failed is not None:
        said = getattr(cap, "_last_error_line", None)  # tshark's own last word, when pyshark read it
        raise VerifyFailed(f"tshark failed: {_one_line(said or failed)}")
    return out


def _collector(out: dict[int, list[Layer]]) -> Callable[[Any], None]:
    def take(pkt: Any) -> None:
        number = int(pkt.frame_info.get_field("frame.number") or pkt.number)
        layers: list[Layer] = []
        for layer in pkt.layers:
            fields: dict[str, list[str]] = {}
            exact = getattr(layer, "_all_fields", None)  # pyshark's XML layer: full field name → its values
            for name in TSHARK_FIELDS:
                got = exact.get(name) if isinstance(exact, dict) else layer.get_field(name)
                if got is not None:
                    fields[name] = [str(f.show) for f in got.all_fields if f.show is not None]
            layers.append((str(layer.layer_name), fields))
        out[number] = layers

    return take


def _capture_class(tshark: Tshark) -> Any:
    """pyshark's ``FileCapture`` knowing ``tshark``'s version (pyshark would run ``tshark -v`` again, unbounded),
    remembering every tshark process it starts (pyshark forgets a process it could not reap within its own 1 s),
    and letting a tshark that reached the end of its output exit by itself."""
    import pyshark
    from packaging import version

    known = version.parse(tshark.version)

    class Capture(pyshark.FileCapture):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.started: list[Any] = []
            super().__init__(*args, **kwargs)

        def _get_tshark_version(self) -> Any:
            return known

        def _created_new_process(self, parameters: Any, process: Any, process_name: str = "TShark") -> None:
            self.started.append(process)
            super()._created_new_process(parameters, process, process_name)

        async def _cleanup_subprocess(self, process: Any) -> None:
            # tshark exits by itself once its output is read: let it, instead of killing a process that may have
            # exited already (``kill`` polls, and reaps it under the asyncio child watcher's feet)
            if self._eof_reached and process.returncode is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(process.wait(), VERIFY_REAP_TIMEOUT_S)
            await super()._cleanup_subprocess(process)

    return Capture


def _close(cap: Any, loop: asyncio.AbstractEventLoop) -> None:
    """Close ``cap``, kill and reap every tshark it started (``VERIFY_REAP_TIMEOUT_S`` each), close the loop."""
    try:
        if cap is not None:
            with contextlib.suppress(Exception):
                cap.close()
            for proc in getattr(cap, "started", ()):
                if proc.returncode is None:
                    with contextlib.suppress(ProcessLookupError, OSError):
                        proc.kill()
                    with contextlib.suppress(Exception):
                        loop.run_until_complete(asyncio.wait_for(proc.wait(), VERIFY_REAP_TIMEOUT_S))
            cap._running_processes.clear()  # all reaped above: nothing left for pyshark's __del__ to close
    finally:
        with contextlib.suppress(Exception):
            loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


@contextlib.contextmanager
def _keylog(files: Sequence[str]) -> Any:
    """The one key log file tshark reads: the given one, or several joined in a private temporary file."""
    if len(files) <= 1:
        yield files[0] if files else None
        return
    fd, path = tempfile.mkstemp(prefix="ghostcap-keys-", suffix=".txt")
    try:
        with os.fdopen(fd, "wb") as out:
            for f in files:
                data = Path(f).read_bytes()
                out.write(data if data.endswith(b"\n") or not data else data + b"\n")
        yield path
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


def _one_line(e: BaseException | str) -> str:
    """A tshark or pyshark complaint in one line, without the command line pyshark adds."""
    text = " ".join(str(e).split()).partition(" (command ran: ")[0].partition(" Last error line: ")[0]
    return (text[:200] or type(e).__name__).removeprefix("tshark: ").rstrip(".")
