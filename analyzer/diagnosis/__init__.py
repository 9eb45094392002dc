"""Judging the timeline: per charger, rules produce findings; the earliest failure is the root cause."""
