"""The patient's trend chart: a time axis with dates, the healthy band, the threshold, one mark per kind of scan."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scans.models import Scan
from scans.selectors import patient_timeline
from tests import factories

pytestmark = pytest.mark.django_db

RULE = {"name": "asymmetry-rest-test", "asymmetry_positive_at": 0.5, "asymmetry_negative_below": 0.4}


def scan_on(patient, day: int, **result) -> Scan:
    """A scan uploaded at 10:00 UTC on that day of November 2025, analysed unless status says otherwise."""
    status = result.pop("status", Scan.Status.DONE)
    if status == Scan.Status.DONE:
        scan = factories.ScanResultFactory(scan__patient=patient, decision=RULE, **result).scan
    else:
        scan = factories.ScanFactory(patient=patient, status=status, **result)
    Scan.objects.filter(id=scan.id).update(uploaded_at=datetime(2025, 11, day, 10, tzinfo=UTC))
    return scan


@pytest.fixture
def history(people):
    """Four photos of Maria Santos in a week: each kind of mark once, a refusal among them."""
    return {
        "negative": scan_on(
            people.patient, 3, label="no_paralysis", severity="none", pattern="", measurements={"asymmetry_index": 0.21}
        ),
        "inconclusive": scan_on(
            people.patient,
            5,
            label="inconclusive",
            severity="mild",
            pattern="undetermined",
            measurements={"asymmetry_index": 0.45},
        ),
        "refused": scan_on(
            people.patient,
            6,
            status=Scan.Status.REJECTED,
            status_reason="No face found: <retake> the photo facing the camera.",
        ),
        "positive": scan_on(
            people.patient,
            7,
            label="paralysis",
            severity="moderate",
            pattern="central",
            measurements={"asymmetry_index": 0.93},
        ),
    }


def chart(client, user, patient, drawing: str = "wide") -> ET.Element:
    client.force_login(user)
    page = client.get(f"/scans/patients/{patient.id}/").content.decode()
    # The chart parses as XML: every text in it was escaped.
    return ET.fromstring(re.search(rf'<svg class="trend {drawing}".*?</svg>', page, re.S).group(0))


def points(svg: ET.Element) -> dict[str, tuple[float, float]]:
    """The mark class of each linked point -> its (x, y)."""
    placed = {}
    for link in svg.iter("a"):
        x, y = map(float, re.match(r"translate\(([\d.]+) ([\d.]+)\)", link.find("g").get("transform")).groups())
        placed[link.find("g")[0].get("class")] = (x, y)
    return placed


def test_it_gives_each_kind_of_scan_its_own_mark_linked_to_its_page(client, people, history):
    svg = chart(client, people.carol, people.patient)
    shapes = {link.find("g")[0].get("class"): (link.find("g")[0].tag, link.get("href")) for link in svg.iter("a")}
    assert shapes == {
        "negative": ("circle", f"/scans/{history['negative'].id}/"),
        "inconclusive": ("path", f"/scans/{history['inconclusive'].id}/"),
        "refused": ("path", f"/scans/{history['refused'].id}/"),
        "positive": ("path", f"/scans/{history['positive'].id}/"),
    }
    # Told apart without colour: four kinds, four shapes.
    drawn = {link.find("g")[0].get("class"): ET.tostring(link.find("g")[0]) for link in svg.iter("a")}
    assert len({re.sub(rb'class="\w+"', b"", shape) for shape in drawn.values()}) == 4
    legend = [text.text for text in svg.iter("text") if text.get("class") == "legend"]
    assert legend[:4] == ["positive", "negative", "inconclusive", "photo refused"]


def test_it_places_scans_by_their_date_on_a_labelled_time_axis(client, people, history):
    svg = chart(client, people.carol, people.patient)
    placed = points(svg)
    # 3, 5 and 7 November are evenly spaced in time, though the refusal on the 6th sits between them.
    assert placed["inconclusive"][0] - placed["negative"][0] == pytest.approx(
        placed["positive"][0] - placed["inconclusive"][0], abs=0.2
    )
    ticks = [
        text.text for text in svg.iter("text") if text.get("class") == "axis" and text.get("text-anchor") == "middle"
    ]
    assert ticks[:3] == ["3 Nov", "4 Nov", "5 Nov"]
    titles = [text for text in svg.iter("text") if text.get("class") == "axis-title"]
    assert titles[0].text == "Asymmetry index"


def test_it_shades_the_healthy_band_and_labels_the_threshold_from_the_stored_rule(client, people, history):
    svg = chart(client, people.carol, people.patient)
    texts = {text.get("class"): text.text for text in svg.iter("text")}
    assert texts["band-label"] == "healthy range at rest (92.5% below 0.4)"
    assert texts["threshold-label"] == "positive at 0.5 or more"
    band = next(rect for rect in svg.iter("rect") if rect.get("class") == "healthy")
    threshold = next(line for line in svg.iter("line") if line.get("class") == "threshold")
    time_axis = next(line for line in svg.iter("line") if line.get("class") == "time-axis")
    # The band runs from the time axis (index 0) up to 0.4; the threshold line sits above it, at 0.5.
    assert float(band.get("y")) + float(band.get("height")) == pytest.approx(float(time_axis.get("y1")), abs=0.2)
    assert float(threshold.get("y1")) < float(band.get("y"))
    # The refused photo has no index: it sits on the time axis.
    assert points(svg)["refused"][1] == pytest.approx(float(time_axis.get("y1")))


def test_it_shows_each_index_and_the_pattern_letter(client, people, history):
    svg = chart(client, people.carol, people.patient)
    values = [text.text for text in svg.iter("text") if text.get("class") == "value"]
    assert values == ["0.21", "0.45", "0.93"]
    letters = {text.get("class"): text.text for text in svg.iter("text") if "pattern" in (text.get("class") or "")}
    assert letters == {"pattern undetermined": "?", "pattern central": "C"}
    titles = [link.find("title").text for link in svg.iter("a")]
    assert "positive" in titles[-1] and "pattern: Central" in titles[-1] and titles[-1].startswith("2025-11-07 ")


def test_it_escapes_the_refusal_reason_in_the_chart(client, people, history):
    svg = chart(client, people.carol, people.patient)
    refused = next(link for link in svg.iter("a") if link.find("g")[0].get("class") == "refused")
    assert refused.find("title").text.endswith("photo refused. No face found: <retake> the photo facing the camera.")


def test_the_timeline_has_analysed_and_refused_scans_but_not_pending_or_failed_ones(people, history):
    factories.ScanFactory(patient=people.patient)
    factories.ScanFactory(patient=people.patient, status=Scan.Status.FAILED)
    timeline = patient_timeline(user=people.carol, patient_id=people.patient.id)
    assert [(p["status"], p["label"], p["pattern"]) for p in timeline] == [
        ("done", "no_paralysis", ""),
        ("done", "inconclusive", "undetermined"),
        ("rejected", None, None),
        ("done", "paralysis", "central"),
    ]
    assert timeline[2]["asymmetry_index"] is None and timeline[2]["status_reason"].startswith("No face found")
    assert timeline[3]["decision"] == RULE


def test_the_timeline_api_still_answers_with_a_refused_scan_in_the_history(people, api, history):
    body = api(people.alice).get(f"/api/v1/patients/{people.patient.id}/timeline/").json()
    assert [point["scan_id"] for point in body] == [scan.id for scan in history.values()]
    refused = body[2]
    assert (refused["status"], refused["label"], refused["asymmetry_index"]) == ("rejected", None, None)
    assert refused["status_reason"].startswith("No face found")
    assert (body[3]["status"], body[3]["label"], body[3]["pattern"]) == ("done", "paralysis", "central")


def test_photos_minutes_apart_are_drawn_apart_with_each_index_readable(client, people):
    """Three photos in ten minutes and two refusals in one hour were drawn on top of each other,
    their labels overprinted, the refusals one mark."""
    first = scan_on(people.patient, 1, label="no_paralysis", severity="none", measurements={"asymmetry_index": 0.2})
    burst = [
        scan_on(people.patient, 8, label="paralysis", measurements={"asymmetry_index": value})
        for value in (0.91, 0.88, 0.95)
    ]
    refusals = [scan_on(people.patient, 8, status=Scan.Status.REJECTED, status_reason="Too dark.") for _ in range(2)]
    for minutes, scan in enumerate([*burst, *refusals]):
        Scan.objects.filter(id=scan.id).update(uploaded_at=datetime(2025, 11, 8, 10, 2 * minutes, tzinfo=UTC))

    for drawing, gap in (("wide", 2.6 * 11), ("narrow", 2.6 * 13)):
        svg = chart(client, people.carol, people.patient, drawing)
        xs = [
            float(re.match(r"translate\(([\d.]+)", link.find("g").get("transform")).group(1)) for link in svg.iter("a")
        ]
        assert len(xs) == 6
        assert all(later - earlier >= gap - 0.2 for earlier, later in zip(xs, xs[1:])), xs
        assert xs[0] < xs[1] - 100  # the photo a week earlier keeps its place in time
        values = [text.text for text in svg.iter("text") if text.get("class") == "value"]
        assert values == ["0.20", "0.91", "0.88", "0.95"]
        rug = [float(line.get("x1")) for line in svg.iter("line") if line.get("class") == "rug"]
        assert len(rug) == 6 and max(rug[1:]) - min(rug[1:]) < 5  # the burst's true times, close together
    assert first.id and refusals


def test_a_long_history_writes_only_the_indices_that_fit(client, people):
    for day in range(1, 29):
        scan_on(people.patient, day, label="no_paralysis", severity="none", measurements={"asymmetry_index": 0.2})
    svg = chart(client, people.carol, people.patient, "narrow")
    links = list(svg.iter("a"))
    assert len(links) == 28
    labelled = [link for link in links if any(t.get("class") == "value" for t in link.iter("text"))]
    assert 2 <= len(labelled) < 28
    assert labelled[-1] is links[-1]  # the latest is always written


@given(
    xs=st.lists(st.floats(0, 700, allow_nan=False), min_size=1, max_size=40).map(sorted),
    gap=st.floats(1, 60),
)
def test_spread_keeps_order_and_gap_and_moves_nothing_that_has_room(xs, gap):
    from scans.charts import spread

    placed = spread(xs, gap, 0.0, 700.0)
    assert len(placed) == len(xs)
    assert all(0.0 - 1e-6 <= value <= 700.0 + 1e-6 for value in placed)
    room = min(gap, 700.0 / (len(xs) - 1)) if len(xs) > 1 else 0
    assert all(later - earlier >= room - 1e-6 for earlier, later in zip(placed, placed[1:]))
    if all(later - earlier >= gap for earlier, later in zip(xs, xs[1:])):
        assert placed == pytest.approx(xs)


def test_an_index_is_written_above_its_repeatability_bar_not_across_it(client, people):
    scan_on(
        people.patient,
        5,
        label="paralysis",
        measurements={"asymmetry_index": 1.43, "index_repeatability": 0.2, "index_interval": [1.23, 1.63]},
    )
    for drawing in ("wide", "narrow"):
        svg = chart(client, people.carol, people.patient, drawing)
        bar = next(path for path in svg.iter("path") if path.get("class") == "interval")
        bar_top = min(float(v) for v in re.findall(r"[MHV][\d.]+,([\d.]+)", bar.get("d")))
        link = next(svg.iter("a"))
        mark_y = float(re.match(r"translate\([\d.]+ ([\d.]+)\)", link.find("g").get("transform")).group(1))
        value = next(text for text in link.iter("text") if text.get("class") == "value")
        assert mark_y + float(value.get("y")) <= bar_top - 3  # the text's baseline clears the bar's cap
