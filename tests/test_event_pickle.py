"""Events pickle field by field through ``events.base._reduce`` (``analyze --workers`` sends each partition's events
to the parent): every event of the lab captures comes back equal, of its own class, with every field, and
``copy`` works as before."""

from __future__ import annotations

import copy
import pickle
from dataclasses import fields

import pytest

from analyzer.config import Settings
from analyzer.engine import analyze
from analyzer.events.base import Anomaly, Event, EventList, _maker, _revive
from tests.conftest import PROJECT_CAPTURES


def _events() -> list[Event]:
    out: list[Event] = []
    for path in sorted(PROJECT_CAPTURES.glob("*.pcap")):
        out.extend(analyze(str(path), Settings()).timeline.events)
    return out


def test_every_lab_event_comes_back_equal_and_of_its_class() -> None:
    events = _events()
    kinds = {type(e) for e in events}
    assert len(kinds) >= 20  # the lab captures hold most event classes
    data = pickle.dumps(events, protocol=pickle.HIGHEST_PROTOCOL)
    assert b"_revive" in data
    back = pickle.loads(data)
    assert back == events
    for a, b in zip(events, back, strict=True):
        assert type(a) is type(b)
        assert [getattr(a, f.name) for f in fields(a)] == [getattr(b, f.name) for f in fields(b)]
    one = next(e for e in events if type(e).__name__ == "OcppCall")
    assert copy.copy(one) == one
    assert copy.deepcopy(one) == one


def test_an_anomaly_pickles_with_its_defaults_and_its_values() -> None:
    for anomaly in (Anomaly(name="tcp.rst", frame=3, direction=None), Anomaly(name="x", frame=1, direction=1, count=4)):
        assert pickle.loads(pickle.dumps(anomaly)) == anomaly


def test_revive_refuses_values_that_do_not_fit_the_class() -> None:
    """A pickle of another version of the class (a field more or fewer) fails loudly, never shifts fields."""
    with pytest.raises(ValueError, match="zip"):
        _revive(Anomaly, ("tcp.rst", 3))


def test_an_event_list_comes_back_equal_in_order_and_of_each_class() -> None:
    """``EventList`` (a partition's events, pickled in one piece): the same events, in the same order, each of
    its own class with every field; the pickle holds the classes once, not a call per event."""
    events = _events()
    events = events[1::2] + events[::2]  # classes interleaved in no particular order
    data = pickle.dumps(EventList(events), protocol=pickle.HIGHEST_PROTOCOL)
    assert b"_revive" not in data
    assert b"_event_list" in data
    back = pickle.loads(data).events()
    assert back == events
    for a, b in zip(events, back, strict=True):
        assert type(a) is type(b)
        assert [getattr(a, f.name) for f in fields(a)] == [getattr(b, f.name) for f in fields(b)]
    assert pickle.loads(pickle.dumps(EventList([]))).events() == []


def test_an_event_list_refuses_values_that_do_not_fit_the_class() -> None:
    """As ``_revive``: a tuple of another version of the class fails loudly, never shifts fields."""
    make = _maker(Anomaly)
    assert make(("tcp.rst", 3, None, "", 1)) == Anomaly(name="tcp.rst", frame=3, direction=None)
    for wrong in (("tcp.rst", 3), ("tcp.rst", 3, None, "", 1, 9)):
        with pytest.raises(ValueError, match="Anomaly has 5 fields, not"):
            make(wrong)
