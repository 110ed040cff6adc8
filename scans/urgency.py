"""Is a flagged face a possible stroke? The urgency rule, from the evidence a result has and the time
of onset, not from a guess at rest (issue 41; docs/model-card.md, "Urgency").

Clinicians tell a stroke (a central lesion: the lower face weak, the forehead spared, since the upper
face is supplied from both hemispheres) from a peripheral palsy such as Bell's palsy (the whole half,
forehead included) by the forehead in motion (raise the eyebrows) and by the time of onset ("when was
the person last seen without this weakness?"). A photo at rest shows neither: the pattern the engine
names at rest is a guess (right on 0.73 of flagged palsy photos never fitted on, below answering
"peripheral" every time), so it may make a result more urgent, never less.

A flagged result (positive or inconclusive) is stroke-urgent unless one of these says otherwise:
- the patient has a known facial palsy on the same side, recorded by the care team, and this photo is
  no worse than it: routine (a new side, or a worse severity, is not);
- the forehead was measured weak on the same side (a brow raise in an exam: the peripheral pattern):
  routine, though a peripheral pattern does not exclude a brainstem stroke;
- the onset is known and older than STROKE_WINDOW_HOURS, and the pattern at rest is peripheral:
  routine.
The central pattern, and a positive face of undetermined pattern, stay urgent whatever the onset. An
onset not given counts as unknown: urgent.

A screening and notification aid: other stroke signs (an arm or leg, speech, confusion) make any
result urgent, whatever this rule says. The rule is pure: the caller passes what it knows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from inference.engine.decide import severity_rank

FLAGGED = ("paralysis", "inconclusive")


@dataclass(frozen=True)
class KnownPalsy:
    """A facial palsy the care team has recorded for a patient under follow-up."""

    side: str  # "left" or "right"
    severity: str  # the worst severity it is known to have ("mild", "moderate", "severe")
    since: str = ""  # in words, for the reason given


@dataclass(frozen=True)
class Urgency:
    urgent: bool
    reason: str  # one sentence: why the result is (not) urgent


def onset_problem(onset_at: datetime | None, *, now: datetime) -> str:
    """Why a time of onset cannot be right ("" if it can): it lies in the future (a few minutes of clock
    difference allowed)."""
    if onset_at is not None and onset_at > now + timedelta(minutes=5):
        return "The time the person was last seen without this weakness cannot be in the future."
    return ""


def result_urgency(
    *,
    label: str,
    pattern: str,
    affected_side: str,
    severity: str,
    onset_at: datetime | None,
    now: datetime,
    window_hours: int,
    known_palsy: KnownPalsy | None = None,
    forehead_involved: bool | None = None,
) -> Urgency:
    """The urgency of one result (module docstring). ``forehead_involved``: None when no brow raise was
    measured (a photo at rest), True when the forehead was measured weak on the affected side."""
    if label not in FLAGGED:
        return Urgency(False, "")
    if (
        known_palsy is not None
        and affected_side
        and affected_side == known_palsy.side
        and severity_rank(severity) <= severity_rank(known_palsy.severity)
    ):
        since = f" (since {known_palsy.since})" if known_palsy.since else ""
        return Urgency(False, f"A known {known_palsy.side} facial palsy{since}, no worse in this photo: routine.")
    if known_palsy is not None and affected_side and affected_side != known_palsy.side:
        return Urgency(
            True, f"Weakness on the {affected_side}: a new side (the known palsy is on the {known_palsy.side})."
        )
    if known_palsy is not None and affected_side:
        return Urgency(True, f"Worse than the known {known_palsy.side} facial palsy ({severity}): a possible stroke.")
    if pattern == "central":
        return Urgency(True, "The central pattern (the forehead spared): the stroke pattern.")
    if label == "paralysis" and pattern == "undetermined":
        return Urgency(True, "A weak face of undetermined pattern: treated as a possible stroke.")
    if forehead_involved:
        return Urgency(False, "The forehead was measured weak on the same side (the peripheral pattern): routine.")
    if onset_at is None:
        return Urgency(True, "Onset unknown, and a face at rest cannot show forehead sparing: a possible stroke.")
    hours = (now - onset_at) / timedelta(hours=1)
    if hours <= window_hours:
        return Urgency(
            True,
            f"Last seen without this weakness {hours:.0f} h ago, within {window_hours} h, and a face at rest cannot "
            "show forehead sparing: a possible stroke.",
        )
    return Urgency(
        False,
        f"Last seen without this weakness {hours:.0f} h ago, beyond {window_hours} h, peripheral at rest: routine.",
    )


def urgency_of(result, *, now: datetime, window_hours: int) -> Urgency:
    """``result_urgency`` for a stored result (scans.models.ScanResult), its scan's onset and its patient's
    known palsy."""
    patient = result.scan.patient
    known = (
        KnownPalsy(
            side=patient.known_palsy_side,
            severity=patient.known_palsy_severity,
            since=patient.known_palsy_since.isoformat() if patient.known_palsy_since else "",
        )
        if patient.known_palsy_side and patient.known_palsy_severity
        else None
    )
    return result_urgency(
        label=result.label,
        pattern=result.pattern,
        affected_side=result.affected_side,
        severity=result.severity,
        onset_at=result.scan.onset_at,
        now=now,
        window_hours=window_hours,
        known_palsy=known,
        forehead_involved=(result.measurements or {}).get("forehead_involved"),
    )
