"""What ghostcap treats as a secret, and how it is hidden: the one redaction policy every output goes through.

Nothing below is shown in any report or listing (HTML, JSON, Markdown, ``ghostcap timeline`` table and JSON,
``ghostcap flows``, warnings on standard error, the triage database, CSV and Parquet) unless the user asks with
``--show-tokens`` (OCPP idTokens and configuration secrets only). A hidden value is replaced by ``«redacted»``
(``REDACTED``); a JSON string stays a JSON string, a number becomes that string.

OCPP fields that hold secrets (``TOKEN_KEYS``; the whole value, whatever its JSON type, at any depth, except the
``type`` of an IdToken object, which is kept):
  - 1.6 ``idTag``, ``parentIdTag`` (and ``groupIdTag``);
  - 2.x ``idToken`` (IdTokenType objects and their ``idToken`` string), ``groupIdToken``, ``additionalIdToken``,
    2.1 ``idTokens`` lists;
  - passwords: ``password`` (2.x VPN and others), ``basicAuthPassword``, ``apnPassword``; and the ``key`` (the VPN
    shared secret) of a 2.x ``vpn`` object.

Configuration keys that hold secrets (``secret_config_key``): ``AuthorizationKey`` and ``BasicAuthPassword``
(``SECRET_CONFIG_KEYS``), and every vendor key whose name says it holds one (``SECRET_NAME``): its name contains
``passw``, ``passwd``, ``pwd``, ``secret``, ``credential``, ``authentication``, ``token``, ``apikey``, ``authkey``,
``privatekey`` or ``presharedkey`` (any case, ``_`` ignored), or has a word ``pin``, ``pincode``, ``key``,
``psk``, ``pass`` or ``pw`` (words split at ``_ . - :`` and at camelCase: ``G_CardPin``, ``UserPIN``,
``AuthorizationKey``; not ``WebSocketPingInterval``). Their value is hidden wherever a configuration entry
carries one: 1.6 ``{"key": K, "value": V}`` (ChangeConfiguration, GetConfiguration answers), 2.x entries naming
``{"variable": {"name": K}}`` with an ``attributeValue`` (SetVariables, GetVariables answers) or ``value``s
(NotifyReport ``variableAttribute``).

Raw OCPP-J text (WebSocket message excerpts, unparsable messages) is redacted by ``redact_text``, a lenient JSON
scanner that applies the same rules to text that may be cut short or invalid, reading escaped key names
(``"id\\u0054ag"``) as the JSON parser would. Parsed payloads go through ``redact_tokens``.

HTTP (``redact_url``, ``scrub``): every query-string value and fragment of a request target, and the password of
user information in an absolute URL, are hidden; Basic credentials are never kept (only the user name); a response
body excerpt has the request's own credentials and query values hidden wherever it echoes them (found again by
keyed hashes, ``fingerprints``: the decoder never holds the values themselves). TLS key-log problems
name the file, line and what is wrong, never the line's content (``analyzer.tls.keylog``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable
from typing import Any

REDACTED = "«redacted»"

TOKEN_KEYS = frozenset(
    {
        "idTag",
        "parentIdTag",
        "groupIdTag",
        "idToken",
        "groupIdToken",
        "additionalIdToken",
        "idTokens",
        "password",
        "basicAuthPassword",
        "apnPassword",
    }
)
SECRET_CONFIG_KEYS = frozenset({"AuthorizationKey", "BasicAuthPassword"})
# Vendor configuration keys whose names say they hold a secret (Growatt's G_Authentication and G_CardPin, ...)
SECRET_FRAGMENTS = (
    "passw",
    "passwd",
    "pwd",
    "secret",
    "credential",
    "authentication",
    "token",
    "apikey",
    "authkey",
    "privatekey",
    "presharedkey",
)
SECRET_WORDS = frozenset({"pin", "pincode", "key", "psk", "pass", "pw"})
SECRET_NAME = re.compile(r"(?i)(" + "|".join(SECRET_FRAGMENTS) + r")")  # matched with ``_`` and ``-`` removed
_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_TOKEN_TYPE_KEYS = frozenset({"type"})  # the token's type ("ISO14443", "eMAID") is kept: it is not the token
_CONFIG_VALUE_KEYS = frozenset({"value", "attributeValue"})


def secret_config_key(name: str) -> bool:
    """A configuration key (1.6 ``key``, 2.x variable ``name``) whose value is a secret."""
    if name in SECRET_CONFIG_KEYS:
        return True
    if SECRET_NAME.search(name.replace("_", "").replace("-", "")) is not None:
        return True
    return any(w.lower() in SECRET_WORDS for w in _WORDS.findall(name))


def redact_tokens(payload: Any) -> Any:
    """A copy of the parsed OCPP ``payload`` with every secret (see the module docstring) replaced by
    ``REDACTED``. ``payload`` is not modified."""
    return _redact(payload, False, False, None)


def _redact(value: Any, secret: bool, config: bool, parent_key: str | None) -> Any:
    if isinstance(value, dict):
        config = config or _config_entry(value)
        out: dict[Any, Any] = {}
        for k, v in value.items():
            if secret and k in _TOKEN_TYPE_KEYS and isinstance(v, str):
                out[k] = v
            else:
                out[k] = _redact(v, _secret_member(secret, config, parent_key, k), config, k)
        return out
    if isinstance(value, list):
        return [_redact(v, secret, config, parent_key) for v in value]
    if secret and (isinstance(value, str) or (isinstance(value, int | float) and not isinstance(value, bool))):
        return REDACTED
    return value


def _config_entry(value: dict[Any, Any]) -> bool:
    key = value.get("key")
    if isinstance(key, str) and secret_config_key(key):
        return True
    variable = value.get("variable")
    name = variable.get("name") if isinstance(variable, dict) else None
    return isinstance(name, str) and secret_config_key(name)


def _secret_member(secret: bool, config: bool, parent_key: str | None, key: Any) -> bool:
    """Whether the value of member ``key`` of an object (itself the value of ``parent_key``) is secret."""
    return (
        secret or key in TOKEN_KEYS or (config and key in _CONFIG_VALUE_KEYS) or (key == "key" and parent_key == "vpn")
    )


# --- raw text -----------------------------------------------------------------------------------------------------

_LEX = re.compile(r'(?s)\s+|[{}\[\]:,]|"(?:[^"\\]|\\.)*(?:"|\\?\Z)|[^\s{}\[\]:,"]+')


class _Frame:
    __slots__ = ("config", "has_value", "identified", "key", "obj", "parent_key", "secret", "start", "want_key")

    def __init__(self, obj: bool, start: int, secret: bool, config: bool, parent_key: str | None) -> None:
        self.obj = obj
        self.start = start
        self.secret = secret
        self.config = config
        self.parent_key = parent_key
        self.key: str | None = None
        self.want_key = obj
        self.identified = False  # a "key" or "variable": {"name"} member says which configuration entry this is
        self.has_value = False  # a member that would hold a configuration value


def _decode(tok: str) -> str:
    """A string token's text: what ``json.loads`` reads from it, else what lies between its quotes (a token cut
    short: what follows its quote). Without a backslash that is always what lies between the quotes (the token
    holds no other quote, and ``json.loads`` either reads those characters or refuses a control character)."""
    if len(tok) >= 2 and tok.endswith('"'):
        if "\\" not in tok:
            return tok[1:-1]
        try:
            s = json.loads(tok)
            if isinstance(s, str):
                return s
        except ValueError:
            pass
        return tok[1:-1]
    return tok[1:]


def _scan(text: str, marked: set[int] | None, out: list[str] | None) -> set[int]:
    """One pass of the lenient JSON scanner. Without ``marked``: find the start offsets of objects that are
    secret configuration entries, or that the text cuts short before saying which entry they are (an excerpt:
    their ``value`` may be a secret whose key name was cut off). With it: append ``text``'s tokens to ``out``,
    secrets replaced."""
    found: set[int] = set()
    stack: list[_Frame] = []
    for m in _LEX.finditer(text):
        tok = m.group()
        c = tok[0]
        top = stack[-1] if stack else None
        if c in " \t\r\n" or c == ":":
            if out is not None:
                out.append(tok)
            continue
        if c == ",":
            if top is not None and top.obj:
                top.want_key, top.key = True, None
            if out is not None:
                out.append(tok)
            continue
        if c in "}]":
            if stack:
                stack.pop()
            if out is not None:
                out.append(tok)
            continue
        if top is not None and top.obj and top.want_key:
            if c == '"':
                top.key = _decode(tok)
                top.has_value = top.has_value or top.key in _CONFIG_VALUE_KEYS or top.key == "variableAttribute"
            top.want_key = False
            if out is not None:
                out.append(tok)
            continue
        # a value
        if top is None:
            secret, config, key = False, False, None
        elif top.obj:
            key = top.key
            keep_type = top.secret and key in _TOKEN_TYPE_KEYS and c == '"'
            secret = not keep_type and _secret_member(top.secret, top.config, top.parent_key, key)
            config = top.config
        else:
            secret, config, key = top.secret, top.config, top.parent_key
        if c in "{[":
            start = m.start()
            stack.append(_Frame(c == "{", start, secret, config or (marked is not None and start in marked), key))
            if out is not None:
                out.append(tok)
            continue
        if marked is None and c == '"' and top is not None and top.obj:
            if key == "key":
                top.identified = True
                if secret_config_key(_decode(tok)):
                    found.add(top.start)
            elif key == "name" and top.parent_key == "variable" and len(stack) >= 2 and stack[-2].obj:
                stack[-2].identified = True
                if secret_config_key(_decode(tok)):
                    found.add(stack[-2].start)
        if out is not None:
            literal = c != '"' and tok in ("true", "false", "null")
            if secret and not literal:
                out.append(f'"{REDACTED}"' if c != '"' or (len(tok) >= 2 and tok.endswith('"')) else f'"{REDACTED}')
            else:
                out.append(tok)
    found.update(f.start for f in stack if f.obj and f.has_value and not f.identified)
    return found


# what a text must hold for ``_scan`` to hide anything in it: a key whose value is a secret (``TOKEN_KEYS``), a
# configuration value (``_CONFIG_VALUE_KEYS``), a ``vpn`` object, or a backslash (an escaped key name, which only the
# scanner reads); a key name without escapes is written as it is, so a text holding none of these hides nothing
_MAY_HIDE = re.compile("|".join(map(re.escape, sorted(TOKEN_KEYS | _CONFIG_VALUE_KEYS | {"vpn", "\\"}))))
# and for a configuration entry's value to be hidden: a ``value`` or ``attributeValue`` key (or an escaped one)
_MAY_CONFIG = re.compile("|".join(map(re.escape, sorted(_CONFIG_VALUE_KEYS | {"\\"}))))


def redact_text(text: str) -> str:
    """``text`` (raw OCPP-J, possibly cut short or invalid) with every secret value replaced by ``"«redacted»"``,
    by the rules of ``redact_tokens``: for excerpts and summaries, where the JSON may not parse.

    Most messages (a Heartbeat, a StatusNotification) name no key that could hide anything (``_MAY_HIDE``): they are
    returned as they are, without the two passes of the scanner (``scanned``); most others (an Authorize) hold no
    configuration value (``_MAY_CONFIG``): the scanner's first pass, which finds configuration entries, is skipped."""
    if '"' not in text or names_no_secret(text):
        return text
    return scanned(text, config=_MAY_CONFIG.search(text) is not None)


def names_no_secret(text: str) -> bool:
    """Whether ``text`` names no key that could hide anything (``_MAY_HIDE``): then ``redact_text`` returns it as it
    is, and when it is JSON, ``redact_tokens`` of its value is that value (its keys are written as they are read)."""
    return _MAY_HIDE.search(text) is None


def redact_head(text: str, limit: int) -> str:
    """``redact_text(text)[:limit]``: the start of a redacted text, as a summary shows it.

    The scanner hides a value only after the key that makes it secret (a ``_MAY_HIDE`` name, or a backslash in an
    escaped one), and writes every token before it as it is: when the first such name starts at or after ``limit``,
    the first ``limit`` characters are the text's own (a MeterValues excerpt's ``value`` keys come after them)."""
    first = _MAY_HIDE.search(text)
    if first is None or first.start() >= limit:
        return text[:limit]
    return redact_text(text)[:limit]


def scanned(text: str, config: bool = True) -> str:
    """``redact_text`` of ``text`` by the scanner, whatever keys it names (the tests compare the two); without
    ``config`` (the text holds no configuration value), in one pass."""
    marked = _scan(text, None, None) if config else set()
    out: list[str] = []
    _scan(text, marked, out)
    return "".join(out)


# --- HTTP ---------------------------------------------------------------------------------------------------------

_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)([^/?#@]*)@")


def redact_url(target: str) -> str:
    """A request target with every query value (a parameter without ``=``: the whole parameter) and the fragment
    replaced by ``REDACTED``, and the password of an absolute URL's user information too: ``/ocpp/CP1?token=x`` →
    ``/ocpp/CP1?token=«redacted»``."""
    base, hash_, _ = target.partition("#")
    base, q, query = base.partition("?")
    m = _USERINFO.match(base)
    if m is not None and ":" in m.group(2):
        base = m.group(1) + m.group(2).partition(":")[0] + ":" + REDACTED + "@" + base[m.end() :]
    if q:
        params = []
        for p in query.split("&"):
            name, eq, _ = p.partition("=")
            params.append(f"{name}={REDACTED}" if eq else REDACTED if p else p)
        base += "?" + "&".join(params)
    if hash_:
        base += "#" + REDACTED
    return base


def url_secrets(target: str) -> list[str]:
    """The values ``redact_url`` hides (raw and percent-decoded), to ``scrub`` from what the server answers."""
    from urllib.parse import unquote

    found: list[str] = []
    base, _, fragment = target.partition("#")
    base, _, query = base.partition("?")
    m = _USERINFO.match(base)
    if m is not None and ":" in m.group(2):
        found.append(m.group(2).partition(":")[2])
    for p in query.split("&") if query else ():
        _, eq, value = p.partition("=")
        found.append(value if eq else p)
    if fragment:
        found.append(fragment)
    return [v for s in found for v in dict.fromkeys((s, unquote(s, errors="replace")))]


MIN_SCRUB = 4  # shorter known secrets are not searched for in other text (they would hide ordinary words)
_SALT = os.urandom(16)


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), key=_SALT, digest_size=16).digest()


def fingerprints(secrets: Iterable[str]) -> tuple[tuple[int, bytes], ...]:
    """What ``scrub`` needs to find ``secrets`` again, without keeping them: (length, keyed hash) of each one of
    at least ``MIN_SCRUB`` characters."""
    return tuple(sorted({(len(s), _digest(s)) for s in secrets if len(s) >= MIN_SCRUB}, reverse=True))


def scrub(text: str, prints: tuple[tuple[int, bytes], ...]) -> str:
    """``text`` with every occurrence of a known secret (given by its ``fingerprints``) replaced by ``REDACTED``:
    for text the other side wrote, such as a 401 body echoing the password it refused. Keep ``text`` short (an
    excerpt): every position is hashed for each secret."""
    for n, digest in prints:
        out: list[str] = []
        i = last = 0
        while i + n <= len(text):
            if _digest(text[i : i + n]) == digest:
                out += [text[last:i], REDACTED]
                i = last = i + n
            else:
                i += 1
        text = "".join(out) + text[last:]
    return text
