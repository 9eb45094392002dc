"""Records passed from the flow layer to decoders and reports.

``StreamChunk`` and ``StreamGap`` are NamedTuples rather than frozen dataclasses: one is made per TCP segment on
the hot path, and a NamedTuple is several times cheaper to build while staying immutable.

Events, and the records they hold, are frozen dataclasses with slots made by ``event`` (below), which gives them
a cheaper ``__init__`` than ``dataclass``'s with the same signature and behaviour.
"""

from __future__ import annotations

import dataclasses
import inspect
import sys
from array import array
from collections.abc import Callable
from dataclasses import MISSING, Field, dataclass, field, fields
from enum import IntEnum
from functools import partial
from operator import attrgetter
from types import MemberDescriptorType
from typing import Any, ClassVar, NamedTuple, TypeVar, dataclass_transform, overload


class Direction(IntEnum):
    """Which way bytes travel: from the client (connection originator) or from the server."""

    TO_SERVER = 0
    TO_CLIENT = 1


class StreamChunk(NamedTuple):
    """In-order bytes of one direction of a TCP stream.

    Fields: ``flow_id``; ``direction``; ``offset`` (of ``data[0]`` in the direction's byte stream, 0 = first byte
    after the SYN, or the first byte seen when the capture starts mid-connection); ``data``; ``frame`` (the frame
    that carried these bytes); ``at_frame`` (the frame whose arrival made them deliverable in order: later than
    ``frame`` when they waited for a missing segment, so a message completed by this chunk completes at
    ``at_frame``); ``ts_ns`` (timestamp of ``at_frame``).
    """

    flow_id: int
    direction: int
    offset: int
    data: bytes
    frame: int
    at_frame: int
    ts_ns: int


class GapReason(IntEnum):
    NOT_CAPTURED = 0  # the bytes crossed the wire (the peer acknowledged them or later data followed) unseen
    SNAPLEN = 1  # the capture cut the packet (captured length < original length)
    BUFFER_LIMIT = 2  # too much out-of-order data waited for a hole; the hole was given up


class StreamGap(NamedTuple):
    """Bytes of a TCP direction that the capture does not have: ``size`` bytes at ``offset``, decided at
    ``frame``. Decoders must not treat what follows as contiguous with what came before."""

    flow_id: int
    direction: int
    offset: int
    size: int
    frame: int
    ts_ns: int
    reason: GapReason


# -- the event decorator ---------------------------------------------------------------------------------------
# A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__(self, "name", value)``, which
# looks the name up on the type on every call. One event is made per message on the per-packet path (~200k for a
# 200k-packet capture), so ``event`` replaces that ``__init__`` by one that calls each slot's member descriptor,
# taken once per class (``Cls.name.__set__``): ~35% cheaper per object, the same checks (the descriptor refuses an
# object of another type, as ``object.__setattr__`` does), and still no way round ``frozen`` after ``__init__``.

_T = TypeVar("_T")
# how ``dataclass``'s own ``__init__`` tells a field left to its ``default_factory`` (the parameter's default) and
# which pseudo-fields are ``InitVar``s (parameters passed to ``__post_init__``, never stored)
# (private names of ``dataclasses``: a Python without them leaves every class ``dataclass``'s own ``__init__``)
_HAS_DEFAULT_FACTORY = getattr(dataclasses, "_HAS_DEFAULT_FACTORY", None)
_FIELD = getattr(dataclasses, "_FIELD", None)
_FIELD_INITVAR = getattr(dataclasses, "_FIELD_INITVAR", None)
# the classes given the descriptor ``__init__`` (``dataclass`` is told not to write its own, which would cost a
# compilation per class: the tests compare both, making ``dataclass``'s with its own helper)
DESCRIPTOR_INITS: set[type] = set()


def _slot_init(cls: type) -> Callable[..., None] | None:
    """An ``__init__`` for the frozen slotted dataclass ``cls`` that does what the one ``dataclass`` wrote does,
    setting each slot through its member descriptor; ``None`` when a field is not kept in a slot (``cls`` then
    keeps ``dataclass``'s).

    It is written as ``dataclass`` writes its own (``dataclasses._init_fn``): the same parameters in the same order
    (fields that are not keyword-only first, then ``*`` and the keyword-only ones; ``__dataclass_self__`` for
    ``self`` when a field is called ``self``), the fields set in the order they are declared, a
    ``default_factory`` called when its parameter was not given, fields with ``init=False`` set to their default
    or factory's value, then ``__post_init__`` with the ``InitVar``s. The defaults, annotations, qualified name and
    module are those ``dataclass`` gives its own function (``_init_fn``, ``_init_param``: a parameter's default is
    the field's, or ``_HAS_DEFAULT_FACTORY`` for a factory; each parameter annotated with its field's type, the
    return with ``None``), so ``inspect.signature`` and the ``TypeError`` for a missing or unknown argument (which
    names ``Cls.__init__()``) are the same; a field without a default after one with a default, not keyword-only,
    raises the ``TypeError`` ``dataclass`` raises."""
    if _HAS_DEFAULT_FACTORY is None or _FIELD is None or _FIELD_INITVAR is None:
        return None
    own = cls.__dataclass_fields__  # type: ignore[attr-defined]
    every = [f for f in own.values() if f._field_type in (_FIELD, _FIELD_INITVAR)]
    me = "__dataclass_self__" if "self" in own else "self"
    positional = [f for f in every if f.init and not f.kw_only]
    seen_default = False
    for f in positional:
        if not (f.default is MISSING and f.default_factory is MISSING):
            seen_default = True
        elif seen_default:
            raise TypeError(f"non-default argument {f.name!r} follows default argument")
    outer: dict[str, Any] = {"_ev_HAS_FACTORY": _HAS_DEFAULT_FACTORY}  # the closure of the function written below
    body: list[str] = []
    for f in every:
        name = f.name
        if f._field_type is _FIELD_INITVAR:
            continue  # a parameter only: given to __post_init__, never stored
        slot = getattr(cls, name, None)
        if type(slot) is not MemberDescriptorType:
            return None
        setter, default = f"_ev_set_{name}", f"_ev_dflt_{name}"
        outer[setter] = slot.__set__
        if f.default_factory is not MISSING:
            outer[default] = f.default_factory
            value = f"{default}() if {name} is _ev_HAS_FACTORY else {name}" if f.init else f"{default}()"
        elif f.init:
            value = name
        elif f.default is not MISSING:
            outer[default] = f.default
            value = default
        else:
            continue  # init=False without a default: dataclass leaves the slot empty too
        body.append(f"{setter}({me}, {value})")
    if hasattr(cls, "__post_init__"):
        body.append(f"{me}.__post_init__({', '.join(f.name for f in every if f._field_type is _FIELD_INITVAR)})")

    # no defaults written: ``__defaults__`` (of the last positional parameters) and ``__kwdefaults__`` are set below
    params = [me] + [f.name for f in every if f.init and not f.kw_only]
    keyword = [f.name for f in every if f.init and f.kw_only]
    if keyword:
        params += ["*", *keyword]
    lines = "".join(f"  {line}\n" for line in body or ["pass"])
    text = f"def _ev_make({', '.join(outer)}):\n def __init__({', '.join(params)}):\n{lines} return __init__\n"
    made: dict[str, Any] = {}
    exec(text, {}, made)  # the names it uses are all in its closure
    init = made["_ev_make"](**outer)
    keyword_fields = [f for f in every if f.init and f.kw_only]
    defaults = tuple(_param_default(f) for f in positional if _has_default(f))
    kwdefaults = {f.name: _param_default(f) for f in keyword_fields if _has_default(f)}
    init.__defaults__ = defaults or None
    init.__kwdefaults__ = kwdefaults or None
    init.__annotations__ = {**{f.name: f.type for f in positional + keyword_fields}, "return": None}
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    module = sys.modules.get(cls.__module__)
    init.__module__ = None if module is None else module.__dict__.get("__name__")
    init.__doc__ = None
    return init


def _has_default(f: Field[Any]) -> bool:
    return f.default is not MISSING or f.default_factory is not MISSING


def _param_default(f: Field[Any]) -> Any:
    """The default of field ``f``'s ``__init__`` parameter, as ``dataclasses._init_param`` writes it."""
    return f.default if f.default is not MISSING else _HAS_DEFAULT_FACTORY


def _class_doc(cls: type) -> str:
    """The docstring ``dataclass`` gives a class without one: its name and the signature of its ``__init__``."""
    try:
        text_sig = str(inspect.signature(cls)).replace(" -> None", "")
    except (TypeError, ValueError):
        text_sig = ""
    return cls.__name__ + text_sig


# ``dataclass`` writes ``__repr__``, ``__eq__`` and ``__hash__`` as source text per class and compiles each
# (``exec``): with ``__setattr__``, ``__delattr__`` and two ``__init__``s, seven compilations per event class, 44
# classes, about 250 M instructions of every process's start (callgrind; 5% of analysing a 36k-packet capture).
# ``event`` makes those three from closures instead, doing what ``dataclass``'s do (``dataclasses._repr_fn``,
# ``_cmp_fn``, ``_hash_fn`` of Python 3.11): the same fields, read in the same order, compared and hashed as the
# same tuples, the same text, the same guard against a recursive ``repr``. (A Python without
# ``dataclasses._recursive_repr`` keeps ``dataclass``'s own.)
_recursive_repr = getattr(dataclasses, "_recursive_repr", None)


def _tuple_of(names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    """``lambda obj: (obj.a, obj.b, ...)`` for ``names``."""
    if not names:
        return lambda obj: ()
    if len(names) == 1:
        one = attrgetter(names[0])
        return lambda obj: (one(obj),)
    return attrgetter(*names)


def _add_methods(cls: type, add_repr: bool, add_eq: bool, add_hash: bool) -> None:
    """``cls.__repr__``, ``__eq__`` and ``__hash__`` as ``dataclass(repr=True, eq=True, frozen=True)`` makes them
    (each only where ``dataclass`` would set it: ``__repr__`` and ``__eq__`` unless the class wrote its own,
    ``__hash__`` unless the class has an explicit one)."""
    every = fields(cls)
    qualname = cls.__qualname__
    if add_repr:
        shown = tuple(f.name for f in every if f.repr)

        def __repr__(self: Any) -> str:
            return self.__class__.__qualname__ + "(" + ", ".join([f"{n}={getattr(self, n)!r}" for n in shown]) + ")"

        __repr__ = _recursive_repr(__repr__)  # type: ignore[misc]
        __repr__.__qualname__ = f"{qualname}.__repr__"
        cls.__repr__ = __repr__  # type: ignore[method-assign]
    if add_eq:
        compared = _tuple_of(tuple(f.name for f in every if f.compare))

        def __eq__(self: Any, other: Any) -> Any:
            if other.__class__ is self.__class__:
                return compared(self) == compared(other)
            return NotImplemented

        __eq__.__qualname__ = f"{qualname}.__eq__"
        cls.__eq__ = __eq__  # type: ignore[method-assign]
    if add_hash:
        hashed = _tuple_of(tuple(f.name for f in every if (f.compare if f.hash is None else f.hash)))

        def __hash__(self: Any) -> int:
            return hash(hashed(self))

        __hash__.__qualname__ = f"{qualname}.__hash__"
        cls.__hash__ = __hash__  # type: ignore[method-assign]


@overload
def event(cls: type[_T], /) -> type[_T]: ...


@overload
def event(*, kw_only: bool = True) -> Callable[[type[_T]], type[_T]]: ...


@dataclass_transform(frozen_default=True, kw_only_default=True, field_specifiers=(field, Field))
def event(cls: type[_T] | None = None, /, *, kw_only: bool = True) -> Any:
    """``dataclass(frozen=True, slots=True, kw_only=kw_only)``, with the cheaper ``__init__`` of ``_slot_init``.

    ``@event`` for the events (keyword-only fields); ``@event(kw_only=False)`` for the small records built from
    positional arguments. A class that writes its own ``__init__`` keeps it, as with ``dataclass``."""

    def wrap(cls: type[_T]) -> type[_T]:
        own = cls.__dict__
        own_init = "__init__" in own
        # what ``dataclass`` would do with ``__hash__`` (``has_explicit_hash`` of ``_process_class``)
        own_hash = own.get("__hash__", MISSING)
        explicit_hash = not (own_hash is MISSING or (own_hash is None and "__eq__" in own))
        own_repr, own_eq = "__repr__" in own, "__eq__" in own
        if _recursive_repr is None or _HAS_DEFAULT_FACTORY is None or _FIELD is None or _FIELD_INITVAR is None:
            return dataclass(frozen=True, slots=True, kw_only=kw_only)(cls)  # type: ignore[no-any-return]
        no_doc = not cls.__doc__
        cls = dataclass(frozen=True, slots=True, kw_only=kw_only, init=own_init, repr=False, eq=False)(cls)
        _add_methods(cls, not own_repr, not own_eq, not explicit_hash)
        if not own_init:
            init = _slot_init(cls)
            if init is None:  # slots=True keeps every field in a slot: never taken
                raise TypeError(f"{cls.__qualname__}: a field is not kept in a slot")
            cls.__init__ = init  # type: ignore[misc]
            DESCRIPTOR_INITS.add(cls)
            if no_doc:  # ``dataclass`` wrote the docstring from the ``__init__`` it found: the inherited one
                cls.__doc__ = _class_doc(cls)
        return cls

    return wrap if cls is None else wrap(cls)


# -- pickling (``analyze --workers`` sends each partition's events to the parent) ----------------------------------
# A frozen dataclass with slots pickles through its generated ``__getstate__``/``__setstate__``, which look its
# fields up again for every object; these take the field names once per class (measured on 60k events of the
# gateway capture, with the collector paused: pickling 0.32 s → 0.21 s, unpickling 0.29 s → 0.18 s).

_FIELD_NAMES: dict[type, tuple[str, ...]] = {}
_VALUES: dict[type, Any] = {}
_new = object.__new__
_set = object.__setattr__


def _field_names(cls: type) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in fields(cls))
    return names


def _revive(cls: type, values: tuple[Any, ...]) -> Any:
    """The object of ``cls`` whose fields hold ``values`` (in field order), as pickled by ``_reduce``."""
    obj = _new(cls)
    for name, value in zip(_field_names(cls), values, strict=True):
        _set(obj, name, value)
    return obj


def _values_of(cls: type) -> Callable[[Any], tuple[Any, ...]]:
    """A function giving an object of ``cls``'s field values, as a tuple in field order."""
    values = _VALUES.get(cls)
    if values is None:
        names = _field_names(cls)
        get = attrgetter(*names)
        values = _VALUES[cls] = get if len(names) > 1 else (lambda obj: (get(obj),))
    return values  # type: ignore[no-any-return]


def _reduce(self: Any) -> tuple[Any, tuple[type, tuple[Any, ...]]]:
    cls = type(self)
    return _revive, (cls, _values_of(cls)(self))


# -- a list of events in one piece (``analyze --workers``: a partition's tens of thousands of events) ------------
# Pickled one by one, each event costs a call of ``_reduce`` while pickling and of ``_revive`` while unpickling.
# ``EventList`` holds them by class instead: per class, the tuples of their field values (``attrgetter`` over them
# all at once), and the class of each event in order. Its pickle is tuples of plain values, which the pickler
# writes and reads without calling back into Python; the events are made again by ``events()``, one made-up
# function per class that sets each slot through its member descriptor (measured on the 66k events of a 1M gateway
# capture's partition, CPU time, best of five: pickling 0.25 → 0.20 s, unpickling and making them 0.23 → 0.15 s).

_MAKERS: dict[type, Callable[[tuple[Any, ...]], Any]] = {}


def _maker(cls: type) -> Callable[[tuple[Any, ...]], Any]:
    """A function making the object of ``cls`` whose fields hold ``values`` (a tuple in field order): ``_revive``,
    written out for the class's slots (``_revive`` itself when a field is not kept in a slot)."""
    make = _MAKERS.get(cls)
    if make is not None:
        return make
    names = _field_names(cls)
    slots = [getattr(cls, name, None) for name in names]
    if all(type(s) is MemberDescriptorType for s in slots):
        scope: dict[str, Any] = {"_new": _new, "_cls": cls, "_n": len(names), "_misfit": _misfit}
        scope.update({f"_s{i}": s.__set__ for i, s in enumerate(slots)})  # type: ignore[union-attr]
        body = "".join(f" _s{i}(o, v[{i}])\n" for i in range(len(names)))
        # a tuple of another length (another version of the class) fails loudly, as ``_revive``'s zip does
        text = f"def make(v):\n if len(v) != _n: _misfit(_cls, v)\n o = _new(_cls)\n{body} return o\n"
        exec(text, scope)
        make = scope["make"]
    else:
        make = partial(_revive, cls)
    _MAKERS[cls] = make
    return make


def _misfit(cls: type, values: tuple[Any, ...]) -> None:
    raise ValueError(f"{cls.__qualname__} has {len(_field_names(cls))} fields, not {len(values)}")


class EventList:
    """``events`` in a form that pickles fast (see above); ``events()`` gives them back, equal and in order."""

    __slots__ = ("classes", "order", "rows")

    def __init__(self, events: list[Any]) -> None:
        index: dict[type, int] = {}
        order = array("H")
        by_class: list[list[Any]] = []
        for e in events:
            cls = e.__class__
            i = index.get(cls)
            if i is None:
                i = index[cls] = len(by_class)
                by_class.append([])
            order.append(i)
            by_class[i].append(e)
        self.classes = list(index)
        self.order = order
        self.rows = [list(map(_values_of(cls), objs)) for cls, objs in zip(self.classes, by_class, strict=True)]

    def __reduce__(self) -> tuple[Any, tuple[list[type], array[int], list[list[tuple[Any, ...]]]]]:
        return _event_list, (self.classes, self.order, self.rows)

    def events(self) -> list[Any]:
        made = [iter(list(map(_maker(cls), rows))).__next__ for cls, rows in zip(self.classes, self.rows, strict=True)]
        return [made[i]() for i in self.order]


def _event_list(classes: list[type], order: array[int], rows: list[list[tuple[Any, ...]]]) -> EventList:
    out = EventList.__new__(EventList)
    out.classes, out.order, out.rows = classes, order, rows
    return out


@event
class Anomaly:
    """A fact worth an analyst's attention, named ``<proto>.<snake_case>`` (never renamed once shipped).

    Fields: ``name``, ``frame`` (first frame that shows it), ``direction`` (or ``None``), ``detail`` (plain text),
    ``count`` (how many times it was seen in this flow).
    """

    name: str
    frame: int
    direction: int | None
    detail: str = ""
    count: int = 1

    __reduce__ = _reduce


@event
class Event:
    """Header shared by every timeline event (never instantiated itself; never subclass a concrete event).

    Fields: ``ts_ns`` (capture timestamp of ``frame``, integer ns since the epoch); ``frame`` (1-based frame number,
    as Wireshark numbers it, of the packet that completed the event); ``flow_id`` (the flow it belongs to, or
    ``None``); ``direction`` (``Direction`` value, or ``None`` when it has none).

    Class constants: ``kind`` (stable name, ``<layer>.<thing>``, never renamed once shipped) and ``layer`` (one of
    ``dns tcp tls http websocket ocpp clock capture``). ``summary()`` gives a one-line, human description built only
    from the event's own fields; it never contains secrets (passwords, key material, idTokens).
    """

    kind: ClassVar[str] = "event"
    layer: ClassVar[str] = "capture"
    ts_ns: int
    frame: int
    flow_id: int | None = None
    direction: int | None = None

    def summary(self) -> str:
        return self.kind

    __reduce__ = _reduce


@event
class DecodeAnomaly(Event):
    """A decoder met bytes it could not decode, or stopped decoding a direction (a documented decode error).

    Fields: ``decoder`` (decoder name: ``dns``, ``tls``, ``http``, ``websocket``, ``ocpp``); ``name`` (anomaly name,
    ``<decoder>.<snake_case>``, e.g. ``tls.parse_error``, ``websocket.mid_stream``); ``detail`` (plain text).
    """

    kind: ClassVar[str] = "decode.anomaly"
    layer: ClassVar[str] = "capture"
    decoder: str
    name: str
    detail: str = ""

    def summary(self) -> str:
        return f"{self.name}: {self.detail}" if self.detail else self.name
