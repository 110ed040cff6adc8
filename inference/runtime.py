"""The worker's pipeline, built once per process and rebuilt only when the active model changes.

Never imported by the web process at start-up; the first task in each worker pays the load.
"""

from __future__ import annotations

import logging
import threading

from django.conf import settings
from django.utils import timezone

from inference.engine.classifier import CheckpointError, ResNetClassifier
from inference.engine.decide import ASYMMETRY_ONLY_RULE, DecisionRule
from inference.engine.face import FaceMeshDetector
from inference.engine.pipeline import Pipeline
from inference.engine.threads import limit_opencv_threads, threads_per_process, usable_cpus
from inference.models import ModelVersion
from inference.selectors import activation_problems, held_out_auc

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_cached: dict = {"key": object(), "pipeline": None, "version": None}
_detector: FaceMeshDetector | None = None


def active_model_version() -> ModelVersion | None:
    return ModelVersion.objects.filter(is_active=True).first()


def shared_detector() -> FaceMeshDetector:
    """One face-mesh detector per process (building one loads MediaPipe's graph)."""
    global _detector
    if _detector is None:
        _detector = FaceMeshDetector()
    return _detector


def analysis_threads() -> int:
    """This worker process's share of its node's CPUs (settings.INFERENCE_THREADS when set)."""
    return threads_per_process(settings.WORKER_CONCURRENCY, settings.INFERENCE_THREADS)


def share_the_cpus() -> None:
    """Run in each worker process as it starts (portal/celery.py): the node's processes take equal
    shares of its CPUs instead of each starting a thread per core. OpenCV takes it now, the
    classifier's runtime when the pipeline is built (_build)."""
    threads = analysis_threads()
    limit_opencv_threads(threads)
    logger.info(
        "analysis threads: %d (usable CPUs %d, worker processes on this node %d)",
        threads,
        usable_cpus(),
        settings.WORKER_CONCURRENCY,
    )


def current_pipeline() -> tuple[Pipeline, ModelVersion | None]:
    """The pipeline for the active model version (one registry query; a model load only on change)."""
    version = active_model_version()
    key = (version.id, version.sha256, repr(version.thresholds), repr(held_out_auc(version))) if version else None
    with _lock:
        if _cached["key"] != key:
            _cached.update(key=key, pipeline=_build(version, shared_detector()), version=version)
        return _cached["pipeline"], _cached["version"]


def _build(version: ModelVersion | None, detector: FaceMeshDetector) -> Pipeline:
    if version is None:
        return Pipeline(detector=detector, rule=ASYMMETRY_ONLY_RULE, max_pixels=settings.SCAN_MAX_PIXELS)
    problems = activation_problems(version)
    if problems:
        # Activated behind the service's back (SQL, a fixture): it still does not decide.
        return _without_classifier(version, detector, "not validated: " + "; ".join(problems))
    try:
        classifier = ResNetClassifier(
            version.checkpoint.path,
            expected_sha256=version.sha256,
            runtime=settings.INFERENCE_RUNTIME,
            cache_dir=_model_cache_dir(),
            threads=analysis_threads(),
        )
    except Exception as exc:  # noqa: BLE001 - whatever is wrong with the file, no scan may fail of it
        # A broken checkpoint must not silently become random weights, nor fail scans: screen with the
        # asymmetry rule alone, say so in every result, and tell the admins (banner, /healthz).
        reason = str(exc) if isinstance(exc, CheckpointError) else f"{exc.__class__.__name__}: {exc}"
        return _without_classifier(version, detector, reason)
    if version.load_error:
        ModelVersion.objects.filter(id=version.id).update(load_error="", load_error_at=None)
    rule = DecisionRule.for_version(version.thresholds, name=f"fused:{version.name}")
    logger.info("loaded classifier %s (%s)", version.name, version.sha256[:12])
    return Pipeline(
        detector=detector,
        classifier=classifier,
        classifier_name=version.name,
        classifier_sha256=version.sha256,
        rule=rule,
        max_pixels=settings.SCAN_MAX_PIXELS,
    )


def _without_classifier(version: ModelVersion, detector: FaceMeshDetector, reason: str) -> Pipeline:
    """The asymmetry rule alone, saying in every result why the active version did not decide, and
    recording it for the admins (banner, /healthz)."""
    logger.error("active model %s is not used: %s", version.name, reason)
    ModelVersion.objects.filter(id=version.id).update(load_error=reason[:500], load_error_at=timezone.now())
    pipeline = Pipeline(detector=detector, rule=ASYMMETRY_ONLY_RULE, max_pixels=settings.SCAN_MAX_PIXELS)
    pipeline.classifier_note = (
        f"The active classifier {version.name} could not be used ({reason}); the asymmetry rule decided alone."
    )
    pipeline.classifier_status = "unavailable"
    return pipeline


def _model_cache_dir():
    folder = settings.VAR_DIR / "model-cache"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def loaded_version_of(pipeline: Pipeline, version: ModelVersion | None) -> ModelVersion | None:
    """The model version that will actually decide (None when the classifier could not load)."""
    return version if pipeline.classifier is not None else None
