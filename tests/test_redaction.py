"""The redaction policy (``analyzer.redaction``): parsed payloads and raw text hide the same secrets."""

from __future__ import annotations

import json

import pytest

from analyzer.redaction import REDACTED, redact_text, redact_tokens, redact_url, secret_config_key

PAYLOADS = [
    # OCPP 2.0.1 SetVariables BasicAuthPassword: the value comes before the variable's name
    [2, "v1", "SetVariables", {"setVariableData": [{"attributeValue": "BASICPW-SECRET-42",
     "component": {"name": "SecurityCtrlr"}, "variable": {"name": "BasicAuthPassword"}}]}],
    # GetVariables answer, GetConfiguration answer with a vendor key, NotifyReport
    [3, "g1", {"getVariableResult": [{"attributeStatus": "Accepted", "attributeValue": "PW-2",
     "component": {"name": "SecurityCtrlr"}, "variable": {"name": "BasicAuthPassword"}}]}],
    [3, "g2", {"configurationKey": [{"key": "G_CardPin", "readonly": False, "value": "1234"},
     {"key": "AuthorizationKey", "value": "AUTHKEY-1"}, {"key": "HeartbeatInterval", "value": "60"}]}],
    [2, "r1", "NotifyReport", {"reportData": [{"component": {"name": "X"}, "variable": {"name": "VendorApiKey"},
     "variableAttribute": [{"type": "Actual", "value": "K-1"}]}]}],
    # idTag as an object, as a number; IdTokenType keeps its type; VPN shared key
    [2, "a7", "Authorize", {"idTag": {"nested": "IDTAG-SECRET-0001"}}],
    [2, "a6", "Authorize", {"idTag": 12345678901234567}],
    [2, "t1", "Authorize", {"idToken": {"idToken": "TOK-1", "type": "ISO14443"}}],
    [2, "n1", "SetNetworkProfile", {"connectionData": {"vpn": {"server": "v", "user": "u", "password": "VPNPW",
     "key": "VPN-KEY-1", "type": "IPSec"}, "apn": {"apn": "a", "apnPassword": "APNPW"}}}],
]  # fmt: skip
SECRETS = ["BASICPW-SECRET-42", "PW-2", "1234", "AUTHKEY-1", "K-1", "IDTAG-SECRET-0001", "12345678901234567",
           "TOK-1", "VPNPW", "VPN-KEY-1", "APNPW"]  # fmt: skip


@pytest.mark.parametrize("payload", PAYLOADS)
def test_text_and_parsed_payloads_hide_the_same_secrets(payload: object) -> None:
    text = json.dumps(payload)
    red = redact_text(text)
    assert json.loads(red) == redact_tokens(payload)
    assert not any(s in red for s in SECRETS), red
    assert REDACTED in red


def test_text_redaction_reads_escaped_keys_and_text_cut_short() -> None:
    """``leak_idtag_object_and_escaped_key.pcap``: ``"id\\u0054ag"`` is ``idTag`` to every JSON parser."""
    assert redact_text('[2,"a3","Authorize",{"id\\u0054ag":"ESCAPED-SECRET-77"}]') == (
        '[2,"a3","Authorize",{"id\\u0054ag":"«redacted»"}]'
    )
    assert redact_text('[2,"a7","Authorize",{"idTag":{"nested":"IDTAG-SECRET-0001"}}') == (
        '[2,"a7","Authorize",{"idTag":{"nested":"«redacted»"}}'
    )
    assert redact_text('[2,"c1","ChangeConfiguration",{"key":"AuthorizationKey","value":"AUTHKEY-SEC') == (
        '[2,"c1","ChangeConfiguration",{"key":"AuthorizationKey","value":"«redacted»'
    )
    # cut short before the entry says which key it is: its value may be a secret
    assert redact_text('[2,"v1","SetVariables",{"setVariableData":[{"attributeValue":"BASICPW-SECRET-42","com') == (
        '[2,"v1","SetVariables",{"setVariableData":[{"attributeValue":"«redacted»","com'
    )
    assert redact_text('[3,"g",{"configurationKey":[{"key":"HeartbeatInterval","value":"60"},{"value":"PIN-9') == (
        '[3,"g",{"configurationKey":[{"key":"HeartbeatInterval","value":"60"},{"value":"«redacted»'
    )
    assert redact_text("not json at all: idTag=x") == "not json at all: idTag=x"


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("AuthorizationKey", True),
        ("BasicAuthPassword", True),
        ("G_CardPin", True),
        ("G_Authentication", True),
        ("UserPIN", True),
        ("PinCode", True),
        ("VendorApiKey", True),
        ("MqttToken", True),
        ("ClientSecret", True),
        ("WebSocketPingInterval", False),
        ("HeartbeatInterval", False),
        ("AuthorizeRemoteTxRequests", False),
        ("MeterValueSampleInterval", False),
    ],
)
def test_secret_configuration_keys(name: str, secret: bool) -> None:
    assert secret_config_key(name) is secret


def test_query_values_are_hidden() -> None:
    assert redact_url("/ocpp/CP-SECRET-5?password=S3cr3t-P4ss-FUZZ&token=IDTAG-SECRET-0001") == (
        "/ocpp/CP-SECRET-5?password=«redacted»&token=«redacted»"
    )
    assert redact_url("/ocpp/CP1") == "/ocpp/CP1"
