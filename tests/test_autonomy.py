"""Autonomy comfort: read from a person's settings, with the configured default."""

from __future__ import annotations

from bot.autonomy import LEVELS, autonomy_of, parse_autonomy


def test_levels_and_parsing() -> None:
    assert LEVELS == ("low", "medium", "high")
    assert parse_autonomy("  HIGH ") == "high"
    assert parse_autonomy("max") is None


def test_person_setting_wins_over_default_and_bad_values_fall_back() -> None:
    assert autonomy_of({"autonomy": "low"}, "medium") == "low"
    assert autonomy_of({}, "high") == "high"
    assert autonomy_of(None, "medium") == "medium"
    assert autonomy_of({"autonomy": 3}, "medium") == "medium"
    assert autonomy_of({"autonomy": "reckless"}, "low") == "low"
