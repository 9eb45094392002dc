"""``engine.file_sha256``: the digest of the file as stored, read in ``HASH_BLOCK`` pieces into one buffer."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from analyzer.budgets import HASH_BLOCK
from analyzer.engine import file_sha256


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
