"""WebSocket unmasking (RFC 6455 §5.3): the compiled reader core's ``unmask``, which the decoder uses where it is
built, against the pure-Python ``unmask_python``, byte for byte."""

from __future__ import annotations

import random

import pytest

from analyzer.capture import compiled
from analyzer.decoders import websocket
from analyzer.decoders.websocket import unmask_python

# RFC 6455 §5.7: a masked "Hello" from a client
RFC_MASK = bytes.fromhex("37fa213d")
RFC_MASKED_HELLO = bytes.fromhex("7f9f4d5158")


@pytest.fixture
def core_unmask() -> object:
    if not compiled.available():
        pytest.fail(f"compiled reader core: {compiled.describe()}; `make setup` builds it")
    return compiled.core.unmask


def test_the_decoder_uses_the_compiled_unmask_where_it_is_built(core_unmask: object) -> None:
    assert websocket._unmask is core_unmask


@pytest.mark.parametrize("unmask", ["python", "compiled"])
def test_rfc6455_masked_hello(unmask: str, core_unmask: object) -> None:
    fn = unmask_python if unmask == "python" else core_unmask
    assert fn(RFC_MASKED_HELLO, RFC_MASK, 0) == b"Hello"  # type: ignore[operator]
    # the same payload cut after 2 bytes: the rest starts at payload byte 2 of the mask's cycle
    assert fn(RFC_MASKED_HELLO[2:], RFC_MASK, 2) == b"llo"  # type: ignore[operator]


def test_compiled_unmask_equals_the_python_one(core_unmask: object) -> None:
    rng = random.Random(7)
    for n in [*range(70), 1000, 4097, 70001]:
        data = rng.randbytes(n)
        mask = rng.randbytes(4)
        for offset in (0, 1, 2, 3, 4, 7, 1 << 40):
            expected = unmask_python(data, mask, offset)
            assert core_unmask(data, mask, offset) == expected, (n, offset)  # type: ignore[operator]
            assert core_unmask(bytearray(data), mask, offset) == expected  # type: ignore[operator]
            assert type(core_unmask(data, mask, offset)) is bytes  # type: ignore[operator]


def test_compiled_unmask_refuses_a_mask_that_is_not_4_bytes(core_unmask: object) -> None:
    with pytest.raises(ValueError, match="4 bytes"):
        core_unmask(b"abc", b"\x01\x02\x03", 0)  # type: ignore[operator]
