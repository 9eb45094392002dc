"""Budgets: how much of a big capture a report carries, named in one place.

A report's size is bounded by the chargers and their failures, not by the capture's length (report contract,
``../shared/spec/report-json.md``). Small captures are below every budget and are reported whole.
"""

from __future__ import annotations

# the JSON report's timeline: every event up to this many; beyond, the events the findings, their evidence and the
# attempts' boundaries point to, with their neighbours (``timeline_complete: false``, ``timeline_omitted``)
TIMELINE_FULL_EVENTS = 5_000
TIMELINE_CONTEXT = 2  # events kept on each side of a pointed-to event, within its charger's events
# decoded OCPP messages listed per charger (the rest are counted in ``ocpp_messages_omitted``)
OCPP_MESSAGES_PER_CHARGER = 500
OCPP_MESSAGES_PER_CHARGER_BIG = 40  # when the timeline is bounded: the messages around the findings first
# attempts listed per charger before the identical ones are counted instead
ATTEMPTS_SHOWN = 50
# HTML: chargers drawn in full (plots, message sequence, tables), failing ones first; the others are one row each
HTML_DETAILED_CHARGERS = 25
# Markdown: findings and evidence rows per failing charger (a page at most), chargers named per verdict group
MD_EVIDENCE_ROWS = 12
MD_FINDINGS = 10
MD_NAMES_PER_GROUP = 20
