"""How an alert is headed and what it asks (issue 29 point 2): an inconclusive result with the stroke
pattern's shape is urgent, but it is a review item and never called the stroke pattern."""

from __future__ import annotations

import pytest

from alerts.services import alert_raise
from inference.engine.decide import PATTERN_ADVICE, REVIEW_ADVICE
from tests import factories

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("in_memory_channels", "eager_celery")]


@pytest.mark.parametrize(
    "label, pattern, kind, heading, advice",
    [
        ("paralysis", "central", "positive", "STROKE PATTERN", PATTERN_ADVICE["central"]),
        ("paralysis", "undetermined", "positive", "POSSIBLE STROKE", PATTERN_ADVICE["undetermined"]),
        ("inconclusive", "central", "review", "POSSIBLE STROKE", REVIEW_ADVICE["central"]),
    ],
)
def test_an_urgent_alert_is_headed_by_what_the_result_showed(people, label, pattern, kind, heading, advice):
    result = factories.ScanResultFactory(scan__patient=people.patient, label=label, pattern=pattern, score=0.6)
    alert = alert_raise(scan=result.scan, result=result)
    assert (alert.kind, alert.urgent) == (kind, True)
    assert alert.urgent_label == heading
    assert alert.advice == advice
