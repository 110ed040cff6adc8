"""bench/ship_model.py writes the record from the evaluation's report, never by hand (issue 40, item 10)."""

from __future__ import annotations

import pytest

from bench.ship_model import evaluation_source


def test_it_takes_the_photo_and_people_counts_from_the_evaluation():
    report = {"palda_counts": {"photos": 50, "people": 40}, "scored_by": "cross-fitted"}
    source = evaluation_source(report, {"folds": 2})
    assert "50 clinical photos of 40 people" in source and "cross-fitted" in source and "2 folds" in source
    itself = evaluation_source({**report, "scored_by": "itself"}, None)
    assert itself == "palda-dev (50 clinical photos of 40 people, never trained on)"


def test_it_refuses_an_evaluation_without_its_counts():
    with pytest.raises(SystemExit, match="run bench/eval_shipped.py again"):
        evaluation_source({"palda": {}}, None)
