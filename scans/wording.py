"""What a result says to a caregiver: plain words a worried person with a phone can act on.

Clinicians read the result's label, pattern and advice (inference.engine.decide.pattern_advice);
a caregiver has no "stroke team" to contact and must never read a negative as "all clear". So every
caregiver wording ends with the same warning signs and a number to call, as the information page
(templates/portal/information.html, "When to seek care") gives them, and none names a team, a
pattern or a threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone
from django.utils.formats import date_format

WARNING_SIGNS = (
    "If the face drooped suddenly, or the person has weakness of an arm or leg, slurred or strange speech, "
    "confusion or a severe headache, call emergency services now: every minute counts."
)


# A possible stroke: the care team was alerted, and the caregiver is not to wait for it.
ALERTED_DO_NOT_WAIT = (
    "The patient's care team has been alerted and will contact you. Do not wait for them if you see any of the "
    "signs below."
)


@dataclass(frozen=True)
class LayAdvice:
    headline: str
    body: str
    tone: str  # "urgent", "attention" or "calm": how the box is drawn
    call_number: str
    warning_signs: str = WARNING_SIGNS


def lay_advice(result) -> LayAdvice:
    """The caregiver's wording for a scan result (scans.models.ScanResult)."""
    number = settings.EMERGENCY_PHONE_NUMBER
    if result.label == result.Label.PARALYSIS and result.is_urgent:
        return LayAdvice(
            "The photo shows signs that can come with a stroke",
            ALERTED_DO_NOT_WAIT,
            "urgent",
            number,
        )
    if result.label == result.Label.PARALYSIS:
        return LayAdvice(
            "The photo shows weakness on one side of the face",
            "The patient's care team has been alerted and will contact you. A doctor should see the patient "
            "today. This can still be a stroke.",
            "urgent",
            number,
        )
    if result.label == result.Label.INCONCLUSIVE and result.is_urgent:
        # Urgent for the clinicians (it may be the stroke pattern): never calm for the caregiver.
        return LayAdvice(
            "The photo could not be judged clearly, and it may show signs that can come with a stroke",
            ALERTED_DO_NOT_WAIT,
            "urgent",
            number,
        )
    if result.label == result.Label.INCONCLUSIVE:
        return LayAdvice(
            "The photo could not be judged clearly",
            "The patient's care team will look at the photo and contact you if needed. You may also take a "
            "new photo following the guide.",
            "attention",
            number,
        )
    return LayAdvice(
        "No signs of facial weakness were found in this photo",
        "This does not rule out a stroke: a photo shows only the face, at one moment.",
        "calm",
        number,
    )


def care_team_news(alert) -> str:
    """What the care team has done with the alert a caregiver's photo raised (alerts.models.Alert), in
    plain words: she learns that someone is looking, and what they found. "" while no one has yet."""
    if alert is None:
        return ""
    when = date_format(
        timezone.localtime(alert.resolved_at or alert.acknowledged_at or alert.created_at), "DATETIME_FORMAT"
    )
    if alert.status == alert.Status.ACKNOWLEDGED:
        return f"A clinician of the care team is looking at this now (since {when})."
    if alert.status != alert.Status.RESOLVED:
        return ""
    found = {
        alert.Outcome.CONFIRMED: "they found weakness of the face and are taking care of the patient: follow their "
        "advice.",
        alert.Outcome.REFERRED: "they have referred the patient on for further care: expect to be contacted.",
        alert.Outcome.FALSE_ALARM: "they found no cause for concern in it. This does not rule out a stroke later: "
        "watch for the signs below.",
    }.get(alert.outcome, "they have closed it.")
    return f"The care team has reviewed this photo ({when}): {found}"
