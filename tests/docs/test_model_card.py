"""docs/model-card.md states what the code does (issue 40, item 10): its "What decides today" table
against the shipped rule's constants, its counts against the evaluation's."""

from __future__ import annotations

import json
import re
from pathlib import Path

from inference.engine import repeatability
from inference.engine.decide import ASYMMETRY_ONLY_RULE
from inference.shipped import SHIPPED_MODEL

CARD = (Path(__file__).resolve().parents[2] / "docs" / "model-card.md").read_text()


def row(stage: str) -> str:
    return next(line for line in CARD.splitlines() if line.startswith(f"| {stage}"))


def test_it_states_the_pattern_and_decision_thresholds_the_code_applies():
    rule = ASYMMETRY_ONLY_RULE
    pattern = row("Pattern")
    assert f"< {rule.pattern_central_below:g} of an eye's width" in pattern
    assert f"≥ {rule.pattern_peripheral_at:g}: **peripheral**" in pattern
    decision = row(f"Decision rule `{rule.name}`")
    assert f"all of it is ≥ {rule.asymmetry_positive_at:g}" in decision
    assert f"all of it is < {rule.asymmetry_negative_below:g}" in decision


def test_it_counts_palda_devs_people_as_the_evaluation_counted_them():
    source = json.loads(SHIPPED_MODEL.path.with_suffix(".json").read_text())["metrics"]["evaluation"]["source"]
    photos, people = map(int, re.search(r"(\d+) clinical photos of (\d+) people", source).groups())
    assert f"- {photos} photos from {people} people" in CARD


def test_it_states_the_repeatability_constants_the_code_applies():
    r = repeatability
    formula = f"h = √({r.FLOOR:g}² + ({r.SPREAD_GAIN:g} · refit spread)² + ({r.POSE_GAIN:g} · |yaw|)²)"
    assert formula in CARD
    assert f"`{r.NO_REFIT:g} · √({r.FLOOR:g}² + ({r.POSE_GAIN:g} ·" in CARD
