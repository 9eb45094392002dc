"""Rules register themselves with ``@rule``; ``discover()`` imports every module in ``diagnosis/rules``."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from analyzer.diagnosis.chargers import Charger
    from analyzer.diagnosis.context import Context
    from analyzer.diagnosis.finding import Finding

RuleFn = Callable[["Charger", "Context"], Iterator["Finding"]]


@dataclass(frozen=True, slots=True)
class RuleSpec:
    name: str  # module name, e.g. "dns_nxdomain"
    faults: tuple[str, ...]  # catalogue ids the rule may emit
    fn: RuleFn


RULES: dict[str, RuleSpec] = {}


def rule(*faults: str) -> Callable[[RuleFn], RuleFn]:
    """Register a rule function that may emit findings with the given fault ids."""

    def register(fn: RuleFn) -> RuleFn:
        name = fn.__module__.rsplit(".", 1)[-1]
        RULES[name] = RuleSpec(name, faults, fn)
        return fn

    return register


_discovered = False


def discover() -> dict[str, RuleSpec]:
    """Every rule, its module imported on the first call (listing the package's files costs more than a small
    capture's diagnosis, so it is done once per process)."""
    global _discovered
    if not _discovered:
        from analyzer.diagnosis import rules

        for m in pkgutil.iter_modules(rules.__path__):
            importlib.import_module(f"{rules.__name__}.{m.name}")
        _discovered = True
    return RULES
