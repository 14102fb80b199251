"""The course's colours for what a plot shows, so that a colour means the same thing in every figure."""

from __future__ import annotations

CONCEPT_COLOURS = {"action": "tab:blue", "entity": "tab:green", "motion": "tab:purple"}
"""One colour per concept kind: actions, their entities and their motions (timelines, bars)."""
