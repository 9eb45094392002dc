"""The ClientHello fast path (``_scan_client_hello``) against the bounds-checked reading (``_read_client_hello``),
byte by byte: on every hello, every cut of it and every byte of it changed, the scan gives the reading's fields or
``None`` (never a different result), and ``None`` whenever the reading raises ``DecodeError``. The fingerprint
cache gives what the fingerprint functions give."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.decoders.base import DecodeError
from analyzer.decoders.tls import ClientHelloFields, _read_client_hello, _scan_client_hello
from analyzer.decoders.tls_fingerprint import (
    client_fingerprints,
    ja3_string,
    ja3s_string,
    ja4,
    md5_hex,
    server_fingerprints,
)
from tests.decoders.test_tls import CH_BODY, CH_JA3, CH_JA4, client_hello_body, ext, vec

# hellos with every extension the decoder reads, repeated ones, unknown ones and none at all
HELLOS = [
    CH_BODY,
    client_hello_body(),
    client_hello_body(suites=()),
    client_hello_body(extensions=ext(23, b"")),
    client_hello_body(
        extensions=ext(0, vec(2, b"\x01" + vec(2, b"other") + b"\x00" + vec(2, b"a.test") + b"\x00" + vec(2, b"b")))
        + ext(0, vec(2, b"\x00" + vec(2, b"second")))
        + ext(16, vec(2, vec(1, b"") + vec(1, b"\xff")))
        + ext(16, vec(2, vec(1, b"h2")))
        + ext(10, vec(2, b""))
        + ext(10, vec(2, b"\x00\x1d") + b"trailing")
        + ext(11, vec(1, b""))
        + ext(43, vec(1, b""))
        + ext(51, vec(2, b"") + b"x")
        + ext(40, vec(2, b"\x00\x17" + vec(2, b"") + b"\x00\x18" + vec(2, b"k")))
        + ext(0xFFFF, b"\x01\x02\x03")
    ),
]


def _reading(body: bytes) -> ClientHelloFields | None:
    try:
        return _read_client_hello(body, 0)
    except DecodeError:
        return None


def _agree(body: bytes) -> None:
    scanned = _scan_client_hello(body)
    read = _reading(body)
    assert scanned is None or scanned == read
    if read is None:
        assert scanned is None


@pytest.mark.parametrize("body", HELLOS)
def test_scan_reads_well_formed_hellos_fully(body: bytes) -> None:
    scanned = _scan_client_hello(body)
    assert scanned is not None
    assert scanned == _read_client_hello(body, 0)
    assert all(isinstance(v, tuple) for v in scanned[3:5] + scanned[7:])


@pytest.mark.parametrize("body", HELLOS)
def test_scan_agrees_on_every_cut(body: bytes) -> None:
    for cut in range(len(body)):
        _agree(body[:cut])
        _agree(body + body[:cut])  # trailing bytes


@pytest.mark.parametrize("body", HELLOS)
def test_scan_agrees_on_every_byte_changed(body: bytes) -> None:
    for i in range(len(body)):
        for value in {0, 1, 2, 0x7F, 0xFF, body[i] ^ 1, (body[i] + 1) & 0xFF, (body[i] - 1) & 0xFF}:
            _agree(body[:i] + bytes([value]) + body[i + 1 :])


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(HELLOS), st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=4))
def test_scan_agrees_on_several_bytes_changed(body: bytes, changes: list[tuple[int, int]]) -> None:
    raw = bytearray(body)
    for at, value in changes:
        raw[at % len(raw)] = value
    _agree(bytes(raw))


def test_client_fingerprints_are_the_fingerprint_functions() -> None:
    f = _read_client_hello(CH_BODY, 0)
    args = (
        f.legacy_version,
        f.supported_versions,
        f.cipher_suites,
        f.extensions,
        f.groups,
        f.ec_point_formats,
        f.alpn[0],
        f.signature_algorithms,
    )
    assert client_fingerprints(*args) == (CH_JA3, md5_hex(CH_JA3), CH_JA4)
    assert client_fingerprints(*args) is client_fingerprints(*args)  # remembered
    text = ja3_string(f.legacy_version, f.cipher_suites, f.extensions, f.groups, f.ec_point_formats)
    assert text == CH_JA3
    bare = client_fingerprints(0x0303, (), (0x002F,), (), (), (), None, ())
    assert bare[2] == ja4(
        legacy_version=0x0303,
        supported_versions=(),
        has_sni=False,
        cipher_suites=(0x002F,),
        extensions=(),
        first_alpn=None,
        signature_algorithms=(),
    )


def test_server_fingerprints_are_the_fingerprint_functions() -> None:
    text = ja3s_string(0x0303, 0xC02F, (0xFF01, 0, 11, 35))
    assert server_fingerprints(0x0303, 0xC02F, (0xFF01, 0, 11, 35)) == (text, md5_hex(text))
