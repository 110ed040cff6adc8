"""Run the worker's pipeline on photos from the command line (batch screening, checking the engine).

python manage.py analyze_image PHOTO [PHOTO ...] [--json] [--images DIR]

--images DIR writes each photo's overlay (landmarks and lines) and Grad-CAM heatmap as JPEG files there,
as the portal stores them, and names them in the record.
"""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from inference.engine.decide import explain_result
from inference.engine.imaging import ImageRejected, decode_upload
from inference.engine.pipeline import ENGINE_VERSION
from inference.runtime import current_pipeline, loaded_version_of


class Command(BaseCommand):
    help = "Analyse facial photos with the active model, exactly as the worker does."

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", type=Path)
        parser.add_argument("--json", action="store_true", help="One JSON object per line.")
        parser.add_argument("--images", type=Path, metavar="DIR", help="write the overlay and heatmap JPEGs here")

    def handle(self, *args, paths: list[Path], **options):
        as_json = options["json"]
        pipeline, version = current_pipeline()
        version = loaded_version_of(pipeline, version)
        failures = 0
        if options["images"]:
            options["images"].mkdir(parents=True, exist_ok=True)
        for path in paths:
            record = self._analyze(pipeline, path, options["images"])
            record["model_version"] = (
                f"{version.name} + {record['engine_version']}"
                if version
                else f"{record['engine_version']} (asymmetry only, no classifier)"
            )
            if record["status"] != "done":
                failures += 1
            else:
                record["explanation"] = explain_result(
                    measurements=record["measurements"],
                    classifier=record["classifier"],
                    decision=record["decision"],
                    pattern=record["pattern"],
                )
            self.stdout.write(_json_line(record) if as_json else _text(record))
        if failures == len(paths):
            raise CommandError(f"none of the {len(paths)} photos could be analysed")

    def _analyze(self, pipeline, path: Path, images: Path | None = None) -> dict:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            return {
                "path": str(path),
                "status": "error",
                "reason": f"cannot read: {exc.strerror}",
                "engine_version": ENGINE_VERSION,
            }
        try:
            # The same clean-up as an upload, so the portal and this command see the same pixels.
            clean = decode_upload(raw, max_bytes=settings.SCAN_MAX_UPLOAD_BYTES, max_pixels=settings.SCAN_MAX_PIXELS)
            analysis = pipeline.analyze_bytes(clean.data)
        except ImageRejected as exc:
            return {"path": str(path), "status": "rejected", "reason": str(exc), "engine_version": ENGINE_VERSION}
        record = {"path": str(path), **analysis.as_dict()}
        if images is not None:
            for kind, data in (("overlay", analysis.overlay_jpeg), ("heatmap", analysis.heatmap_jpeg)):
                if data:
                    target = images / f"{path.stem}-{kind}.jpg"
                    target.write_bytes(data)
                    record[f"{kind}_file"] = str(target)
        return record


def _json_line(record: dict) -> str:
    return json.dumps(record, sort_keys=True)


def _text(record: dict) -> str:
    if record["status"] != "done":
        return f"{record['path']}: {record['status']}: {record['reason']}"
    index = record["measurements"]["asymmetry_index"]
    warnings = record["quality"].get("warnings", [])
    return (
        f"{record['path']}: {record['label']} (score {record['score']:.2f}, severity {record['severity']}, "
        f"asymmetry index {index:.2f}, side {record['affected_side'] or '-'}, "
        f"pattern {record['pattern'] or '-'}) [{record['model_version']}]"
        + "".join(f"\n    {step}" for step in record["explanation"])
        + "".join(f"\n    quality: {warning['message']}" for warning in warnings)
    )
