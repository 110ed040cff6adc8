"""Each result says how sure it is (issue 28): the interval beside the value on the scan page, in the
API and the socket frames' scan payload, as error bars on the trend, and the trend read against it."""

from __future__ import annotations

import html
import json
import re

import pytest

from alerts.fanout import scan_payload
from inference.engine.repeatability import MEANING
from scans.models import Scan
from scans.selectors import BEYOND_NOISE, NO_MEASURABLE_CHANGE, latest_change, patient_timeline
from tests.scans.test_charts import chart, scan_on

pytestmark = pytest.mark.django_db


def measured(index: float, half_width: float | None) -> dict:
    data = {"asymmetry_index": index}
    if half_width is not None:
        data.update(index_repeatability=half_width, index_interval=[round(index - half_width, 3), index + half_width])
    return data


def visits(patient, *indices, half_width: float | None = 0.07):
    for day, index in enumerate(indices, start=3):
        label = "paralysis" if index >= 0.5 else "no_paralysis"
        scan_on(patient, day, label=label, severity="mild", pattern="", measurements=measured(index, half_width))


def test_the_scan_page_shows_the_index_with_its_interval(client, people):
    scan = scan_on(
        people.patient, 3, label="paralysis", severity="moderate", pattern="", measurements=measured(0.62, 0.08)
    )
    client.force_login(people.carol)
    page = client.get(f"/scans/{scan.id}/").content.decode()
    shown = re.search(r'<p id="index-interval">(.*?)</p>', page, re.S).group(1)
    assert "0.62 ± 0.08" in shown


def test_it_states_the_repeatability_as_it_was_fitted_on_the_scan_page_the_patient_page_and_in_the_api(client, people):
    """--fit fits the pair rule (two photos differ by less than √(h₁² + h₂²), 19 times in 20); a second
    photo falls within the first's ± h for fewer pairs (89.7% of palda-dev's in issue 40), so no page
    may say it does, and every page says the same."""
    visits(people.patient, 0.31, 0.62, half_width=0.08)
    scan = Scan.objects.filter(patient=people.patient).order_by("-uploaded_at").first()
    client.force_login(people.carol)
    scan_page = client.get(f"/scans/{scan.id}/").content.decode()
    patient_page = client.get(f"/scans/patients/{people.patient.id}/").content.decode()
    schema = client.get("/api/schema/?format=json").json()
    said = {
        "scan page": re.search(r'<p id="index-interval">(.*?)</p>', scan_page, re.S).group(1),
        "patient page": patient_page,
        "API help": schema["components"]["schemas"]["ScanResult"],
    }
    for where, text in said.items():
        text = json.dumps(text, ensure_ascii=False) if isinstance(text, dict) else html.unescape(text)
        assert MEANING in text, where
        assert "second photo of this face would measure" not in text and "would measure, 19" not in text, where
    # The figure each page adds is the pair rule's: hypot(0.08, 0.08) = 0.11.
    assert "for two photos as sure as this one, less than 0.11" in html.unescape(said["scan page"])
    assert "for these two, less than 0.11" in html.unescape(patient_page)


def test_a_result_from_before_repeatability_shows_no_interval(client, people):
    scan = scan_on(
        people.patient, 3, label="paralysis", severity="moderate", pattern="", measurements=measured(0.62, None)
    )
    client.force_login(people.carol)
    page = client.get(f"/scans/{scan.id}/").content.decode()
    assert 'id="index-interval"' not in page and "±" not in page


def test_the_api_and_the_socket_frames_carry_the_interval(api, people):
    scan = scan_on(
        people.patient, 3, label="paralysis", severity="moderate", pattern="", measurements=measured(0.62, 0.08)
    )
    body = api(people.alice).get(f"/api/v1/scans/{scan.id}/").json()["result"]
    assert (body["asymmetry_index"], body["index_repeatability"], body["index_interval"]) == (0.62, 0.08, [0.54, 0.7])
    frame = scan_payload(scan.id)["result"]  # what scan.updated frames send
    assert (frame["index_repeatability"], frame["index_interval"]) == (0.08, [0.54, 0.7])


def test_the_trend_draws_each_interval_as_an_error_bar(client, people):
    visits(people.patient, 0.2, 0.62)
    svg = chart(client, people.carol, people.patient)
    bars = [path.get("d") for path in svg.iter("path") if path.get("class") == "interval"]
    assert len(bars) == 2
    marks = {link.find("title").text: link.find("g").get("transform") for link in svg.iter("a")}
    assert any("0.62 ± 0.07" in title for title in marks)
    # Each bar is centred on its mark and runs from above it to below it.
    for bar, transform in zip(bars, marks.values()):
        x_mark, y_mark = map(float, re.match(r"translate\(([\d.]+) ([\d.]+)\)", transform).groups())
        x_bar, top, bottom = map(float, re.search(r"M([\d.]+),([\d.]+)V([\d.]+)", bar).groups())
        assert x_bar == pytest.approx(x_mark, abs=0.2)
        assert top < y_mark < bottom


def test_a_change_beyond_both_photos_repeatability_is_called_a_change(client, people, api):
    visits(people.patient, 0.62, 0.31)
    timeline = patient_timeline(user=people.carol, patient_id=people.patient.id)
    assert [p["change"] for p in timeline] == [None, BEYOND_NOISE]
    change = latest_change(timeline)
    assert (change["before"], change["after"], change["beyond_noise"]) == (0.62, 0.31, True)
    client.force_login(people.carol)
    page = client.get(f"/scans/patients/{people.patient.id}/").content.decode()
    assert "Changed: 0.62 → 0.31, beyond measurement noise" in page
    body = api(people.alice).get(f"/api/v1/patients/{people.patient.id}/timeline/").json()
    assert [point["change"] for point in body] == [None, BEYOND_NOISE]


def test_a_change_within_the_noise_is_no_measurable_change(client, people):
    visits(people.patient, 0.31, 0.40)  # 0.09 apart; two photos may differ by hypot(0.07, 0.07) = 0.099
    client.force_login(people.carol)
    page = client.get(f"/scans/patients/{people.patient.id}/").content.decode()
    assert "No measurable change: 0.31 → 0.40" in page and "beyond measurement noise" not in page
    timeline = patient_timeline(user=people.carol, patient_id=people.patient.id)
    assert timeline[-1]["change"] == NO_MEASURABLE_CHANGE


def test_results_without_repeatability_claim_no_change_either_way(client, people):
    visits(people.patient, 0.2, 0.9, half_width=None)
    timeline = patient_timeline(user=people.carol, patient_id=people.patient.id)
    assert latest_change(timeline) is None and timeline[-1]["change"] is None
    client.force_login(people.carol)
    assert 'id="latest-change"' not in client.get(f"/scans/patients/{people.patient.id}/").content.decode()
