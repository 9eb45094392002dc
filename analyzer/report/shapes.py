"""Plots drawn once per distinct shape: a bounded least-recently-used cache of drawn skeletons.

A triage worker renders thousands of reports of captures that differ in their addresses, station ids and times
but not in what their plots look like. A plot is split into its *shape* (everything its geometry depends on: the
key) and its *texts* (filled into the drawn skeleton for each capture); the skeleton is drawn from the key alone,
so one drawn for one capture is the right one for every capture with the same key. ``ShapeCache`` keeps at most
``budgets.REPORT_PLOT_SHAPES`` skeletons per kind of plot, the least recently used going first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from analyzer import budgets

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class CacheInfo:
    """What one cache did: ``hits``, ``misses``, the entries it holds (``size``) and may hold (``bound``)."""

    name: str
    hits: int
    misses: int
    size: int
    bound: int


class ShapeCache(Generic[T]):
    """Key → a value drawn once (``get``), at most ``bound`` of them, the least recently used evicted first. Safe to
    share between threads (a Dask worker may run several tasks at once): one lock around the bookkeeping, a value
    drawn outside it (two threads may both draw a new key; either drawing is the same)."""

    def __init__(self, name: str, bound: int = budgets.REPORT_PLOT_SHAPES) -> None:
        self.name = name
        self.bound = bound
        self.hits = 0
        self.misses = 0
        self._held: OrderedDict[Hashable, T] = OrderedDict()
        self._lock = threading.Lock()
        CACHES.append(self)

    def get(self, key: Hashable, draw: Callable[[], T]) -> T:
        """The value for ``key``: the one kept, else ``draw()`` (kept from then on)."""
        with self._lock:
            held = self._held.get(key)
            if held is not None:
                self._held.move_to_end(key)
                self.hits += 1
                return held
            self.misses += 1
        value = draw()
        with self._lock:
            self._held[key] = value
            self._held.move_to_end(key)
            while len(self._held) > self.bound:
                self._held.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._held)

    def clear(self) -> None:
        with self._lock:
            self._held.clear()
            self.hits = self.misses = 0

    def info(self) -> CacheInfo:
        return CacheInfo(self.name, self.hits, self.misses, len(self._held), self.bound)


CACHES: list[ShapeCache] = []  # every cache made, for ``cache_info``/``cache_clear``


def cache_info() -> list[CacheInfo]:
    """Each shape cache's counts (the bench prints them)."""
    return [c.info() for c in CACHES]


def cache_clear() -> None:
    """Empty every shape cache (tests: a render from a cold cache)."""
    for c in CACHES:
        c.clear()
