"""``events.base.event``: every event class (and record) gets an ``__init__`` that sets its slots through their
member descriptors, and it must behave exactly as the one ``dataclass`` writes (``_dataclass_init``): the
same objects for the same arguments, the same defaults, the same ``TypeError``s, the same signature; the objects
stay frozen, hash, compare, ``replace`` and pickle as before. The decorator itself is checked against plain
``dataclass`` on classes that use what the events do not (yet): ``default_factory``, ``init=False``,
``__post_init__`` with ``InitVar``s, a field called ``self``, an ``__init__`` of the class's own."""

from __future__ import annotations

import copy
import dataclasses
import importlib
import inspect
import pickle
import sys
from dataclasses import MISSING, FrozenInstanceError, InitVar, dataclass, field, fields
from typing import Any, ClassVar

import pytest

from analyzer.events.base import DESCRIPTOR_INITS, event

MODULES = ["base", "clock", "dns", "http", "ocpp", "tcp", "tls", "websocket"]


def _classes() -> list[type]:
    """Every dataclass defined in ``analyzer.events``."""
    found = []
    for name in MODULES:
        module = importlib.import_module(f"analyzer.events.{name}")
        found += [
            obj
            for obj in vars(module).values()
            if isinstance(obj, type) and dataclasses.is_dataclass(obj) and obj.__module__ == module.__name__
        ]
    return found


CLASSES = _classes()
_REFERENCE_INITS: dict[type, Any] = {}


def _dataclass_init(cls: type) -> Any:
    """The ``__init__`` that ``dataclass(frozen=True, slots=True)`` writes for ``cls`` (``event`` tells it not to):
    made by ``dataclasses._init_fn`` (Python 3.11) as ``dataclasses._process_class`` makes it."""
    init = _REFERENCE_INITS.get(cls)
    if init is None:
        own = cls.__dataclass_fields__  # type: ignore[attr-defined]
        kinds = (dataclasses._FIELD, dataclasses._FIELD_INITVAR)  # type: ignore[attr-defined]
        every = [f for f in own.values() if f._field_type in kinds]
        std, kw = dataclasses._fields_in_init_order(every)  # type: ignore[attr-defined]
        module = sys.modules.get(cls.__module__)
        scope = module.__dict__ if module is not None else {}
        me = "__dataclass_self__" if "self" in own else "self"
        post_init = hasattr(cls, "__post_init__")
        init = dataclasses._init_fn(every, std, kw, True, post_init, me, scope, True)  # type: ignore[attr-defined]
        init.__qualname__ = f"{cls.__qualname__}.{init.__name__}"
        _REFERENCE_INITS[cls] = init
    return init


def _init_fields(cls: type) -> list[dataclasses.Field[Any]]:
    return [f for f in fields(cls) if f.init]


def _value(f: dataclasses.Field[Any]) -> Any:
    """A value for field ``f`` that no default equals and that hashes (the events check no types)."""
    return ("value of", f.name)


def _required(cls: type) -> dict[str, Any]:
    return {
        f.name: _value(f)
        for f in _init_fields(cls)
        if f.default is MISSING and f.default_factory is MISSING  # type: ignore[misc]
    }


def _every(cls: type) -> dict[str, Any]:
    return {f.name: _value(f) for f in _init_fields(cls)}


def _both(cls: type, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
    """The object the class's ``__init__`` makes and the one ``dataclass``'s makes, from the same arguments."""
    fast = cls(*args, **kwargs)
    slow = object.__new__(cls)
    _dataclass_init(cls)(slow, *args, **kwargs)
    return fast, slow


def _positional(cls: type) -> bool:
    return not any(f.kw_only for f in _init_fields(cls))


def _same_object(fast: Any, slow: Any) -> None:
    assert type(fast) is type(slow)
    assert fast == slow
    assert repr(fast) == repr(slow)
    assert [getattr(fast, f.name) for f in fields(fast)] == [getattr(slow, f.name) for f in fields(slow)]
    assert hash(fast) == hash(slow)


def test_every_event_class_has_the_descriptor_init() -> None:
    assert len(CLASSES) == 44  # a new class is checked below as soon as it is counted here
    for cls in CLASSES:
        assert cls in DESCRIPTOR_INITS, cls
        assert any(name.startswith("_ev_set_") for name in cls.__init__.__code__.co_freevars), cls
        params = cls.__dataclass_params__  # type: ignore[attr-defined]
        assert params.frozen
        assert "__slots__" in cls.__dict__
    assert sorted(cls.__name__ for cls in CLASSES if _positional(cls)) == ["DnsAnswer", "SchemaViolation"]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_the_same_signature(cls: type) -> None:
    slow = _dataclass_init(cls)
    assert inspect.signature(cls.__init__) == inspect.signature(slow)
    assert str(inspect.signature(cls)) == str(inspect.signature(slow)).replace("self, ", "", 1)
    assert cls.__init__.__qualname__ == slow.__qualname__ == f"{cls.__qualname__}.__init__"
    assert cls.__init__.__module__ == slow.__module__
    assert cls.__init__.__annotations__ == slow.__annotations__
    assert (cls.__init__.__defaults__, cls.__init__.__kwdefaults__) == (slow.__defaults__, slow.__kwdefaults__)
    if cls.__doc__.startswith(cls.__name__ + "("):  # no docstring of its own: ``dataclass``'s, from the signature
        text = str(inspect.signature(slow)).replace("self, ", "", 1).replace(" -> None", "")
        assert cls.__doc__ == cls.__name__ + text


def test_some_event_classes_have_the_docstring_dataclass_writes() -> None:
    generated = [cls for cls in CLASSES if cls.__doc__.startswith(cls.__name__ + "(")]
    assert len(generated) >= 4  # TcpSyn, TcpSynAck, TcpFin, TcpRst at least


def test_a_field_without_a_default_after_one_with_is_refused_as_dataclass_does() -> None:
    def make() -> type:
        class Bad:
            a: int = 1
            b: int

        return Bad

    with pytest.raises(TypeError) as ours:
        event(kw_only=False)(make())
    with pytest.raises(TypeError) as theirs:
        dataclass(frozen=True, slots=True)(make())
    assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_the_same_object_from_every_argument_and_from_the_defaults(cls: type) -> None:
    _same_object(*_both(cls, **_every(cls)))
    fast, slow = _both(cls, **_required(cls))
    _same_object(fast, slow)
    for f in fields(cls):
        if f.default is not MISSING:
            assert getattr(fast, f.name) is f.default
    if _positional(cls):
        _same_object(*_both(cls, *_every(cls).values()))
        _same_object(*_both(cls, *_required(cls).values()))


def _error(call: Any) -> TypeError:
    with pytest.raises(TypeError) as caught:
        call()
    assert type(caught.value) is TypeError
    return caught.value


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_the_same_error_for_a_missing_or_an_unknown_argument(cls: type) -> None:
    slow = _dataclass_init(cls)
    required = _required(cls)
    cases: list[dict[str, Any]] = [{**_every(cls), "not_a_field": 1}]
    cases += [{k: v for k, v in required.items() if k != name} for name in required]
    for kwargs in cases:
        fast_error = _error(lambda kwargs=kwargs: cls(**kwargs))
        slow_error = _error(lambda kwargs=kwargs: slow(object.__new__(cls), **kwargs))
        assert str(fast_error) == str(slow_error)
    if _positional(cls):
        values = list(_every(cls).values())
        for args in (values[:-1], [*values, "one too many"]):
            fast_error = _error(lambda args=args: cls(*args))
            slow_error = _error(lambda args=args: slow(object.__new__(cls), *args))
            assert str(fast_error) == str(slow_error)
    else:  # keyword-only: a positional argument is refused, the same way
        fast_error = _error(lambda: cls(*_every(cls).values()))
        assert "positional" in str(fast_error)
        assert str(fast_error) == str(_error(lambda: slow(object.__new__(cls), *_every(cls).values())))


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_still_frozen_and_replace_copy_pickle_as_before(cls: type) -> None:
    obj = cls(**_every(cls))
    for f in fields(cls):
        with pytest.raises(FrozenInstanceError):
            setattr(obj, f.name, 1)
        with pytest.raises(FrozenInstanceError):
            delattr(obj, f.name)
    name = _init_fields(cls)[0].name
    changed = dataclasses.replace(obj, **{name: "changed"})
    assert type(changed) is cls
    assert getattr(changed, name) == "changed"
    assert dataclasses.replace(changed, **{name: getattr(obj, name)}) == obj
    back = pickle.loads(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))
    assert type(back) is cls
    _same_object(back, obj)
    assert copy.copy(obj) == obj == copy.deepcopy(obj)


# -- the decorator on what the events do not use: each class is written twice, for ``event`` and for ``dataclass``


def _extras() -> type:
    class Extras:
        kind: ClassVar[str] = "extras"
        first: int
        items: list[int] = field(default_factory=list)
        label: str = "x"
        fixed: int = field(default=7, init=False)
        made: list[str] = field(default_factory=lambda: ["made"], init=False)
        unset: int = field(init=False, repr=False)  # never set: reading it raises AttributeError
        scale: InitVar[int] = 2
        seen: list[Any] = field(default_factory=list, compare=False, repr=False)

        def __post_init__(self, scale: int) -> None:
            self.seen.append(("post_init", scale, self.first))

    return Extras


def _positional_with_self() -> type:
    class WithSelf:
        self: int
        other: tuple[int, ...] = ()
        tail: list[int] = field(default_factory=list, kw_only=True)

    return WithSelf


def _own_init() -> type:
    class OwnInit:
        a: int

        def __init__(self, a: int = 5) -> None:
            object.__setattr__(self, "a", a * 2)

    return OwnInit


def _values(obj: Any) -> list[Any]:
    return [getattr(obj, f.name, "<unset>") for f in fields(obj)]


@pytest.mark.parametrize(
    ("make", "kw_only", "calls"),
    [
        (_extras, True, [{"first": 1}, {"first": 1, "items": [4], "label": "y", "scale": 3}]),
        (_positional_with_self, False, [(1,), (1, (2,)), ((1, (2,)), {"tail": [3]})]),
        (_own_init, True, [{}, {"a": 2}]),
    ],
)
def test_the_decorator_does_what_dataclass_does(make: Any, kw_only: bool, calls: list[Any]) -> None:
    fast = event(kw_only=kw_only)(make())
    slow = dataclass(frozen=True, slots=True, kw_only=kw_only)(make())
    assert str(inspect.signature(fast)) == str(inspect.signature(slow))
    assert (fast in DESCRIPTOR_INITS) is (make is not _own_init)
    assert fast.__doc__ == slow.__doc__
    assert fast.__match_args__ == slow.__match_args__
    for call in calls:
        args, kwargs = call if isinstance(call, tuple) and isinstance(call[-1], dict) else (call, {})
        if isinstance(args, dict):
            args, kwargs = (), args
        one, two = fast(*args, **kwargs), slow(*args, **kwargs)
        assert _values(one) == _values(two)
        assert repr(one) == repr(two)
        if make is _extras:
            assert one.items is not fast(first=1).items  # a new list from the factory on each call
            assert one.seen == [("post_init", kwargs.get("scale", 2), 1)]
        with pytest.raises(FrozenInstanceError):
            setattr(one, fields(one)[0].name, 1)
    for bad in ({"nope": 1}, {}) if make is not _own_init else ({"nope": 1},):
        with pytest.raises(TypeError) as fast_error:
            fast(**bad)
        with pytest.raises(TypeError) as slow_error:
            slow(**bad)
        assert str(fast_error.value) == str(slow_error.value)


def test_a_python_without_dataclasses_private_names_keeps_dataclass_s_init(monkeypatch: pytest.MonkeyPatch) -> None:
    """``event`` reads three private names of ``dataclasses``; where they are gone, classes keep the ``__init__``
    ``dataclass`` wrote (slower, the same behaviour) instead of failing at import."""
    from analyzer.events import base

    monkeypatch.setattr(base, "_HAS_DEFAULT_FACTORY", None)

    @event
    class Probe:
        a: int
        b: str = "x"

    assert Probe not in DESCRIPTOR_INITS
    assert Probe(a=1) == Probe(a=1, b="x")
    with pytest.raises(FrozenInstanceError):
        Probe(a=1).a = 2  # type: ignore[misc]


# -- __repr__, __eq__, __hash__: made by ``event`` from closures, compared with what ``dataclass`` writes


def _reference(cls: type, name: str) -> Any:
    """The method ``dataclass`` (Python 3.11's private helpers) writes for ``cls``: ``__repr__``, ``__eq__`` or
    ``__hash__``."""
    every = fields(cls)
    scope: dict[str, Any] = {}
    if name == "__repr__":
        return dataclasses._repr_fn([f for f in every if f.repr], scope)  # type: ignore[attr-defined]
    if name == "__eq__":
        compared = [f for f in every if f.compare]
        mine, theirs = (dataclasses._tuple_str(who, compared) for who in ("self", "other"))  # type: ignore[attr-defined]
        return dataclasses._cmp_fn("__eq__", "==", mine, theirs, globals=scope)  # type: ignore[attr-defined]
    return dataclasses._hash_fn(every, scope)  # type: ignore[attr-defined]


def _outcome(call: Any) -> Any:
    try:
        return ("ok", call())
    except Exception as e:  # noqa: BLE001 - the same exception, whatever it is
        return type(e), str(e)


class _Loud:
    """A value whose ``repr``, ``==`` and ``hash`` are noticed (and one that cannot be hashed, as a list)."""

    def __repr__(self) -> str:
        return "<loud \u00e9\n>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Loud)

    __hash__ = None  # type: ignore[assignment]


def _samples(cls: type) -> list[Any]:
    nan = float("nan")
    out = [cls(**_every(cls)), cls(**_required(cls))]
    for value in (nan, _Loud(), 10**40, "\ud800 é", None, [1, [2]], (nan,)):
        out.append(cls(**{f.name: value for f in _init_fields(cls)}))
    return out


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_repr_eq_hash_do_what_dataclass_s_do(cls: type) -> None:
    """The same text, the same equality (``NotImplemented`` for another class, tuples compared: a NaN held by
    both objects is equal), the same hash or the same error, on every event class."""
    repr_, eq, hash_ = (_reference(cls, name) for name in ("__repr__", "__eq__", "__hash__"))
    assert cls.__repr__.__qualname__ == f"{cls.__qualname__}.__repr__"
    samples = _samples(cls)
    for one in samples:
        assert repr(one) == repr_(one)
        assert _outcome(lambda one=one: hash(one)) == _outcome(lambda one=one: hash_(one))
        for two in [*samples, object(), _Loud()]:
            assert _outcome(lambda one=one, two=two: one.__eq__(two)) == _outcome(lambda one=one, two=two: eq(one, two))


def _shapes() -> type:
    class Shapes:
        a: int
        hidden: int = field(default=0, repr=False)
        loose: int = field(default=0, compare=False)
        hashed_only: int = field(default=0, compare=False, hash=True)
        unhashed: int = field(default=0, hash=False)

    return Shapes


def _own_methods() -> type:
    class OwnMethods:
        a: int

        def __repr__(self) -> str:
            return "own repr"

        def __eq__(self, other: object) -> bool:
            return True

    return OwnMethods


def _own_hash() -> type:
    class OwnHash:
        a: int

        def __hash__(self) -> int:
            return 7

    return OwnHash


def _nothing() -> type:
    class Nothing:
        pass

    return Nothing


def _self_referring() -> type:
    class Node:
        a: list[Any]

    return Node


@pytest.mark.parametrize("make", [_shapes, _own_methods, _own_hash, _nothing, _self_referring])
def test_the_decorator_s_repr_eq_hash_are_dataclass_s(make: Any) -> None:
    """On what the events do not use: fields left out of ``repr``, of comparison, of the hash (or only in it),
    methods of the class's own, no field, an object that holds itself (``repr`` says ``...``)."""
    fast = event(make())
    slow = dataclass(frozen=True, slots=True, kw_only=True)(make())
    assert fast.__doc__ == slow.__doc__
    args = [{}] if make is _nothing else [{"a": 1}, {"a": 2}]
    if make is _shapes:
        args += [{"a": 1, "hidden": 5, "loose": 6}, {"a": 1, "hashed_only": 3}, {"a": 1, "unhashed": 4}]
    pairs = [(fast(**kw), slow(**kw)) for kw in args]
    if make is _self_referring:
        pairs = [(fast(a=[]), slow(a=[]))]
    if make is _self_referring:
        for one, two in pairs:
            one.a.append(one)
            two.a.append(two)
    for one, two in pairs:
        assert repr(one).replace(fast.__qualname__, "X") == repr(two).replace(slow.__qualname__, "X")
        assert _outcome(lambda one=one: hash(one)) == _outcome(lambda two=two: hash(two))
        for other_one, other_two in pairs:
            assert (one == other_one) == (two == other_two)
            assert (one != other_one) == (two != other_two)
