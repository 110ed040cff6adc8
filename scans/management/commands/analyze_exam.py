"""Run the worker's guided-exam analysis from the command line (issue 41): the rest photo, then the pose
photos (each option may be repeated for a burst's frames), and the urgency the portal would give it.

python manage.py analyze_exam --rest A --brows-raised B [--eyes-closed C] [--smile D] [--onset ISO] [--json]

The rest photo is analysed as analyze_image does it; each pose is measured against it
(inference/engine/exam.py): movement per side, the eFACE-style items, a House-Brackmann estimate, poses
not performed refused, and the pattern from the forehead in motion. The urgency is decided by the rule
the worker applies (scans/urgency.py) from that evidence and the time of onset (--onset; left out:
unknown).
"""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from inference.engine.exam import POSES
from inference.engine.imaging import ImageRejected, decode_upload
from inference.runtime import current_pipeline, loaded_version_of
from scans.urgency import onset_problem, result_urgency

OPTION_OF_POSE = {"brows_raised": "--brows-raised", "eyes_closed": "--eyes-closed", "smile": "--smile"}


def exam_urgency(record: dict, *, onset_at, now) -> dict:
    """The urgency of an exam's record ({"rest": ..., "exam": ...}) under scans/urgency.py: the rest
    photo's label and severity, the exam's pattern where a brow raise measured it (else the rest's guess),
    the forehead measured weak on the affected side for the peripheral pattern."""
    rest, exam = record["rest"], record.get("exam") or {}
    measured = exam.get("pattern") in ("central", "peripheral")
    urgency = result_urgency(
        label=rest.get("label", ""),
        pattern=exam["pattern"] if measured else rest.get("pattern", ""),
        affected_side=(exam.get("affected_side") if measured else None) or rest.get("affected_side", ""),
        severity=rest.get("severity", "none"),
        onset_at=onset_at,
        now=now,
        window_hours=settings.STROKE_WINDOW_HOURS,
        forehead_involved=(exam.get("pattern") == "peripheral") if measured else None,
    )
    return {"urgent": urgency.urgent, "reason": urgency.reason}


class Command(BaseCommand):
    help = "Analyse a guided exam (a rest photo and pose photos) exactly as the worker does."

    def add_arguments(self, parser):
        parser.add_argument("--rest", type=Path, required=True, help="the face at rest (required)")
        for pose, option in OPTION_OF_POSE.items():
            parser.add_argument(option, type=Path, action="append", default=[], dest=pose, help=f"{pose}: 1-3 frames")
        parser.add_argument("--onset", help="when the person was last seen without this weakness (ISO 8601)")
        parser.add_argument("--json", action="store_true", help="one JSON object")

    def handle(self, *args, rest: Path, onset: str | None, **options):
        onset_at = self._onset(onset)
        poses = {pose: [self._read(path) for path in options[pose]] for pose in POSES if options[pose]}
        for pose, frames in poses.items():
            if len(frames) > 3:
                raise CommandError(f"{OPTION_OF_POSE[pose]}: at most 3 frames of a pose, not {len(frames)}")
        pipeline, version = current_pipeline()
        version = loaded_version_of(pipeline, version)
        try:
            analysis = pipeline.analyze_exam_bytes(self._read(rest), poses)
        except ImageRejected as exc:
            raise CommandError(f"a photo could not be read: {exc}") from None
        record = {
            "rest_path": str(rest),
            "pose_paths": {pose: [str(path) for path in options[pose]] for pose in poses},
            **analysis.as_dict(),
        }
        engine = record["rest"].get("engine_version", "")
        record["model_version"] = (
            f"{version.name} + {engine}" if version else f"{engine} (asymmetry only, no classifier)"
        )
        record["onset_at"] = onset_at.isoformat() if onset_at else None
        if record["rest"].get("status") == "done":
            record["urgency"] = exam_urgency(record, onset_at=onset_at, now=timezone.now())
        self.stdout.write(json.dumps(record, sort_keys=True) if options["json"] else _text(record))
        if record["rest"].get("status") != "done":
            raise CommandError(f"the rest photo could not be analysed: {record['rest'].get('reason', '')}")

    def _read(self, path: Path) -> bytes:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise CommandError(f"{path}: cannot read: {exc.strerror}") from None
        try:
            # The same clean-up as an upload, so the portal and this command see the same pixels.
            return decode_upload(
                raw, max_bytes=settings.SCAN_MAX_UPLOAD_BYTES, max_pixels=settings.SCAN_MAX_PIXELS
            ).data
        except ImageRejected as exc:
            raise CommandError(f"{path}: {exc}") from None

    def _onset(self, onset: str | None):
        if not onset:
            return None
        moment = parse_datetime(onset)
        if moment is None or moment.tzinfo is None:
            raise CommandError(f"--onset {onset!r}: give an ISO 8601 time with its zone, e.g. 2026-12-08T09:30+00:00")
        problem = onset_problem(moment, now=timezone.now())
        if problem:
            raise CommandError(problem)
        return moment


def _text(record: dict) -> str:
    rest, exam = record["rest"], record.get("exam")
    lines = [f"rest {record['rest_path']}: {rest.get('status')} {rest.get('label', '')} ({record['model_version']})"]
    if exam:
        lines.append(f"pattern: {exam['pattern']}, side: {exam['affected_side'] or '-'}")
        if exam.get("forehead_finding"):
            lines.append(exam["forehead_finding"])
        for name, pose in exam["poses"].items():
            status = pose["status"] if pose["status"] == "measured" else pose["reason"]
            lines.append(
                f"  {name}: {status}" + (f", {pose['percent']:.0f}%" if pose.get("percent") is not None else "")
            )
        grade = exam.get("house_brackmann", {}).get("grade")
        if grade:
            lines.append(f"House-Brackmann estimate: {grade}")
        if exam.get("asks_for"):
            lines.append("asks for: " + ", ".join(exam["asks_for"]))
    if "urgency" in record:
        lines.append(
            ("POSSIBLE STROKE: " if record["urgency"]["urgent"] else "routine: ") + record["urgency"]["reason"]
        )
    return "\n".join(lines)
