"""Helpers shared by the OCPP rules (not a rule: no ``@rule`` here)."""

from __future__ import annotations

from analyzer.diagnosis.catalogue import AUTHORIZATION_ACTIONS


def cx_for_action(action: str | None) -> str:
    """CX009 AuthorizationTimeout for Authorize and transaction starts, else CX013 NoInternet (catalogue)."""
    return "CX009" if action in AUTHORIZATION_ACTIONS else "CX013"


def side(direction: int | None) -> str:
    return "charger" if direction == 0 else "CSMS"
