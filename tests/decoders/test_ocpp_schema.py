"""OCPP schema loader and validator: every action found, exact paths and messages, agreement with jsonschema."""

from __future__ import annotations

import copy
import datetime
import importlib.util
import json
import re
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import fastjsonschema
import jsonschema
import pytest

from analyzer.decoders import ocpp_schema as S
from analyzer.events.ocpp import SchemaViolation
from analyzer.jsontext import BigNumber


def package_dir() -> Path:
    spec = importlib.util.find_spec("ocpp")
    assert spec is not None
    assert spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations)))


def all_schemas() -> list[tuple[str, str, str]]:
    return sorted((v, a, k) for v in S.VERSIONS for (a, k) in S._index(v))


# -- loader ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "requests", "responses", "sends"),
    [("1.6", 39, 39, 0), ("2.0.1", 64, 64, 0), ("2.1", 90, 90, 1)],
)
def test_loader_finds_every_action(version: str, requests: int, responses: int, sends: int) -> None:
    files = sorted(p.name for p in (package_dir() / S.FOLDERS[version] / "schemas").glob("*.json"))
    assert len(files) == requests + responses + sends
    index = S._index(version)
    assert sorted(index.values()) == files  # every file is reachable, none twice
    kinds = [k for (_, k) in index]
    assert (kinds.count(S.REQUEST), kinds.count(S.RESPONSE), kinds.count(S.SEND)) == (requests, responses, sends)
    for action in S.actions(version):  # every CALL has a response schema
        assert S.schema_file(version, action, S.RESPONSE) == f"{action}Response.json"
        expected = f"{action}.json" if version == "1.6" else f"{action}Request.json"
        assert S.schema_file(version, action, S.REQUEST) == expected
    for action, kind in index:
        schema = S.load_schema(version, action, kind)
        assert isinstance(schema, dict)
        assert schema.get("type") == "object"


def test_known_actions_and_send() -> None:
    assert {"BootNotification", "StartTransaction", "SecurityEventNotification", "SignedUpdateFirmware"} <= S.actions(
        "1.6"
    )
    assert {"BootNotification", "TransactionEvent", "NotifyEvent"} <= S.actions("2.0.1")
    assert "TransactionEvent" not in S.actions("1.6")
    assert {"AFRRSignal", "NotifyAllowedEnergyTransfer"} <= S.actions("2.1")
    assert S.send_only_actions("2.1") == {"NotifyPeriodicEventStream"}
    assert S.schema_file("2.1", "NotifyPeriodicEventStream", S.SEND) == "NotifyPeriodicEventStream.json"
    assert S.schema_file("2.1", "Heartbeat", S.SEND) == "HeartbeatRequest.json"  # a SEND of a CALL action
    assert S.versions_with("StartTransaction", S.REQUEST) == ("1.6",)
    assert S.versions_with("BootNotification", S.REQUEST) == ("1.6", "2.0.1", "2.1")
    assert S.versions_with("AFRRSignal", S.REQUEST) == ("2.1",)
    assert S.validate("1.6", "NoSuchAction", S.REQUEST, {}) is None
    assert S.validator("9.9", "BootNotification", S.REQUEST) is None


def test_every_schema_compiles_with_fastjsonschema() -> None:
    t0 = time.perf_counter()
    for key in all_schemas():
        assert S.validator(*key) is not None
        assert S.engine(*key) == "fastjsonschema", key
    assert time.perf_counter() - t0 < 60  # measured ~2 s for all 387 when none is cached


# -- paths and messages ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "parts", "path"),
    [
        ("data", [], ""),
        ("data.chargingStation", ["chargingStation"], "chargingStation"),
        (
            "data.meterValue[0].sampledValue[12].value",
            ["meterValue", 0, "sampledValue", 12, "value"],
            "meterValue[0].sampledValue[12].value",
        ),
        ("data[3]", [3], "[3]"),
    ],
)
def test_parse_name_and_dotted(name: str, parts: list[str | int], path: str) -> None:
    assert S.parse_name(name) == parts
    assert S.dotted(parts) == path


@pytest.mark.parametrize(
    ("rule", "parts", "rule_value", "instance", "definition", "expected"),
    [
        (
            "required",
            ["chargingStation"],
            ["model", "vendorName"],
            {"model": "m"},
            {},
            [("chargingStation.vendorName", "is required")],
        ),
        ("required", [], ["a", "b"], {}, {}, [("a", "is required"), ("b", "is required")]),
        (
            "additionalProperties",
            ["x", 0],
            False,
            {"ok": 1, "bad": 2},
            {"properties": {"ok": {}}},
            [("x[0].bad", "is not allowed (additional property)")],
        ),
        (
            "enum",
            ["reason"],
            ["PowerUp", "Watchdog"],
            "Nope",
            {},
            [("reason", "is not one of ['PowerUp', 'Watchdog']")],
        ),
        ("maxLength", ["chargePointModel"], 20, "x" * 21, {}, [("chargePointModel", "is longer than 20 characters")]),
        ("minLength", ["a"], 1, "", {}, [("a", "is shorter than 1 character")]),
        ("type", ["evseId"], "integer", "1", {}, [("evseId", "is not of type 'integer'")]),
        ("type", [], ["string", "null"], 1, {}, [("", "is not of type 'string' or 'null'")]),
        ("maximum", ["n"], 5, 6, {}, [("n", "is greater than the maximum of 5")]),
        ("minimum", ["n"], 0, -1, {}, [("n", "is less than the minimum of 0")]),
        ("maxItems", ["l"], 1, [1, 2], {}, [("l", "has more than 1 item")]),
        ("minItems", ["l"], 2, [1], {}, [("l", "has fewer than 2 items")]),
        ("format", ["timestamp"], "date-time", "x", {}, [("timestamp", "is not a valid date-time")]),
        ("multipleOf", ["limit"], 0.1, 0.15, {}, [("limit", "is not a multiple of 0.1")]),
        ("const", ["c"], 1, 2, {}, [("c", "fails 'const'")]),
    ],
)
def test_violation_messages(
    rule: str, parts: list[Any], rule_value: Any, instance: Any, definition: Any, expected: list[tuple[str, str]]
) -> None:
    got = S.violations(rule, parts, rule_value, instance, definition)
    assert [(v.path, v.message) for v in got] == expected
    assert {v.rule for v in got} == {rule}


@pytest.mark.parametrize(
    ("version", "action", "kind", "payload", "expected"),
    [
        (
            "2.0.1",
            "BootNotification",
            S.REQUEST,
            {"chargingStation": {"model": "m"}, "reason": "PowerUp"},
            [SchemaViolation("chargingStation.vendorName", "is required", "required")],
        ),
        (
            "1.6",
            "BootNotification",
            S.REQUEST,
            {"chargePointModel": "m"},
            [SchemaViolation("chargePointVendor", "is required", "required")],
        ),
        (
            "1.6",
            "BootNotification",
            S.REQUEST,
            {},
            [
                SchemaViolation("chargePointVendor", "is required", "required"),
                SchemaViolation("chargePointModel", "is required", "required"),
            ],
        ),
        (
            "1.6",
            "BootNotification",
            S.REQUEST,
            {"chargePointModel": "m", "chargePointVendor": "v", "colour": "red"},
            [SchemaViolation("colour", "is not allowed (additional property)", "additionalProperties")],
        ),
        (
            "2.0.1",
            "MeterValues",
            S.REQUEST,
            {"evseId": 1, "meterValue": [{"timestamp": "2020-01-01T00:00:00Z", "sampledValue": [{"value": "1"}]}]},
            [SchemaViolation("meterValue[0].sampledValue[0].value", "is not of type 'number'", "type")],
        ),
        (
            "2.0.1",
            "MeterValues",
            S.REQUEST,
            {"evseId": 1, "meterValue": [{"timestamp": "2020-01-01 00:00", "sampledValue": [{"value": 1}]}]},
            [SchemaViolation("meterValue[0].timestamp", "is not a valid date-time", "format")],
        ),
        (
            "2.0.1",
            "MeterValues",
            S.REQUEST,
            {"evseId": 1, "meterValue": []},
            [SchemaViolation("meterValue", "has fewer than 1 item", "minItems")],
        ),
        ("2.0.1", "MeterValues", S.REQUEST, [], [SchemaViolation("", "is not of type 'object'", "type")]),
        (
            "2.0.1",
            "Heartbeat",
            S.RESPONSE,
            {"currentTime": "２０２６-01-01T00:00:00Z"},
            [SchemaViolation("currentTime", "is not a valid date-time", "format")],
        ),
        (
            "1.6",
            "GetInstalledCertificateIds",
            S.REQUEST,
            {"certificateType": "Other"},  # $ref inside a urn $id
            [
                SchemaViolation(
                    "certificateType",
                    "is not one of ['CentralSystemRootCertificate', 'ManufacturerRootCertificate']",
                    "enum",
                )
            ],
        ),
        (
            "2.0.1",
            "BootNotification",
            S.RESPONSE,
            {
                "currentTime": "2026-01-01T00:00:00Z",
                "interval": 1,
                "status": "Accepted",
                "customData": {"vendorId": "v", "x": 1},
            },
            [],
        ),
    ],
)
def test_real_schema_errors(
    version: str, action: str, kind: str, payload: Any, expected: list[SchemaViolation]
) -> None:
    before = copy.deepcopy(payload)
    assert list(S.validate(version, action, kind, payload) or ()) == expected
    assert payload == before  # defaults are never written into the payload


def test_multiple_of_uses_decimal_arithmetic() -> None:
    def profile(limit: Any) -> dict[str, Any]:
        schedule = {"chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}]}
        return {
            "connectorId": 1,
            "csChargingProfiles": {
                "chargingProfileId": 1,
                "stackLevel": 0,
                "chargingProfilePurpose": "TxDefaultProfile",
                "chargingProfileKind": "Absolute",
                "chargingSchedule": schedule,
            },
        }

    assert S.validate("1.6", "SetChargingProfile", S.REQUEST, profile(0.3)) == ()  # 0.3 / 0.1 is 2.9999999999999996
    assert S.validate("1.6", "SetChargingProfile", S.REQUEST, profile(16)) == ()
    (v,) = S.validate("1.6", "SetChargingProfile", S.REQUEST, profile(0.35)) or ()
    assert (v.path, v.rule) == ("csChargingProfiles.chargingSchedule.chargingSchedulePeriod[0].limit", "multipleOf")


# -- cross-check with jsonschema ---------------------------------------------------------------------------------------

_DATE_TIME = re.compile(r"(\d{4}-\d\d-\d\d)[Tt](\d\d):(\d\d):(\d\d)(\.\d+)?([Zz]|[+-]\d\d:?\d\d)", re.ASCII)


def rfc3339(value: object) -> bool:
    """An independent date-time check (RFC 3339, plus the ±hhmm offsets fastjsonschema also accepts)."""
    if not isinstance(value, str):
        return True
    m = _DATE_TIME.fullmatch(value)
    if m is None:
        return False
    try:
        datetime.date.fromisoformat(m.group(1))
    except ValueError:
        return False
    off = m.group(6)
    off_ok = off in "Zz" or (int(off[1:3]) <= 23 and int(off[-2:]) <= 59)
    return int(m.group(2)) <= 23 and int(m.group(3)) <= 59 and int(m.group(4)) <= 60 and off_ok


def uri(value: object) -> bool:
    if not isinstance(value, str):
        return True
    return bool(urlsplit(value).scheme) and not re.search(r"\s", value) and re.match(r"\w+:", value) is not None


CHECKER = jsonschema.FormatChecker()
CHECKER.checks("date-time")(rfc3339)
CHECKER.checks("uri")(uri)


def reference(version: str, action: str, kind: str) -> tuple[jsonschema.protocols.Validator, bool]:
    """jsonschema's validator for a schema, and whether payloads must be parsed with Decimal floats for it: as the
    ocpp package does for the three 1.6 schemas with ``multipleOf: 0.1``, which float division gets wrong."""
    text = (S.schema_dir(version) / str(S.schema_file(version, action, kind))).read_text(encoding="utf-8-sig")
    decimal = "multipleOf" in text
    schema = json.loads(text, parse_float=Decimal) if decimal else json.loads(text)
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=CHECKER), decimal


def resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        node: Any = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def example(schema: dict[str, Any], root: dict[str, Any], full: bool) -> Any:
    """A valid instance: required properties only, or every property (``full``); one item per array."""
    s = resolve(schema, root)
    if "enum" in s:
        return s["enum"][-1 if full else 0]
    kind = s.get("type")
    kind = kind[0] if isinstance(kind, list) else kind
    if kind == "object":
        props = s.get("properties", {})
        keys = list(props) if full else [k for k in s.get("required", []) if k in props]
        return {k: example(props[k], root, full) for k in keys}
    if kind == "array":
        count = max(s.get("minItems", 0), 1 if full else 0)
        return [example(s.get("items", {}), root, full) for _ in range(count)]
    if kind == "string":
        if s.get("format") == "date-time":
            return "2024-02-29T23:59:59.5Z"
        if s.get("format") == "uri":
            return "https://csms.example/ocpp"
        return "x" * max(1, s.get("minLength", 0))
    if kind in ("integer", "number"):
        default = 0 if kind == "integer" else 0.5 if "multipleOf" in s else 2.5
        return s.get("minimum", s.get("maximum", default))
    if kind == "boolean":
        return True
    return {}


MUTATIONS_PER_DOC = 40
WRONG_TYPE = {dict: [], list: {}, str: 12, int: "1", float: "1.5", bool: "true", type(None): 0}


def walk(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    yield path, value
    if isinstance(value, dict):
        for k, v in value.items():
            yield from walk(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from walk(v, (*path, i))


def replaced(doc: Any, path: tuple[Any, ...], new: Any, delete: bool = False) -> Any:
    out = copy.deepcopy(doc)
    if not path:
        return new
    node = out
    for p in path[:-1]:
        node = node[p]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = new
    return out


def mutations(doc: Any) -> Iterator[Any]:
    for path, value in walk(doc):
        yield replaced(doc, path, WRONG_TYPE[type(value)])
        if path and isinstance(path[-1], str):
            yield replaced(doc, path, None, delete=True)
        if isinstance(value, dict):
            yield replaced(doc, path, {**value, "unexpectedProperty": 1})
        if isinstance(value, list):
            yield replaced(doc, path, [])
            yield replaced(doc, path, value * 300)
        if isinstance(value, str):
            yield replaced(doc, path, "NotAnEnumValue")
            yield replaced(doc, path, value * 1000)
            yield replaced(doc, path, "")
            yield replaced(doc, path, "2024-02-30T00:00:00Z")
            yield replaced(doc, path, "2024-01-01T00:00:00")
            yield replaced(doc, path, "not a uri")
        if isinstance(value, int | float) and not isinstance(value, bool):
            yield replaced(doc, path, -1)
            yield replaced(doc, path, 0.35)
            yield replaced(doc, path, 10**6)


@pytest.mark.parametrize("version", S.VERSIONS)
def test_agrees_with_jsonschema(version: str) -> None:
    """fastjsonschema (ours) and jsonschema agree valid/invalid on generated and mutated payloads of every schema;
    for an invalid one, the path we report is one of the paths jsonschema reports."""
    checked = invalid = 0
    for action, kind in sorted(S._index(version)):
        root = S.load_schema(version, action, kind)
        assert root is not None
        ours = S.validator(version, action, kind)
        assert ours is not None
        ref, decimal = reference(version, action, kind)
        for full in (False, True):
            doc = example(root, root, full)
            assert ours(doc) == (), (action, kind, full)
            variants = list(mutations(doc))
            stride = max(1, len(variants) // MUTATIONS_PER_DOC)  # a spread-out sample keeps this under seconds
            for candidate in [doc, *variants[::stride]]:
                got = ours(candidate)
                instance = json.loads(json.dumps(candidate), parse_float=Decimal) if decimal else candidate
                errors = list(ref.iter_errors(instance))
                assert (got == ()) == (not errors), (version, action, kind, candidate, got, errors[:1])
                if errors:
                    invalid += 1
                    theirs = {
                        v.path
                        for e in errors
                        for v in S.violations(
                            str(e.validator), list(e.absolute_path), e.validator_value, e.instance, e.schema
                        )
                    }
                    assert got[0].path in theirs, (action, kind, got, theirs)
                checked += 1
    assert checked > 1000
    assert invalid > checked // 3


def _outcome(check: Any, payload: Any) -> tuple[Any, ...]:
    """What a fastjsonschema validator does with ``payload``: ``("ok",)`` or the exception it raises, in full."""
    try:
        check(payload)
    except fastjsonschema.JsonSchemaValueException as e:
        return type(e), e.message, e.name, e.rule, e.value is payload, repr(e.value), repr(e.definition)
    except (OverflowError, ValueError, TypeError, RecursionError) as e:
        return type(e), str(e)
    return ("ok",)


class _Str(str):
    """A ``str`` subclass (JSON never makes one): the set test of ``_Draft04`` leaves it to the member checks."""


def _enum_values(schema: Any) -> Iterator[Any]:
    """Every enum member of ``schema`` (and its subschemas)."""
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "enum" and isinstance(value, list):
                yield from value
            else:
                yield from _enum_values(value)
    elif isinstance(schema, list):
        for item in schema:
            yield from _enum_values(item)


@pytest.mark.parametrize("version", S.VERSIONS)
def test_set_enum_validators_behave_as_fastjsonschema(version: str) -> None:
    """``compile_fast`` (enum strings tested as a set first) and ``fastjsonschema.compile`` accept and reject the
    same payloads with the same exception (message, path, rule, value), on every schema: generated payloads, their
    mutations, and every string of an enum replaced by each enum member, a near miss, a ``str`` subclass, a number."""
    compared = 0
    for action, kind in sorted(S._index(version)):
        root = S.load_schema(version, action, kind)
        assert root is not None
        ours = S.compile_fast(root)
        theirs = fastjsonschema.compile(root, formats=S._FORMATS, use_default=False)
        members = sorted({v for v in _enum_values(root) if isinstance(v, str)})
        for full in (False, True):
            doc = example(root, root, full)
            candidates = [doc, *mutations(doc)]
            for path, value in walk(doc):
                if isinstance(value, str) and value in members:
                    others = [*members[:8], value + " ", value.lower(), _Str(value), 1, True, None, {value: 1}]
                    candidates += [replaced(doc, path, other) for other in others]
            for candidate in candidates:
                assert _outcome(ours, candidate) == _outcome(theirs, candidate), (action, kind, candidate)
                compared += 1
    assert compared > 1000


def test_a_fastjsonschema_whose_generators_changed_still_validates(monkeypatch: pytest.MonkeyPatch) -> None:
    """``compile_fast`` leans on fastjsonschema's generator classes; if a release reshapes them, its own
    ``compile`` validates instead, with the same results."""
    from analyzer.decoders import ocpp_schema

    def reshaped(self: object) -> None:
        raise AttributeError("'CodeGeneratorDraft04' object has no attribute '_definition'")

    monkeypatch.setattr(ocpp_schema._Draft04, "generate_enum", reshaped)
    monkeypatch.setattr(ocpp_schema, "_validators", {})
    check = ocpp_schema.validator("1.6", "StatusNotification", "request")
    assert check is not None
    ok = {"connectorId": 1, "errorCode": "NoError", "status": "Available"}
    assert check(ok) == ()
    (v,) = check({**ok, "status": "Sleeping"})
    assert v.path == "status"


def test_compiled_code_names_shared_definitions() -> None:
    """``compile_fast``'s code names each subschema its errors carry (``_SHARED``) instead of writing it at every
    ``raise``: the exception's ``definition`` equals fastjsonschema's (with ``$ref``s expanded), is a copy (never
    the cached schema's own dicts), and the code is far shorter."""
    from fastjsonschema.ref_resolver import RefResolver

    root = S.load_schema("1.6", "MeterValues", "request")
    assert root is not None
    resolver = RefResolver.from_schema(root, handlers={}, store={})
    ours = S._Draft04(root, resolver=resolver, formats=S._FORMATS, use_default=False)
    theirs = fastjsonschema.draft04.CodeGeneratorDraft04(
        root, resolver=RefResolver.from_schema(root, handlers={}, store={}), formats=S._FORMATS, use_default=False
    )
    assert "_SHARED[" in ours.func_code
    assert "definition={" not in ours.func_code
    assert len(ours.func_code) * 2 < len(theirs.func_code)
    check = S.compile_fast(root)
    reference = fastjsonschema.compile(root, formats=S._FORMATS, use_default=False)
    payload = {"connectorId": 1, "meterValue": [{"timestamp": "2024-05-14T07:59:41Z", "sampledValue": [{"x": 1}]}]}
    with pytest.raises(fastjsonschema.JsonSchemaValueException) as ours_e:
        check(payload)
    with pytest.raises(fastjsonschema.JsonSchemaValueException) as theirs_e:
        reference(payload)
    assert ours_e.value.definition == theirs_e.value.definition
    assert repr(ours_e.value.definition) == repr(theirs_e.value.definition)
    sampled = root["properties"]["meterValue"]["items"]["properties"]["sampledValue"]["items"]
    assert ours_e.value.definition == sampled
    assert ours_e.value.definition is not sampled
    # an enum of strings only: the member checks after the set test, as one ``any`` over the shared members
    assert "any(" in ours.func_code
    assert "== 'Wh' or" not in ours.func_code
    for unit in ("Wh", "wh", "Wh\x00", 1, None, True, _Str("Wh"), _Str("Xx")):
        value = {"connectorId": 1, "meterValue": [{"timestamp": "2024-05-14T07:59:41Z", "sampledValue": []}]}
        value["meterValue"][0]["sampledValue"] = [{"value": "1", "unit": unit}]
        assert _outcome(check, value) == _outcome(reference, value), unit


def _full_only(version: str, action: str, kind: str) -> Any:
    """The ``check`` of a schema compiled without ``accepts`` (the validator alone)."""
    root = S.load_schema(version, action, kind)
    assert root is not None
    return S._compile((version, action, kind), root)


def test_accepts_is_written_for_every_schema_but_the_multiple_of_ones() -> None:
    without = [key for key in all_schemas() if S.compile_accepts(S.load_schema(*key)) is None]  # type: ignore[arg-type]
    assert without == [
        ("1.6", "GetCompositeSchedule", "response"),
        ("1.6", "RemoteStartTransaction", "request"),
        ("1.6", "SetChargingProfile", "request"),
    ]
    assert all("multipleOf" in json.dumps(S.load_schema(*key)) for key in without)


@pytest.mark.parametrize(
    "schema",
    [
        {"type": ["string", "null"]},
        {"type": "object", "properties": {"a": {"type": "integer", "multipleOf": 2}}},
        {"type": "string", "enum": ["a", 1]},
        {"type": "string", "enum": "a"},
        {"type": "string", "format": ["date-time"]},
        {"type": "string", "format": "email"},
        {"type": "integer", "minimum": 0, "exclusiveMinimum": True},
        {"type": "array", "items": [{"type": "string"}]},
        {"type": "object", "additionalProperties": {"type": "string"}},
        {"type": "object", "properties": {"a": {"$ref": "#/definitions/missing"}}},
        {"maxLength": 3},
        True,
    ],
)
def test_no_accepts_for_what_it_does_not_test(schema: Any) -> None:
    """A schema with a keyword, or a form of one, that ``accepts`` has no test for gets none: the validator alone."""
    assert S.compile_accepts({"type": "object", "properties": {"x": schema}}) is None


def test_no_accepts_for_a_ref_cycle() -> None:
    cycle = {"a": {"$ref": "#/definitions/b"}, "b": {"$ref": "#/definitions/a"}}
    assert (
        S.compile_accepts({"type": "object", "properties": {"x": {"$ref": "#/definitions/a"}}, "definitions": cycle})
        is None
    )
    ok = {"a": {"type": "string"}}
    assert S.compile_accepts({"type": "object", "properties": {"x": {"$ref": "#/definitions/a"}}, "definitions": ok})


@pytest.mark.parametrize("version", S.VERSIONS)
def test_accepts_only_what_the_validator_finds_valid(version: str) -> None:
    """``accepts`` (the fast test ``check`` asks first) is true only for payloads fastjsonschema finds valid, and
    ``check`` gives what the validator alone gives, on every schema: generated payloads (which it accepts), their
    mutations, every enum string replaced by members, near misses, a ``str`` subclass, a number, an object; and
    values fastjsonschema accepts but ``accepts`` leaves to it (``1.0`` for an integer, a ``BigNumber``)."""
    compared = refused_valid = docs = 0
    for action, kind in sorted(S._index(version)):
        root = S.load_schema(version, action, kind)
        assert root is not None
        accepts = S.compile_accepts(root)
        if accepts is None:
            continue
        full = S.compile_fast(root)
        check = S.validator(version, action, kind)
        alone = _full_only(version, action, kind)
        members = sorted({v for v in _enum_values(root) if isinstance(v, str)})
        for complete in (False, True):
            doc = example(root, root, complete)
            if not any(type(value) is float for _, value in walk(doc)):  # ``"minimum": 0.0`` on an integer
                docs += 1
                assert accepts(doc) is True, (action, kind, complete)
            candidates = [doc, *mutations(doc)]
            for path, value in walk(doc):
                if isinstance(value, str) and value in members:
                    others = [*members[:8], value + " ", _Str(value), 1, None, [value], {value: 1}]
                    candidates += [replaced(doc, path, other) for other in others]
                if type(value) is int:
                    candidates += [replaced(doc, path, float(value)), replaced(doc, path, True)]
                if type(value) is float:
                    candidates.append(replaced(doc, path, BigNumber("1e999")))
            for candidate in candidates:
                try:
                    fast = accepts(candidate)
                except (KeyError, TypeError):
                    fast = False
                if fast:
                    assert _outcome(full, candidate) == ("ok",), (action, kind, candidate)
                elif _outcome(full, candidate) == ("ok",):
                    refused_valid += 1
                assert check(candidate) == alone(candidate), (action, kind, candidate)  # type: ignore[misc]
                compared += 1
    assert compared > 1000
    assert docs > 100
    assert refused_valid > 0  # the cases left to the validator were tried


def test_accepts_code_of_a_meter_values_request() -> None:
    """One test per keyword; an optional enum in one set test (with the absent marker); a required property read
    with ``[]``; and what the fast test refuses or raises on goes to the validator, which reports it."""
    root = S.load_schema("1.6", "MeterValues", "request")
    assert root is not None
    writer = S._AcceptsWriter(root)
    code = writer.code()
    assert "if v7.get('unit', _ABSENT) not in _C" in code
    assert "v1 = data['connectorId']" in code
    assert ".keys() <=" not in code  # additionalProperties: false is one call of a frozenset's issuperset
    check = S.validator("1.6", "MeterValues", "request")
    assert check is not None
    sampled = {"value": "1", "unit": "Wh"}
    ok = {"connectorId": 1, "meterValue": [{"timestamp": "2024-05-14T07:59:41Z", "sampledValue": [sampled]}]}
    assert check(ok) == ()
    for bad, path, rule in (
        ({**sampled, "unit": ["Wh"]}, "meterValue[0].sampledValue[0].unit", "type"),  # TypeError in accepts
        ({"unit": "Wh"}, "meterValue[0].sampledValue[0].value", "required"),  # KeyError in accepts
        ({**sampled, "unit": "wh"}, "meterValue[0].sampledValue[0].unit", "enum"),
        ({**sampled, "x": 1}, "meterValue[0].sampledValue[0].x", "additionalProperties"),
    ):
        payload = {"connectorId": 1, "meterValue": [{"timestamp": "2024-05-14T07:59:41Z", "sampledValue": [bad]}]}
        (v,) = check(payload)
        assert (v.path, v.rule) == (path, rule)
    (v,) = check({**ok, "connectorId": 1.0})  # refused by accepts (type is int), and by draft-04's integer too
    assert (v.path, v.rule) == ("connectorId", "type")
