"""CALL, CALLRESULT and SEND keep their payload as JSON text (``payload_text``): the exact characters of the payload
in the frame, the whitespace around it left out, and ``payload`` parses them into the value the decoder read (same
types, same key order, same odd values), on every capture of the lab too."""

from __future__ import annotations

import copy
import json
import pickle
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.decoders import ocpp as ocpp_mod
from analyzer.decoders.ocpp import OcppDecoder
from analyzer.engine import build_timeline
from analyzer.events.base import Event
from analyzer.events.ocpp import (
    OcppCall,
    OcppCallResult,
    OcppSend,
    OcppUnparsed,
    _reject_constant,
    json_loads,
)
from analyzer.jsontext import BigNumber, parse_float
from analyzer.report.timeline_out import event_fields
from tests.conftest import PROJECT_CAPTURES

WITH_PAYLOAD = (OcppCall, OcppCallResult, OcppSend)


def shape(value: Any) -> Any:
    """``value`` with every type spelled out (``1``, ``1.0`` and ``True`` differ; so do key orders and a
    ``BigNumber`` and the infinity it equals)."""
    if isinstance(value, dict):
        return ("dict", [(k, shape(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("list", [shape(v) for v in value])
    if isinstance(value, BigNumber):
        return ("BigNumber", value.text)
    return (type(value).__name__, repr(value))


def plain_payload(frame: str) -> Any:
    """The payload as ``json.loads`` with the decoder's options reads it from the whole frame."""
    return json.loads(frame, parse_constant=_reject_constant, parse_float=parse_float)[-1]


def decode(frame: str | bytes, subprotocol: str | None = "ocpp2.1", direction: int = 0) -> Event:
    data = frame.encode() if isinstance(frame, str) else frame
    events = OcppDecoder(3, subprotocol).message(direction=direction, data=data, text=True, frame=1, ts_ns=0)
    return next(e for e in events if isinstance(e, (*WITH_PAYLOAD, OcppUnparsed)))


# (frame, the payload's text in it)
FRAMES = [
    ('[2,"1","Heartbeat",{}]', "{}"),
    ('[3,"1",{"currentTime":"2026-01-01T00:00:00Z"}]', '{"currentTime":"2026-01-01T00:00:00Z"}'),
    ('[6,"9","NotifyPeriodicEventStream",{"id":1,"data":[]}]', '{"id":1,"data":[]}'),
    # whitespace around and between the elements, inside the payload (kept), around the frame
    ('[ 2 , "1" , "Heartbeat" , { } ]', "{ }"),
    ('\n\t[2,\r\n"1",\t"A",\n  {"a" :\n 1}\r\n]  \n', '{"a" :\n 1}'),
    ('[3, "1", {"a": [1, 2]}]', '{"a": [1, 2]}'),
    ('[2,"1","A",{"a":1} ]', '{"a":1}'),
    ('[2,"1","A", {"a":1}]', '{"a":1}'),
    # escapes and quotes in the unique id and the action: the text before the payload is not what they spell
    ('[2,"a\\"b","A",{"k":"v"}]', '{"k":"v"}'),
    ('[2,"a\\\\","A\\\\",{"k":"v"}]', '{"k":"v"}'),
    ('[2,"\\u0031","Heart\\u0062eat",{}]', "{}"),
    ('[2,"1","A\\/B",{}]', "{}"),
    ('[3,"\\"],[",{"x":"\\"],["}]', '{"x":"\\"],["}'),
    # an escaped quote and a comma where the value, unescaped, would end: the value holds a quote, so no shortcut
    ('[3,"\\"\\",",{"k":1}]', '{"k":1}'),
    ('[2,"a\\\\\\",","A\\\\\\",",[1]]', "[1]"),
    ('[2,"\\ud800","A",{}]', "{}"),
    ('[2,"","",{}]', "{}"),
    ('[2,"é€😀","Ä",{"é":"😀"}]', '{"é":"😀"}'),
    # odd payloads: duplicate keys (the last wins, in the first's place), escapes, surrogates, big numbers
    ('[2,"1","A",{"a":1,"b":2,"a":3}]', '{"a":1,"b":2,"a":3}'),
    ('[2,"1","A",{"k":"\\u00e9\\n\\t\\"\\\\\\/"}]', '{"k":"\\u00e9\\n\\t\\"\\\\\\/"}'),
    ('[2,"1","A",{"lone":"\\ud800","pair":"\\ud83d\\ude00","low":"\\udc00x"}]', None),
    ('[2,"1","A",{"big":' + "9" * 4000 + "}]", None),
    ('[2,"1","A",{"f":1e400,"g":-1E+400,"h":1e-400,"i":-0.0,"j":0.1,"k":1.5e3,"l":-0}]', None),
    ('[2,"1","A",{"t":true,"f":false,"n":null,"e":"","o":{},"l":[]}]', None),
    ('[2,"1","A",[[[[1]],[]],[[{"a":[]}]]]]', None),
    # a payload that is not an object (the schema says so; the text is kept all the same)
    ('[2,"1","A","text"]', '"text"'),
    ('[2,"1","A",12]', "12"),
    ('[3,"1",1e999]', "1e999"),
    ('[3,"1",null]', "null"),
    ('[3,"1",[ ]]', "[ ]"),
    ('[2,"1","A",-1.5e-3 ]', "-1.5e-3"),
]


@pytest.mark.parametrize(("frame", "text"), FRAMES)
def test_the_payload_text_is_the_payloads_characters_and_reads_as_the_payload(frame: str, text: str | None) -> None:
    e = decode(frame)
    assert isinstance(e, WITH_PAYLOAD)
    if text is None:  # all that follows the compact head, the closing bracket left out
        text = frame.removeprefix('[2,"1","A",')[:-1]
    assert e.payload_text == text
    assert e.payload_text in frame
    assert shape(e.payload) == shape(plain_payload(frame))


def test_whitespace_before_the_payload_in_a_compact_frame_is_left_out() -> None:
    assert decode('[2,"1","A",\n {"a":1}]').payload_text == '{"a":1}'
    assert decode('[3,"1",\t[1]\r\n]').payload_text == "[1]"


@pytest.mark.parametrize(
    "frame",
    [
        '[2,"1","A",{"a":NaN}]',
        '[2,"1","A",{"a":Infinity}]',
        '[2,"1","A",-Infinity]',
        '[2,"1","A",{\'a\':1}]',
        '[2,"1","A",{"a":1}',
        '[2,"1","A",' + "[" * 70 + "]" * 70 + "]",
    ],
)
def test_what_the_decoder_refuses_keeps_no_payload(frame: str) -> None:
    assert isinstance(decode(frame), OcppUnparsed)


def test_a_big_number_reads_back_as_a_big_number_with_its_text() -> None:
    e = decode('[2,"1","A",{"x":-1e999,"y":[1E400]}]')
    value = e.payload
    assert shape(value) == ("dict", [("x", ("BigNumber", "-1e999")), ("y", ("list", [("BigNumber", "1E400")]))])
    assert type(value["x"]) is BigNumber


def test_each_read_parses_anew_and_nothing_is_kept() -> None:
    e = decode('[2,"1","BootNotification",{"reason":"PowerUp","chargingStation":{"model":"m"}}]')
    first, second = e.payload, e.payload
    assert first == second
    assert first is not second
    first["reason"] = "changed"
    assert e.payload["reason"] == "PowerUp"
    assert not hasattr(e, "__dict__")  # slotted: nowhere to cache a parsed value


def test_events_with_a_payload_pickle_copy_compare_and_hash_by_their_text() -> None:
    e = decode('[2,"1","StatusNotification",{"connectorId":1,"errorCode":"NoError","status":"Available"}]', "ocpp1.6")
    for back in (pickle.loads(pickle.dumps(e, protocol=5)), copy.copy(e), copy.deepcopy(e)):
        assert back == e
        assert type(back) is type(e)
        assert back.payload_text == e.payload_text
        assert shape(back.payload) == shape(e.payload)
    assert hash(e) == hash(copy.deepcopy(e))  # a string payload: the event hashes
    spaced = decode('[2,"1","StatusNotification",{"connectorId": 1,"errorCode":"NoError","status":"Available"}]')
    assert spaced.payload == e.payload
    assert spaced != e  # the same value spelled otherwise: another message


def test_reports_show_the_payload_parsed_in_the_place_of_its_text() -> None:
    e = decode('[3,"7",{"status":"Accepted","interval":300}]', "ocpp1.6", direction=1)
    fields = event_fields(e)
    assert "payload_text" not in fields
    header = ["version", "unique_id", "size", "violations", "validated"]
    assert list(fields) == [*header, "action", "payload", "pairing", "call_frame", "latency_ns", "status"]
    assert fields["payload"] == {"status": "Accepted", "interval": 300}


# -- any frame, any spelling -----------------------------------------------------------------------------------------

WS = st.text(alphabet=" \t\n\r", max_size=3)
KEY_TEXT = st.text(alphabet='ab"\\/é€\x00\n😀[],', max_size=6)
LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**30), 10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    KEY_TEXT,
)
VALUE = st.recursive(
    LEAF, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEY_TEXT, inner, max_size=3), max_leaves=12
)


def spelled(value: Any, ascii_only: bool, indent: int | None) -> str:
    return json.dumps(value, ensure_ascii=ascii_only, indent=indent)


@settings(max_examples=400, deadline=None)
@given(
    mtype=st.sampled_from([2, 3, 6]),
    uid=KEY_TEXT,
    action=KEY_TEXT,
    payload=VALUE,
    ascii_only=st.booleans(),
    indent=st.sampled_from([None, 0, 2]),
    gaps=st.lists(WS, min_size=9, max_size=9),
)
def test_any_frame_keeps_its_payloads_exact_text(
    mtype: int, uid: str, action: str, payload: Any, ascii_only: bool, indent: int | None, gaps: list[str]
) -> None:
    text = spelled(payload, ascii_only, indent)
    head = [str(mtype), spelled(uid, ascii_only, None)] + ([spelled(action, ascii_only, None)] if mtype != 3 else [])
    parts = [gaps[0], "[", gaps[1]]
    for i, element in enumerate(head):
        parts += [element, gaps[2 + 2 * i], ",", gaps[3 + 2 * i]]
    frame = "".join([*parts, text, gaps[7], "]", gaps[8]])
    e = decode(frame, None if mtype != 6 else "ocpp2.1")
    assert isinstance(e, WITH_PAYLOAD)
    assert e.payload_text == text
    assert shape(e.payload) == shape(plain_payload(frame))


def test_both_ways_to_the_payload_give_the_same_text() -> None:
    # the compact frame is read by its prefix; the same frame spelled with a space is walked element by element
    for frame in ('[2,"1","A",{"a":[1,{"b":"]"}]}]', '[3,"x",["\\"",1]]'):
        msg = json_loads(frame)
        spaced = frame.replace(",", ", ", len(msg) - 1)
        assert ocpp_mod._payload_text(frame, msg) == ocpp_mod._payload_text(spaced, json_loads(spaced))


# -- the lab's captures ----------------------------------------------------------------------------------------------


def _lab_messages(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[Event]]]:
    """(text of each OCPP message, the events the decoder made of it) over every lab capture, with its key log."""
    seen: list[tuple[str, list[Event]]] = []
    message = OcppDecoder.message

    def recording(self: OcppDecoder, **kw: Any) -> list[Event]:
        events = message(self, **kw)
        seen.append((kw["data"].decode("utf-8", "replace"), events))
        return events

    monkeypatch.setattr(OcppDecoder, "message", recording)
    for path in sorted(PROJECT_CAPTURES.glob("*.pcap")):
        keys = Path(str(path).removesuffix(".pcap") + ".keys.txt")
        build_timeline(path, [str(keys)] if keys.exists() else [])
    return seen


def test_every_lab_payload_reads_back_as_the_decoder_read_it(monkeypatch: pytest.MonkeyPatch) -> None:
    checked = 0
    for text, events in _lab_messages(monkeypatch):
        for e in events:
            if isinstance(e, WITH_PAYLOAD):
                assert shape(e.payload) == shape(plain_payload(text))
                assert text.rstrip(" \t\n\r")[:-1].rstrip(" \t\n\r").endswith(e.payload_text)
                checked += 1
    assert checked >= 168  # the lab's OCPP messages, 18 of them in TLS decrypted with their key logs
