"""Routines: plans over site rules, repeated by an RFC 5545 RRULE (``interventions.planner``
creates their occurrences)."""
