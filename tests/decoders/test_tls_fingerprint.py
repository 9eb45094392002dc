"""JA3, JA3S and JA4: the published examples, the JA4 reference captures, and every JA3/JA3S in the MANIFEST."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from analyzer.decoders.tls import TlsDecoder, starts_like_tls
from analyzer.decoders.tls_fingerprint import ja3_string, ja3s_string, ja4, ja4_alpn, md5_hex
from analyzer.engine import rebuild_flows
from analyzer.events.tls import TlsClientHello, TlsServerHello
from tests.conftest import EXTERNAL
from tests.decoders.drive import run_stream_decoder

# --- JA3 / JA3S ---------------------------------------------------------------------------------------------------


def test_ja3_readme_example() -> None:
    """https://github.com/salesforce/ja3 README."""
    text = ja3_string(769, [47, 53, 5, 10, 49161, 49162, 49171, 49172, 50, 56, 19, 4], [0, 10, 11], [23, 24, 25], [0])
    assert text == "769,47-53-5-10-49161-49162-49171-49172-50-56-19-4,0-10-11,23-24-25,0"
    assert md5_hex(text) == "ada70206e40642a3e4461f35503241d5"


def test_ja3_empty_fields_stay_empty() -> None:
    assert (
        ja3_string(769, [4, 5, 10, 9, 100, 98, 3, 6, 19, 18, 99], [], [], []) == "769,4-5-10-9-100-98-3-6-19-18-99,,,"
    )


def test_ja3_drops_grease_everywhere() -> None:
    text = ja3_string(0x0303, [0x1A1A, 0x1301], [0x2A2A, 0, 0xFAFA], [0x3A3A, 29], [0])
    assert text == "771,4865,0,29,0"


def test_ja3s() -> None:
    assert ja3s_string(0x0303, 0xC02F, [0xFF01, 0, 11, 35]) == "771,49199,65281-0-11-35"
    assert ja3s_string(0x0303, 0x1301, []) == "771,4865,"


# --- JA4 ----------------------------------------------------------------------------------------------------------

SPEC_CIPHERS = [0x1301, 0x1302, 0x1303, 0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9, 0xCCA8, 0xC013, 0xC014]
SPEC_CIPHERS += [0x009C, 0x009D, 0x002F, 0x0035]
SPEC_EXTS = [0x001B, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017, 0x002D, 0x000D, 0x0005, 0x0023, 0x0012, 0x002B]
SPEC_EXTS += [0xFF01, 0x000B, 0x000A, 0x0015]
SPEC_SIGALGS = [0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601]


def spec_ja4(**overrides: object) -> str:
    args: dict[str, object] = {
        "legacy_version": 0x0303,
        "supported_versions": [0x0A0A, 0x0304, 0x0303],
        "has_sni": True,
        "cipher_suites": [0x0A0A, *SPEC_CIPHERS],
        "extensions": [0x0A0A, *SPEC_EXTS, 0x1A1A],
        "first_alpn": b"h2",
        "signature_algorithms": SPEC_SIGALGS,
    }
    args.update(overrides)
    return ja4(**args)  # type: ignore[arg-type]


def test_ja4_spec_example() -> None:
    """FoxIO ``technical_details/JA4.md``: the worked example (GREASE added here, it must not count)."""
    assert spec_ja4() == "t13d1516h2_8daaf6152771_e5627efa2ab1"


def test_ja4_without_signature_algorithms_has_no_underscore_in_the_hashed_text() -> None:
    """JA4.md: ``0005,...,ff01 = 6d807ffa2a79`` when the hello has no signature algorithms."""
    assert spec_ja4(signature_algorithms=[]).endswith("_6d807ffa2a79")


def test_ja4_parts() -> None:
    assert spec_ja4(has_sni=False).startswith("t13i1516h2_")
    assert spec_ja4(supported_versions=[]).startswith("t12d")  # legacy_version then
    assert spec_ja4(supported_versions=[0x7F12, 0x0303]).startswith("t00d")  # a draft is not a known version
    assert spec_ja4(legacy_version=0x0300, supported_versions=[]).startswith("ts3d")
    assert spec_ja4(first_alpn=None).startswith("t13d151600_")
    assert spec_ja4(cipher_suites=[]).split("_")[1] == "000000000000"
    assert spec_ja4(extensions=[0x0000, 0x0010]) == "t13d1502h2_8daaf6152771_000000000000"
    assert spec_ja4(cipher_suites=list(range(1, 200))).startswith("t13d9916")  # counts stop at 99
    assert spec_ja4(transport="q").startswith("q13")


@pytest.mark.parametrize(
    ("alpn", "expected"),
    [
        (b"h2", "h2"),
        (b"http/1.1", "h1"),
        (b"H2", "H2"),  # upper case is alphanumeric (0x41-0x5A): printed as sent
        (b"ocpp1.6", "o6"),
        (b"z", "zz"),  # a single character is both first and last
        (b"", "00"),
        (None, "00"),
        # the JA4.md examples for non-alphanumeric ends: first and last hex digit of the value
        (bytes.fromhex("ab"), "ab"),
        (bytes.fromhex("abcd"), "ad"),
        (bytes.fromhex("30ab"), "3b"),
        (bytes.fromhex("3031abcd"), "3d"),
        (bytes.fromhex("30abcd31"), "01"),
    ],
)
def test_ja4_alpn_characters(alpn: bytes | None, expected: str) -> None:
    assert ja4_alpn(alpn) == expected


def _first_client_hellos(path: Path) -> dict[int, TlsClientHello]:
    """The first ClientHello of each TCP connection, by client port (as the JA4 reference tools report)."""
    ports: dict[int, int] = {}

    def factory(fid: int, data: bytes, cport: int, sport: int) -> TlsDecoder | None:
        ports[fid] = cport
        return TlsDecoder(fid) if starts_like_tls(data) else None

    out: dict[int, TlsClientHello] = {}
    for e in run_stream_decoder(path, factory):
        if isinstance(e, TlsClientHello) and e.flow_id is not None:
            out.setdefault(ports[e.flow_id], e)
    return out


# FoxIO-LLC/ja4 rust/ja4/src/snapshots/ja4__insta@tls-handshake.pcapng.snap: every TCP stream, by client port
TLS_HANDSHAKE_COMMON = "t13d1516h2_8daaf6152771_e5627efa2ab1"
TLS_HANDSHAKE_PORTS = [50112, 50113, 50114, 50115, 50116, 50122, 50123, 50126, 50127, 50128, 50130, 50131, 50132]
TLS_HANDSHAKE_PORTS += [50133, 50134, 50135, 50136, 50137, 50139, 50140, 50141, 50142, 50143, 50144, 50145, 50146]
TLS_HANDSHAKE_PORTS += [50147, 50148, 50149, 50151, 50152, 50153, 50155, 50157, 50158, 50159, 50160, 50161, 50162]
TLS_HANDSHAKE_PORTS += [50163, 50164, 50165, 50166, 50167, 50168, 50169, 50170, 50172, 50174, 50175, 50176, 50177]
TLS_HANDSHAKE_PORTS += [50178, 50179, 50180, 50181, 50182, 50183, 50184]
TLS_HANDSHAKE_OTHERS = {
    50122: "t13d1516h1_8daaf6152771_e5627efa2ab1",
    50123: "t13d151400_8daaf6152771_de4a06bb82e3",
    50140: "t13d1516h1_8daaf6152771_e5627efa2ab1",
    50152: "t13d1516h1_8daaf6152771_e5627efa2ab1",
    50153: "t13d1517h1_8daaf6152771_6cdcb247c39b",
}


def test_ja4_reference_tls_handshake() -> None:
    got = _first_client_hellos(EXTERNAL / "tls-misc" / "ja4__tls-handshake.pcapng")
    assert len(TLS_HANDSHAKE_PORTS) == 59
    assert {port: ch.ja4 for port, ch in got.items()} == {
        port: TLS_HANDSHAKE_OTHERS.get(port, TLS_HANDSHAKE_COMMON) for port in TLS_HANDSHAKE_PORTS
    }


@pytest.mark.parametrize(
    ("capture", "client_port", "expected"),
    [
        # snapshot ja4__insta@tls-alpn-h2.pcap.snap; ipv6.pcapng is the same flow (MANIFEST)
        ("tls-misc/ja4__tls-alpn-h2.pcap", 64034, "t12d4605h2_85626a9a5f7f_aaf95bb78ec9"),
        ("tls-misc/ja4__ipv6.pcapng", 64034, "t12d4605h2_85626a9a5f7f_aaf95bb78ec9"),
        # protocol-tools-and-libraries.md §3.1, from the FoxIO snapshots
        ("tls-misc/ja4__tls12.pcap", 36372, "t13d1715h2_5b57614c22b0_3d5424432f57"),
        # The FoxIO snapshot (ja4__insta@badcurveball.pcap.snap) says t13d1615h2_46e7e9700bed_45f260be83e2, but
        # the first ALPN value on the wire is "H2" (48 32), and JA4.md prints the first and last characters when
        # they are alphanumeric (0x41-0x5A included) with no case folding; the rest of the fingerprint agrees.
        ("tls-failures/arkime__badcurveball.pcap", 55318, "t13d1615H2_46e7e9700bed_45f260be83e2"),
    ],
)
def test_ja4_reference_captures(capture: str, client_port: int, expected: str) -> None:
    got = _first_client_hellos(EXTERNAL / capture)
    assert got[client_port].ja4 == expected


def test_badcurveball_alpn_is_upper_case_on_the_wire() -> None:
    (ch,) = _first_client_hellos(EXTERNAL / "tls-failures" / "arkime__badcurveball.pcap").values()
    assert ch.alpn == ("H2", "http/1.1")


# --- every JA3 / JA3S the MANIFEST lists (tshark 4.0.17's values) -------------------------------------------------

_SECTION = re.compile(r"^### `([^`]+)`")
_CLIENT_HELLO = re.compile(r"^  - ClientHello f(\d+) \S+ -> (\S+) .*JA3=([0-9a-f]{32})$")
_SERVER_HELLO = re.compile(r"^  - ServerHello f(\d+) .*JA3S=([0-9a-f]{32})$")


def _manifest() -> dict[str, list[tuple[str, int, str]]]:
    """capture -> [(kind, frame, md5)] for every ClientHello/ServerHello line of the MANIFEST (TCP only: a QUIC
    ClientHello's destination has no port)."""
    out: dict[str, list[tuple[str, int, str]]] = {}
    current = ""
    for line in (EXTERNAL / "MANIFEST.md").read_text().splitlines():
        if m := _SECTION.match(line):
            current = m.group(1)
        elif (m := _CLIENT_HELLO.match(line)) and not m.group(2).endswith(":"):
            out.setdefault(current, []).append(("ja3", int(m.group(1)), m.group(3)))
        elif m := _SERVER_HELLO.match(line):
            out.setdefault(current, []).append(("ja3s", int(m.group(1)), m.group(2)))
    return out


MANIFEST_FACTS = _manifest()


def test_the_manifest_lists_fingerprints() -> None:
    assert sum(len(v) for v in MANIFEST_FACTS.values()) >= 100


@pytest.mark.parametrize("capture", sorted(MANIFEST_FACTS))
def test_ja3_and_ja3s_match_the_manifest(capture: str) -> None:
    path = EXTERNAL / capture
    ours: dict[tuple[str, int], str] = {}
    for e in run_stream_decoder(path, lambda fid, data, cp, sp: TlsDecoder(fid) if starts_like_tls(data) else None):
        if isinstance(e, TlsClientHello):
            ours[("ja3", e.frame)] = e.ja3_hash
            assert e.ja3_hash == hashlib.md5(e.ja3.encode()).hexdigest()
        elif isinstance(e, TlsServerHello):
            ours[("ja3s", e.frame)] = e.ja3s_hash
    udp_frames: set[int] = set()
    rebuild_flows(path, on_datagram=lambda flow, d, payload, frame, ts: udp_frames.add(frame))
    for kind, frame, expected in MANIFEST_FACTS[capture]:
        if (kind, frame) not in ours:
            assert frame in udp_frames, f"{kind} f{frame} not found"  # a QUIC ServerHello: not ours to decode
            continue
        assert ours[(kind, frame)] == expected, f"{kind} f{frame}"
