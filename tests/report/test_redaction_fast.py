"""``redact_text``'s shortcuts (a text naming no key that could hide anything is returned as it is; one holding no
configuration value is scanned in one pass) against the full scanner (``redaction.scanned``, both passes): the same
text for every message, cut short or not, escaped or not."""

from __future__ import annotations

import json
import random

from analyzer.redaction import (
    _LEX,
    _MAY_CONFIG,
    _MAY_HIDE,
    REDACTED,
    _decode,
    names_no_secret,
    redact_head,
    redact_text,
    redact_tokens,
    scanned,
)

MESSAGES = [
    [2, "1001", "BootNotification", {"chargePointModel": "SimCharger-16", "chargePointVendor": "GhostcapLab"}],
    [3, "1001", {"currentTime": "2026-11-24T04:17:10Z", "interval": 300, "status": "Accepted"}],
    [2, "1002", "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Available"}],
    [3, "1003", {}],
    [2, "1004", "Authorize", {"idTag": "TAG-1"}],
    [2, "1005", "Authorize", {"idToken": {"idToken": "TOK-1", "type": "ISO14443"}}],
    [2, "1006", "MeterValues", {"meterValue": [{"sampledValue": [{"value": "12.5"}]}]}],
    [3, "1007", {"configurationKey": [{"key": "AuthorizationKey", "value": "K"}, {"key": "G_CardPin"}]}],
    [2, "1008", "SetNetworkProfile", {"vpn": {"key": "VPN-KEY", "password": "PW"}, "apnPassword": "A"}],
    [2, "1009", "DataTransfer", {"vendorId": "x", "data": "id\u0054ag \\ vpn"}],
]
# pieces of OCPP-J, some naming a key that may hide something, some escaped, some not JSON at all
PIECES = [
    "[", "]", "{", "}", ":", ",", " ", "\n", '"', '"idTag"', '"id\\u0054ag"', '"key"', '"value"', '"vpn"',
    '"variable"', '"name"', '"attributeValue"', '"variableAttribute"', '"AuthorizationKey"', '"HeartbeatInterval"',
    '"status"', '"Accepted"', "12", "true", "null", '"x\\"y"', "\\", "idTag", '"password"', '"type"', '"idTokens"',
    "é", "\x0b", '"2026-11-24T04:17:10Z"',
]  # fmt: skip


def _texts() -> list[str]:
    rng = random.Random(20260424)
    out = [json.dumps(m, separators=(",", ":")) for m in MESSAGES]
    out += [json.dumps(m, indent=1) for m in MESSAGES]
    out += [t[:cut] for t in list(out) for cut in range(1, len(t), 7)]
    out += ["".join(rng.choice(PIECES) for _ in range(rng.randint(1, 30))) for _ in range(4000)]
    return out


def test_the_shortcut_writes_what_the_scanner_writes() -> None:
    texts = _texts()
    for text in texts:
        assert redact_text(text) == scanned(text), text
    shortcut = [t for t in texts if redact_text(t) is t]
    hidden = [t for t in texts if REDACTED in redact_text(t)]
    assert len(shortcut) > 200  # both ways are taken, often
    assert len(hidden) > 200
    one_pass = [t for t in texts if redact_text(t) is not t and _MAY_CONFIG.search(t) is None]
    assert len([t for t in one_pass if REDACTED in redact_text(t)]) > 20


def test_a_message_without_secret_keys_is_returned_as_it_is() -> None:
    text = json.dumps(MESSAGES[2], separators=(",", ":"))
    assert redact_text(text) is text
    assert scanned(text) == text


def test_the_head_of_a_redacted_text_is_redact_texts() -> None:
    """``redact_head`` (the text's own start when no key that could hide anything starts before the limit) against
    ``redact_text``'s whole text cut, at many limits, for texts whose secrets come early, late or not at all."""
    texts = _texts()
    texts += [f'[2,"{i:036d}","MeterValues",{t[1:]}' for i, t in enumerate(texts[:: len(texts) // 400])]
    taken = 0  # the shortcut, where the whole text has something hidden
    for text in texts:
        whole = redact_text(text)
        first = _MAY_HIDE.search(text)
        for limit in {*range(0, len(text) + 2, 11), 59, 60, 61}:
            assert redact_head(text, limit) == whole[:limit], (text, limit)
            taken += REDACTED in whole and first is not None and first.start() >= limit
    assert taken > 400


KEYS = ["idTag", "idToken", "type", "key", "value", "vpn", "variable", "name", "attributeValue", "status", "x", "é"]
NAMES = ["AuthorizationKey", "HeartbeatInterval", "G_CardPin", "TAG-1", "ISO14443"]


def _value(rng: random.Random, depth: int = 0) -> object:
    pick = rng.random()
    if depth < 4 and pick < 0.3:
        return {rng.choice(KEYS): _value(rng, depth + 1) for _ in range(rng.randint(0, 4))}
    if depth < 4 and pick < 0.45:
        return [_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return rng.choice([*NAMES, 12, 1.5, True, None, ""])


def _payload_texts() -> list[str]:
    """JSON payloads, as messages carry them: some name a key that may hide something, spelled out or escaped."""
    rng = random.Random(20261207)
    out = [json.dumps(m[-1], separators=(",", ":")) for m in MESSAGES if isinstance(m[-1], dict)]
    for _ in range(4000):
        text = json.dumps(_value(rng), ensure_ascii=rng.random() < 0.5)
        out.append(text.replace('"idTag"', '"id\\u0054ag"') if rng.random() < 0.1 else text)
    return out


def test_a_payload_naming_no_secret_is_its_own_redaction() -> None:
    """``names_no_secret`` (the report shows such a payload as parsed) implies ``redact_tokens`` changes nothing."""
    quiet = 0
    for text in _payload_texts():
        if names_no_secret(text):
            quiet += 1
            assert redact_tokens(json.loads(text)) == json.loads(text), text
            assert json.dumps(redact_tokens(json.loads(text))) == json.dumps(json.loads(text))
    assert quiet > 1000


def reference_decode(tok: str) -> str:
    """``_decode`` before its shortcut: ``json.loads`` for every whole string token."""
    if len(tok) >= 2 and tok.endswith('"'):
        try:
            s = json.loads(tok)
            if isinstance(s, str):
                return s
        except ValueError:
            pass
        return tok[1:-1]
    return tok[1:]


def test_a_string_token_reads_as_json_reads_it() -> None:
    """``_decode``'s shortcut (a token without a backslash is what lies between its quotes) against ``json.loads``,
    for the string tokens the scanner finds in texts of quotes, escapes, control characters and lone surrogates."""
    rng = random.Random(1209)
    chars = ['"', "\\", "a", "é", "\x00", "\x1f", "\x7f", "\ud800", "u", "0", "n", " ", "\t", "{", ":"]
    texts = _texts() + ["".join(rng.choice(chars) for _ in range(rng.randint(1, 24))) for _ in range(20000)]
    plain = 0
    for text in texts:
        for m in _LEX.finditer(text):
            tok = m.group()
            if tok[0] == '"':
                assert _decode(tok) == reference_decode(tok), tok
                plain += "\\" not in tok and len(tok) >= 2 and tok.endswith('"')
    assert plain > 5000
