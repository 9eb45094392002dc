"""``digest.file_sha256``: the digest of the file as stored, read in ``HASH_BLOCK`` pieces into one buffer."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from analyzer.budgets import HASH_BLOCK, HASH_PROCESS_BYTES
from analyzer.digest import file_sha256
from tests.procs import alive, children, command_line


@pytest.mark.parametrize("size", [0, 1, HASH_BLOCK - 1, HASH_BLOCK, HASH_BLOCK + 1, 3 * HASH_BLOCK + 7])
def test_digest_of_every_size_around_the_block(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    p = tmp_path / "x.pcap"
    p.write_bytes(data)
    assert file_sha256(p) == hashlib.sha256(data).hexdigest()


def test_no_digest_of_a_pipe(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert file_sha256(fifo) is None
    assert file_sha256("-") is None


def test_a_digest_known_already_is_not_computed_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """``ghostcap triage`` hashed every capture before giving it to a worker: ``analyze(sha256=...)`` takes it, with
    no second reading and no thread for it."""
    from analyzer import engine

    capture = Path(__file__).resolve().parents[1] / "captures" / "tcp_refused.pcap"

    def no_thread(path: object) -> object:
        raise AssertionError("hashed again")

    monkeypatch.setattr(engine, "sha256_meanwhile", no_thread)
    known = hashlib.sha256(capture.read_bytes()).hexdigest()
    assert engine.analyze(capture, sha256=known).sha256 == known
    monkeypatch.undo()
    assert engine.analyze(capture).sha256 == known  # without it, computed as before


def _big_sparse(tmp_path: Path, size: int) -> Path:
    p = tmp_path / "big.pcap"
    with open(p, "wb") as f:
        f.write(b"head")
        f.truncate(size)  # a hole: no disk, read back as zeros
    return p


def test_a_big_capture_is_hashed_by_a_process_of_its_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """From ``HASH_PROCESS_BYTES`` on, the digest is a process's (not a thread's: it took the GIL back after
    each block), and it is the same digest."""
    from analyzer import engine

    p = _big_sparse(tmp_path, HASH_PROCESS_BYTES + 5)
    monkeypatch.setattr(engine.threading, "Thread", None)  # no thread made for it
    assert engine.sha256_meanwhile(p)() == file_sha256(p)
    small = tmp_path / "small.pcap"
    small.write_bytes(b"x" * 1000)
    monkeypatch.undo()
    monkeypatch.setattr(engine.subprocess, "Popen", None)  # and a small one is hashed without a process
    assert engine.sha256_meanwhile(small)() == hashlib.sha256(b"x" * 1000).hexdigest()


def test_the_hashing_process_says_why_a_file_cannot_be_read(tmp_path: Path) -> None:
    from analyzer.engine import _sha256_process

    wait = _sha256_process(tmp_path)  # a directory
    assert wait is not None
    with pytest.raises(OSError, match=r"^Is a directory$"):
        wait()


def test_the_hashing_process_ends_when_its_parent_is_killed(tmp_path: Path) -> None:
    """``analyze`` killed while a big capture is hashed: the hashing stops too, within a block (1 MiB)."""
    p = _big_sparse(tmp_path, 16 << 30)  # 16 GiB of hole: about 12 s to hash at 1.4 GB/s
    code = (
        "import sys, time\nfrom analyzer.engine import sha256_meanwhile\nwait = sha256_meanwhile(sys.argv[1])\n"
        "print('started', flush=True)\ntime.sleep(60)\n"
    )
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen([sys.executable, "-c", code, str(p)], cwd=root, stdout=subprocess.PIPE)
    with proc.stdout:  # type: ignore[union-attr]
        try:
            assert proc.stdout.readline() == b"started\n"  # type: ignore[union-attr]
            hashing = children(proc.pid)
            assert len(hashing) == 1
        finally:
            proc.kill()
            proc.wait()
    deadline = time.monotonic() + 10
    while alive(hashing[0]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(hashing[0])


def test_a_digest_nobody_waits_for_ends_its_process(tmp_path: Path) -> None:
    """The capture could not be read, so its digest is never asked for: the process hashing it is ended when the
    function that would have waited for it goes."""
    import gc

    from analyzer.engine import _sha256_process

    big = _big_sparse(tmp_path, 16 << 30)
    wait = _sha256_process(big)
    assert wait is not None
    (hashing,) = [c for c in children(os.getpid()) if os.fsencode(big) in command_line(c)]
    assert alive(hashing)
    del wait
    gc.collect()
    assert not alive(hashing)


def _hashing_pid(path: Path) -> int:
    (pid,) = [c for c in children(os.getpid()) if os.fsencode(path) in command_line(c)]
    return pid


def test_a_deferred_digest_waits_to_be_told_then_hashes_at_a_lower_priority(tmp_path: Path) -> None:
    """``analyze --workers``: the process starts hashing only once told (``go``), at ``HASH_NICE``."""
    from analyzer.budgets import HASH_NICE
    from analyzer.engine import _sha256_process

    p = tmp_path / "x.pcap"
    data = os.urandom(3 * HASH_BLOCK + 5)
    p.write_bytes(data)
    hashing = _sha256_process(p, deferred=True)
    assert hashing is not None
    pid = _hashing_pid(p)
    deadline = time.monotonic() + 10
    while os.getpriority(os.PRIO_PROCESS, pid) != os.getpriority(os.PRIO_PROCESS, 0) + HASH_NICE:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    time.sleep(0.3)
    assert hashing.proc.poll() is None  # waiting for its word: a small file would be hashed in a millisecond
    hashing.go()
    hashing.proc.wait(10)
    hashing.go()  # again, after its end: nothing
    assert hashing() == hashlib.sha256(data).hexdigest()


def test_a_deferred_digest_waited_for_starts_by_itself(tmp_path: Path) -> None:
    from analyzer.engine import _sha256_process

    p = tmp_path / "x.pcap"
    p.write_bytes(b"abc")
    hashing = _sha256_process(p, deferred=True)
    assert hashing is not None
    assert hashing() == hashlib.sha256(b"abc").hexdigest()


def test_a_process_forked_after_it_can_tell_a_deferred_digest_to_start(tmp_path: Path) -> None:
    """A partition's process, forked after the hashing one, tells it when it has read its part."""
    from analyzer.engine import _sha256_process

    p = tmp_path / "x.pcap"
    p.write_bytes(b"abc")
    hashing = _sha256_process(p, deferred=True)
    assert hashing is not None
    child = os.fork()
    if child == 0:
        hashing.go()
        os._exit(0)
    os.waitpid(child, 0)
    hashing.proc.wait(10)  # it ended without a word from here
    assert hashing.proc.returncode == 0
    assert hashing() == hashlib.sha256(b"abc").hexdigest()


def test_analyze_with_workers_starts_the_digest_once_a_part_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``analyze --workers 2`` of a big capture: the digest is deferred, and told to start by the parent and by the
    process of the other partition, each once it has read its part; the report names the right digest."""
    from analyzer import engine, parallel

    capture = Path(__file__).resolve().parents[1] / "captures" / "tcp_refused.pcap"
    log = tmp_path / "log"  # appended to by both processes: "<what> <pid>" lines, in the order they happened

    def say(what: str) -> None:
        with open(log, "a") as f:
            f.write(f"{what} {os.getpid()}\n")

    made: list[bool] = []
    real = engine._sha256_process

    def spy(path: object, deferred: bool = False) -> object:
        hashing = real(path, deferred)  # type: ignore[arg-type]
        made.append(deferred)
        go = hashing.go  # type: ignore[union-attr]

        def go_and_say() -> None:
            say("go")
            go()

        hashing.go = go_and_say  # type: ignore[union-attr,method-assign]
        return hashing

    real_read = parallel.read_part

    def reading(*args: object) -> object:
        part = real_read(*args)  # type: ignore[arg-type]
        say("read")
        return part

    monkeypatch.setattr(engine, "_big", lambda path: True)
    monkeypatch.setattr(engine, "_sha256_process", spy)
    monkeypatch.setattr(parallel, "read_part", reading)
    a = engine.analyze(capture, workers=2)
    assert made == [True]
    assert a.sha256 == hashlib.sha256(capture.read_bytes()).hexdigest()
    lines = [line.split() for line in log.read_text().splitlines()]
    readers = [pid for what, pid in lines if what == "read"]
    assert len(set(readers)) == 2  # the parent and the other partition's process
    assert str(os.getpid()) in readers
    for pid in readers:  # each told it to go, and only once it had read its part
        mine = [what for what, p in lines if p == pid]
        assert mine[0] == "read"
        assert "go" in mine
