"""The OCPP JSON schemas of the ``ocpp`` package (The Mobility House, 2.1.0), read unmodified, compiled on first use.

Layout of the package (``ocpp/<folder>/schemas/*.json``): 1.6 (``v16``, draft-04, and draft-06 for the security
whitepaper messages) names a request ``<Action>.json`` and a response ``<Action>Response.json``; 2.0.1 (``v201``)
and 2.1 (``v21``, draft-06) name them ``<Action>Request.json`` / ``<Action>Response.json``, and 2.1's SEND-only
``NotifyPeriodicEventStream.json`` has no suffix. Files are read as ``utf-8-sig`` (some OCA schemas once had a BOM)
through ``importlib.resources``; only the package's empty ``__init__`` is imported, none of its runtime code. The
schema content is CC BY-ND 4.0 (OCA): it is never edited; tolerance lives in code.

Validation uses ``fastjsonschema`` with ``use_default=False`` (its default writes schema ``default`` values into
the payload), its code generators with one change (``compile_fast``: an enum's strings are tested as a set before
fastjsonschema's member-by-member check, same results and errors) and its built-in formats (``date-time`` is RFC
3339 with a mandatory offset or ``Z``; ``uri``). Measured with fastjsonschema 2.22.3 and ocpp 2.1.0 (Python 3.11):
all 387 schema files compile, the draft-04 1.6 ones included, so the ``jsonschema`` fallback in ``_compile`` is never
taken with these versions; it stays for other package versions, and says so through ``engine()``. Compiling one
schema takes a median 2.7 ms and up to ~100 ms for the largest 2.1 ones (``ReportChargingProfiles``,
``RequestStartTransaction``), about 2 s for all 387, which is why compilation is lazy and cached. Validating a valid
BootNotification, Heartbeat or StatusNotification takes 1.5–2 µs, a 2.0.1 MeterValues with ten sampled values ~20
µs, an invalid message ~8 µs (fastjsonschema raises; times measured before the enum sets, which make enum-heavy
payloads such as MeterValues cheaper).

A validator first asks a test compiled from the same schema (``compile_accepts``: true only for a valid payload,
one check per keyword, no error reporting); fastjsonschema's code runs only when that test says no, so valid
payloads, what chargers send, cost a fraction (the 24,619 validations of a 200k-packet gateway capture, 1.6
MeterValues, StatusNotification, Heartbeat, BootNotification: 0.48 G instructions, 1.18 G with fastjsonschema's).

Only the first error is reported (``fast_fail``), converted to ``SchemaViolation``s with a dotted path
(``data.chargingStation must contain ['model', 'vendorName'] properties`` on a payload lacking ``vendorName`` →
``SchemaViolation("chargingStation.vendorName", "is required", "required")``; one violation per missing property).
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Callable, Sequence
from importlib.abc import Traversable
from importlib.resources import files
from typing import Any

import fastjsonschema
from fastjsonschema.draft04 import CodeGeneratorDraft04
from fastjsonschema.draft06 import CodeGeneratorDraft06
from fastjsonschema.ref_resolver import RefResolver

from analyzer.events.ocpp import SchemaViolation

VERSIONS: tuple[str, ...] = ("1.6", "2.0.1", "2.1")
FOLDERS: dict[str, str] = {"1.6": "v16", "2.0.1": "v201", "2.1": "v21"}
REQUEST, RESPONSE, SEND = "request", "response", "send"

Validator = Callable[[Any], tuple[SchemaViolation, ...]]

_NAME_PART = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]")
# fastjsonschema's own regexes, made ASCII-only: its ``\d`` would accept "２０００-01-01T00:00:00Z" (full-width digits)
_FORMATS: dict[str, str] = {k: "(?a)" + CodeGeneratorDraft04.FORMAT_REGEXS[k] for k in ("date-time", "uri")}


def schema_dir(version: str) -> Traversable:
    """The folder holding ``version``'s schema files inside the installed ``ocpp`` package."""
    return files("ocpp") / FOLDERS[version] / "schemas"


@functools.cache
def _index(version: str) -> dict[tuple[str, str], str]:
    """(action, kind) → file name, for every schema file of ``version``."""
    out: dict[tuple[str, str], str] = {}
    two_x = version != "1.6"
    for entry in schema_dir(version).iterdir():
        name = entry.name
        if not name.endswith(".json"):
            continue
        stem = name[:-5]
        if stem.endswith("Response"):
            out[(stem[: -len("Response")], RESPONSE)] = name
        elif two_x and stem.endswith("Request"):
            out[(stem[: -len("Request")], REQUEST)] = name
        elif two_x:
            out[(stem, SEND)] = name
        else:
            out[(stem, REQUEST)] = name
    return out


def actions(version: str) -> frozenset[str]:
    """Actions ``version`` defines a CALL (request) schema for."""
    return frozenset(a for (a, k) in _index(version) if k == REQUEST)


def send_only_actions(version: str) -> frozenset[str]:
    """Actions ``version`` defines only as a SEND (2.1: ``NotifyPeriodicEventStream``)."""
    return frozenset(a for (a, k) in _index(version) if k == SEND)


def schema_file(version: str, action: str, kind: str) -> str | None:
    """The file name of the schema for ``action``'s ``kind`` (``request``, ``response``, ``send``) or ``None``.

    A SEND uses the action's SEND-only schema when there is one, else its request schema.
    """
    index = _index(version)
    name = index.get((action, kind))
    if name is None and kind == SEND:
        name = index.get((action, REQUEST))
    return name


def versions_with(action: str, kind: str) -> tuple[str, ...]:
    """The versions that have a schema for ``action``'s ``kind``, in ``VERSIONS`` order."""
    return tuple(v for v in VERSIONS if schema_file(v, action, kind) is not None)


@functools.cache
def load_schema(version: str, action: str, kind: str) -> dict[str, Any] | None:
    """The parsed schema (shared: do not modify), or ``None`` when ``version`` has none for it."""
    name = schema_file(version, action, kind)
    if name is None:
        return None
    schema: dict[str, Any] = json.loads((schema_dir(version) / name).read_text(encoding="utf-8-sig"))
    return schema


_validators: dict[tuple[str, str, str], Validator | None] = {}
_engines: dict[tuple[str, str, str], str] = {}


def validator(version: str, action: str, kind: str) -> Validator | None:
    """The compiled validator (cached) for ``action``'s ``kind`` in ``version``, or ``None`` without a schema.

    A validator returns ``()`` for a valid payload, else the violations of the first error found.
    """
    key = (version, action, kind)
    try:
        return _validators[key]
    except KeyError:
        pass
    schema = load_schema(version, action, kind) if version in FOLDERS else None
    compiled = None if schema is None else _compile(key, schema)
    _validators[key] = compiled
    return compiled


def engine(version: str, action: str, kind: str) -> str | None:
    """Which library validates this schema (``"fastjsonschema"`` or ``"jsonschema"``), once compiled."""
    return _engines.get((version, action, kind))


def validate(version: str, action: str, kind: str, payload: Any) -> tuple[SchemaViolation, ...] | None:
    """The payload's violations (``()`` when valid), or ``None`` when there is no schema to validate it against."""
    check = validator(version, action, kind)
    return None if check is None else check(payload)


class _Draft04(CodeGeneratorDraft04):  # type: ignore[misc]
    """fastjsonschema's draft-04 code generator, whose ``enum`` checks try the enum's strings as a set first, and
    whose code names each schema definition its errors carry instead of writing it out at every ``raise``.

    fastjsonschema checks an enum member by member (``isinstance(v, str) and v == 'Wh' or ...``: up to ~20 pairs per
    MeterValues sampled value). Here that check is preceded by ``type(v) is str and v in {...}``; when that holds,
    some member's own test holds too, so the member-by-member check could not fail and is skipped. Otherwise it runs
    as before: a payload gets the same result and the same error. When every member is a string, the member by
    member check is written ``isinstance(v, str) and any(v == m for m in members)``: the same tests in the same
    order (``a and b or a and c`` is ``a and (b or c)``), in less code.

    Each ``raise`` of fastjsonschema's code writes its subschema as a literal (``definition={...}``), most of the
    code's text, parsed and compiled by every process that validates. Here a ``raise`` names the definition in
    ``_SHARED`` (``shared``, put in the code's globals by ``compile_fast``), a copy of the value that literal
    would make (the subschema with its ``$ref``s expanded), one per subschema (``shared_at``, by the identity of the
    subschema's dict, which the generator holds): the exception carries an equal ``definition``, never the schema's
    own dicts (``load_schema``'s are shared). Measured (callgrind) on the eight 1.6 schemas of a gateway capture
    (BootNotification, Heartbeat, StatusNotification, MeterValues, requests and responses): compiling them took
    140 M instructions, 100 M with both changes (MeterValues' code: 101 KB → 31 KB of text)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.shared: list[Any] = []  # the values ``_SHARED[i]`` names in the code
        self.shared_at: dict[tuple[str, int], int] = {}  # index in ``shared``, by (what, id of the subschema)
        self._held: list[Any] = []  # the subschemas keyed by their id: kept, so that no id is reused

    def _share(self, what: str, make: Callable[[], Any]) -> int:
        """The index in ``_SHARED`` of a copy of ``make()``: ``what`` of the current subschema."""
        key = (what, id(self._definition))
        index = self.shared_at.get(key)
        if index is None:
            index = self.shared_at[key] = len(self.shared)
            self.shared.append(copy.deepcopy(make()))
            self._held.append(self._definition)
        return index

    def exc(self, msg: str, *args: Any, append_to_msg: str | None = None, rule: str | None = None) -> None:
        """fastjsonschema's ``exc`` (2.22.3) with ``definition=`` naming a shared value instead of a literal."""
        if not (self._detailed_exceptions and self._fast_fail):
            super().exc(msg, *args, append_to_msg=append_to_msg, rule=rule)
            return
        arg = '"' + msg + '"'
        if append_to_msg:
            arg += " + (" + append_to_msg + ")"
        index = self._share("definition", lambda: self._expand_refs(self._definition))
        definition = self.shared[index]
        definition_rule = self.e(definition.get(rule) if isinstance(definition, dict) else None)
        code = "raise JsonSchemaValueException(" + arg + ', value={variable}, name="{name}", definition=_SHARED['
        self.l(code + str(index) + "], rule={rule})", *args, rule=repr(rule), definition_rule=definition_rule)

    def generate_enum(self) -> None:
        enum = self._definition["enum"]
        strings = sorted({v for v in enum if isinstance(v, str)}) if isinstance(enum, list | tuple) else []
        if not strings:
            super().generate_enum()
            return
        members = "{" + ", ".join(map(repr, strings)) + "}"  # after ``in``, compiled into one frozenset constant
        with self.l("if not (type({variable}) is str and {variable} in {}):", members):
            if not all(type(v) is str for v in enum):
                super().generate_enum()
                return
            listed = self._share("enum", lambda: tuple(enum))
            test = "if not (isinstance({variable}, str) and any({variable} == m for m in _SHARED[{}])):"
            with self.l(test, listed):
                self.exc("{name} must be one of {}", self.e(enum), rule="enum")


class _Draft06(_Draft04, CodeGeneratorDraft06):  # type: ignore[misc]
    """fastjsonschema's draft-06 code generator with ``_Draft04``'s enum checks."""


def compile_fast(schema: dict[str, Any]) -> Callable[[Any], Any]:
    """``fastjsonschema.compile(schema, formats=_FORMATS, use_default=False)`` for the draft-04 and draft-06 schemas
    of the ``ocpp`` package (another ``$schema`` raises ``JsonSchemaDefinitionException``), with ``_Draft04``'s
    cheaper enum checks. The validator raises as fastjsonschema's does, with the same exception."""
    schema_uri = schema.get("$schema", "")
    generator_class = _Draft04 if "draft-04" in schema_uri else _Draft06 if "draft-06" in schema_uri else None
    if generator_class is None:
        raise fastjsonschema.JsonSchemaDefinitionException(f"not a draft-04 or draft-06 schema: {schema_uri!r}")
    resolver = RefResolver.from_schema(schema, handlers={}, store={})
    generator = generator_class(schema, resolver=resolver, formats=_FORMATS, use_default=False)
    code = generator.func_code
    state = generator.global_state
    state["_SHARED"] = tuple(generator.shared)
    exec(code, state)  # how fastjsonschema.compile makes the validator
    return functools.partial(state[resolver.get_scope_name()], custom_formats=_FORMATS)


class _Unsupported(Exception):
    """A schema keyword (or a form of one) that ``_AcceptsWriter`` writes no test for."""


# keywords fastjsonschema does not validate with (``definitions`` only holds what ``$ref``s point to)
_ANNOTATIONS = frozenset(
    {"$schema", "$id", "id", "title", "description", "comment", "$comment", "javaType", "default", "definitions"}
)
# the keywords tested, by the JSON type a subschema names
_KEYWORDS_OF_TYPE: dict[str, frozenset[str]] = {
    "string": frozenset({"maxLength", "minLength", "format"}),
    "integer": frozenset({"minimum", "maximum"}),
    "number": frozenset({"minimum", "maximum"}),
    "boolean": frozenset(),
    "object": frozenset({"properties", "required", "additionalProperties"}),
    "array": frozenset({"items", "minItems", "maxItems", "additionalItems"}),
}
_KNOWN_KEYWORDS = frozenset({"type", "enum"}).union(*_KEYWORDS_OF_TYPE.values())
_TYPE_TESTS = {
    "string": "type({v}) is not str",
    "integer": "type({v}) is not int",
    "number": "type({v}) is not float and type({v}) is not int",
    "boolean": "type({v}) is not bool",
    "object": "type({v}) is not dict",
    "array": "type({v}) is not list",
}
_BOUND_TESTS = {
    "minLength": "len({v}) < {n}",
    "maxLength": "len({v}) > {n}",
    "minItems": "len({v}) < {n}",
    "maxItems": "len({v}) > {n}",
    "minimum": "{v} < {n}",
    "maximum": "{v} > {n}",
}
_ABSENT = object()  # what ``dict.get`` gives for a property the payload does not have


class _AcceptsWriter:
    """Writes ``accepts(data)``: true only for a payload the schema's fastjsonschema validator finds valid.

    Why: fastjsonschema's code does per value what an error report needs (a set of the keys left to check, the
    variables of a path, a test per keyword) although chargers' payloads are valid; a MeterValues request costs it
    ~2,000 instructions per sampled value. ``accepts`` does one test per keyword, in one function, and says no
    more than true or false: ``_compile``'s ``check`` asks it first, and the validator only when it is false (the
    violations, or ``()`` for a valid payload it refused), so results do not change.

    It knows the keywords of ``_KNOWN_KEYWORDS``: every subschema names one JSON type (a keyword of another type
    never applies), enums hold strings only, ``$ref`` points to ``#/definitions``, formats are ``_FORMATS``'; a
    schema using anything else gets no ``accepts`` (``_Unsupported``). Its tests are exact where fastjsonschema's
    are lenient (``type(v) is int`` refuses ``1.0`` and ``True``; a ``BigNumber`` is no ``float``): what they
    refuse is left to the validator. A test may also raise ``KeyError`` (a required property is missing) or
    ``TypeError`` (a list or an object where an enum string belongs): the payload is then left to the validator
    too.
    """

    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self.lines = ["def accepts(data):"]
        self.names: dict[str, Any] = {"_ABSENT": _ABSENT}
        self.count = 0

    def code(self) -> str:
        """The source of ``accepts``; ``_Unsupported`` when the schema uses a keyword this does not test."""
        self.node(self.root, "data", 1, ())
        self.lines.append("    return True")
        return "\n".join(self.lines)

    def const(self, value: Any) -> str:
        """A global name for ``value`` in the function's code."""
        name = f"_C{len(self.names)}"
        self.names[name] = value
        return name

    def line(self, text: str, indent: int) -> None:
        self.lines.append("    " * indent + text)

    def fail_if(self, condition: str, indent: int) -> None:
        self.line(f"if {condition}: return False", indent)

    def variable(self) -> str:
        self.count += 1
        return f"v{self.count}"

    def resolved(self, schema: Any, refs: tuple[str, ...]) -> tuple[dict[str, Any], tuple[str, ...]]:
        """``schema`` with its ``$ref`` followed (fastjsonschema: a ``$ref`` overrides its sibling keywords), and
        the ``$ref``s followed to reach it; its keywords checked."""
        while isinstance(schema, dict) and "$ref" in schema:
            ref = schema["$ref"]
            if not isinstance(ref, str) or not ref.startswith("#/definitions/") or ref in refs:
                raise _Unsupported(f"$ref {ref!r}")
            schema = self.root.get("definitions", {}).get(ref[len("#/definitions/") :])
            refs = (*refs, ref)
        if not isinstance(schema, dict):
            raise _Unsupported("a boolean schema")
        unknown = schema.keys() - _ANNOTATIONS - _KNOWN_KEYWORDS
        kind = schema.get("type")
        named = type(kind) is str and kind in _TYPE_TESTS  # one JSON type (not a list of them)
        if unknown or (kind is None and schema.keys() - _ANNOTATIONS) or (kind is not None and not named):
            raise _Unsupported(f"type {kind!r} with keywords {sorted(schema.keys() - _ANNOTATIONS)}")
        enum = schema.get("enum", [])
        if type(enum) is not list or (enum and (kind != "string" or not all(type(m) is str for m in enum))):
            raise _Unsupported("an enum of other than strings")
        if type(schema.get("format", "")) is not str:
            raise _Unsupported("a format that is not a name")
        return schema, refs

    def string_enum(self, schema: dict[str, Any]) -> frozenset[str] | None:
        """The members of a (resolved) subschema that is an enum of strings and nothing else, or ``None``."""
        if "enum" in schema and not schema.keys() & _KEYWORDS_OF_TYPE["string"]:
            return frozenset(schema["enum"])
        return None

    def node(self, schema: Any, var: str, indent: int, refs: tuple[str, ...]) -> None:
        """Tests of ``var`` against ``schema``, written at ``indent``; ``refs``: the ``$ref``s being expanded."""
        schema, refs = self.resolved(schema, refs)
        kind = schema.get("type")
        if kind is None:
            return
        members = self.string_enum(schema)
        if members is not None:  # a value that is no string is in no set of strings
            self.fail_if(f"{var} not in {self.const(members)}", indent)
            return
        self.fail_if(_TYPE_TESTS[kind].format(v=var), indent)
        if "enum" in schema:
            self.fail_if(f"{var} not in {self.const(frozenset(schema['enum']))}", indent)
        for keyword in sorted(schema.keys() & _KEYWORDS_OF_TYPE[kind] & _BOUND_TESTS.keys()):
            bound = schema[keyword]
            if type(bound) not in (int, float) or (keyword.endswith(("Length", "Items")) and type(bound) is not int):
                raise _Unsupported(f"{keyword} {bound!r}")
            self.fail_if(_BOUND_TESTS[keyword].format(v=var, n=self.const(bound)), indent)
        if kind == "string" and "format" in schema:
            pattern = _FORMATS.get(schema["format"])
            if pattern is None:
                raise _Unsupported(f"format {schema['format']!r}")
            self.fail_if(f"not {self.const(re.compile(pattern).match)}({var})", indent)
        elif kind == "object":
            self.properties(schema, var, indent, refs)
        elif kind == "array":
            items = schema.get("items", {})
            if not isinstance(items, dict):  # additionalItems applies only beside a list of items
                raise _Unsupported("items of another form")
            item = self.variable()
            self.line(f"for {item} in {var}:", indent)
            mark = len(self.lines)
            self.node(items, item, indent + 1, refs)
            if len(self.lines) == mark:
                del self.lines[mark - 1 :]

    def properties(self, schema: dict[str, Any], var: str, indent: int, refs: tuple[str, ...]) -> None:
        """An object's tests. A required property is read with ``[]`` (``KeyError`` when it is missing); an
        optional one that is an enum of strings in one test, with ``_ABSENT`` among the members."""
        properties = schema.get("properties", {})
        required = schema.get("required", [])
        extra = schema.get("additionalProperties", True)
        if not isinstance(properties, dict) or not isinstance(required, list) or extra not in (True, False):
            raise _Unsupported("properties, required or additionalProperties of another form")
        unread = frozenset(required) - properties.keys()
        if unread:
            self.fail_if(f"not {var}.keys() >= {self.const(unread)}", indent)
        if extra is False:  # a bound ``issuperset`` iterates the dict: no keys view, no comparison to dispatch
            self.fail_if(f"not {self.const(frozenset(properties).issuperset)}({var})", indent)
        for name, subschema in properties.items():
            sub, sub_refs = self.resolved(subschema, refs)
            members = self.string_enum(sub)
            if name in required:
                read = f"{var}[{name!r}]"
                if members is not None:
                    self.fail_if(f"{read} not in {self.const(members)}", indent)
                    continue
                value = self.variable()
                self.line(f"{value} = {read}", indent)
                self.node(sub, value, indent, sub_refs)
            elif members is not None:
                self.fail_if(f"{var}.get({name!r}, _ABSENT) not in {self.const(members | {_ABSENT})}", indent)
            else:
                value = self.variable()
                self.line(f"{value} = {var}.get({name!r}, _ABSENT)", indent)
                self.line(f"if {value} is not _ABSENT:", indent)
                mark = len(self.lines)
                self.node(sub, value, indent + 1, sub_refs)
                if len(self.lines) == mark:
                    del self.lines[mark - 2 :]


def compile_accepts(schema: dict[str, Any]) -> Callable[[Any], bool] | None:
    """``_AcceptsWriter``'s test for ``schema``, or ``None`` when the schema uses a keyword it does not test."""
    writer = _AcceptsWriter(schema)
    try:
        code = writer.code()
    except _Unsupported:
        return None
    state = dict(writer.names)
    exec(code, state)
    accepts: Callable[[Any], bool] = state["accepts"]
    return accepts


def _compile(key: tuple[str, str, str], schema: dict[str, Any]) -> Validator:
    try:
        try:
            fast = compile_fast(schema)
        except (AttributeError, TypeError, KeyError, NameError):
            # compile_fast subclasses fastjsonschema's code generators (measured with 2.22.3): a release that
            # reshapes them gets its own compile, unchanged
            fast = fastjsonschema.compile(schema, formats=_FORMATS, use_default=False)
    except fastjsonschema.JsonSchemaDefinitionException:
        # Never taken with ocpp 2.1.0 + fastjsonschema 2.22.3 (measured: all 387 files compile). A schema
        # fastjsonschema refuses is validated by jsonschema instead, with the same formats.
        _engines[key] = "jsonschema"
        return _jsonschema_validator(schema)
    _engines[key] = "fastjsonschema"
    accepts = compile_accepts(schema)

    def check(payload: Any) -> tuple[SchemaViolation, ...]:
        try:
            if accepts is not None and accepts(payload):
                return ()
        except (KeyError, TypeError):
            pass  # a missing required property, or no string where an enum's is (``_AcceptsWriter``)
        try:
            fast(payload)
        except fastjsonschema.JsonSchemaValueException as e:
            return violations_from_fastjsonschema(e)
        except (OverflowError, ValueError, TypeError, RecursionError) as e:
            # e.g. multipleOf on an integer too large for a float: fastjsonschema divides by a float
            return (SchemaViolation("", f"could not be validated ({type(e).__name__})", "error"),)
        return ()

    return check


def _jsonschema_validator(schema: dict[str, Any]) -> Validator:
    import jsonschema  # dependency of the ocpp package; only needed when fastjsonschema cannot compile a schema

    checker = jsonschema.FormatChecker()
    for fmt, pattern in _FORMATS.items():
        rx = re.compile(pattern)
        checker.checks(fmt)(lambda value, rx=rx: not isinstance(value, str) or rx.match(value) is not None)
    cls = jsonschema.validators.validator_for(schema)
    slow = cls(schema, format_checker=checker)

    def check(payload: Any) -> tuple[SchemaViolation, ...]:
        try:
            err = next(iter(slow.iter_errors(payload)), None)
        except (OverflowError, ValueError, TypeError, RecursionError) as e:
            return (SchemaViolation("", f"could not be validated ({type(e).__name__})", "error"),)
        if err is None:
            return ()
        return violations(str(err.validator), list(err.absolute_path), err.validator_value, err.instance, err.schema)

    return check


def parse_name(name: str) -> list[str | int]:
    """fastjsonschema's variable name → path parts: ``data.meterValue[0].timestamp`` → ``["meterValue", 0,
    "timestamp"]``."""
    parts: list[str | int] = []
    for m in _NAME_PART.finditer(name, 4 if name.startswith("data") else 0):
        key, index = m.groups()
        parts.append(int(index) if index is not None else key)
    return parts


def dotted(parts: Sequence[str | int]) -> str:
    """``["meterValue", 0, "timestamp"]`` → ``meterValue[0].timestamp``."""
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += f".{p}" if out else str(p)
    return out


def violations_from_fastjsonschema(e: fastjsonschema.JsonSchemaValueException) -> tuple[SchemaViolation, ...]:
    """Convert fastjsonschema's (first) error into violations with exact dotted paths."""
    rule = e.rule or "error"
    parts = parse_name(e.name or "data")
    definition = e.definition if isinstance(e.definition, dict) else {}
    rule_value = definition.get(rule, e.rule_definition)
    fallback = (e.message or "")[len(e.name or "") :].strip()
    return violations(rule, parts, rule_value, e.value, definition, fallback)


def _plural(n: object, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def violations(
    rule: str,
    parts: Sequence[str | int],
    rule_value: Any,
    instance: Any,
    definition: Any,
    fallback: str = "",
) -> tuple[SchemaViolation, ...]:
    """Violations for one schema error: keyword ``rule`` (with value ``rule_value``, in the subschema
    ``definition``) failed on ``instance`` at path ``parts``. Messages never contain the instance's value."""
    path = dotted(parts)
    if rule == "required" and isinstance(instance, dict) and isinstance(rule_value, list):
        missing = [p for p in rule_value if isinstance(p, str) and p not in instance]
        if missing:
            return tuple(SchemaViolation(dotted([*parts, p]), "is required", rule) for p in missing)
    if rule == "additionalProperties" and isinstance(instance, dict) and isinstance(definition, dict):
        known = definition.get("properties", {})
        extra = [k for k in instance if k not in known]
        if extra:
            return tuple(
                SchemaViolation(dotted([*parts, str(k)]), "is not allowed (additional property)", rule) for k in extra
            )
    message = {
        "enum": lambda: f"is not one of {rule_value!r}",
        "maxLength": lambda: f"is longer than {_plural(rule_value, 'character')}",
        "minLength": lambda: f"is shorter than {_plural(rule_value, 'character')}",
        "type": lambda: (
            "is not of type "
            + (" or ".join(repr(t) for t in rule_value) if isinstance(rule_value, list) else repr(rule_value))
        ),
        "maximum": lambda: f"is greater than the maximum of {rule_value}",
        "minimum": lambda: f"is less than the minimum of {rule_value}",
        "exclusiveMaximum": lambda: f"is not less than {rule_value}",
        "exclusiveMinimum": lambda: f"is not greater than {rule_value}",
        "maxItems": lambda: f"has more than {_plural(rule_value, 'item')}",
        "minItems": lambda: f"has fewer than {_plural(rule_value, 'item')}",
        "format": lambda: f"is not a valid {rule_value}",
        "multipleOf": lambda: f"is not a multiple of {rule_value}",
        "required": lambda: "lacks a required property",
        "additionalProperties": lambda: "has a property that is not allowed",
    }.get(rule)
    return (SchemaViolation(path, message() if message else (fallback or f"fails '{rule}'"), rule),)
