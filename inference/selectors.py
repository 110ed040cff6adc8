"""Reads of the model registry for the web process (the worker's side is inference/runtime.py)."""

from __future__ import annotations

from inference.models import ModelVersion


def classifier_problem() -> str:
    """Why the active classifier is not screening ("" when it is, or when none is active): a worker
    could not load its checkpoint and the asymmetry rule decides alone."""
    version = ModelVersion.objects.filter(is_active=True).exclude(load_error="").values("name", "load_error").first()
    if version is None:
        return ""
    return (f"The active classifier {version['name']} could not be used ({version['load_error']}); "
            "scans are screened by the asymmetry rule alone until a working version is activated.")


def classifier_health() -> str:
    """/healthz's line for the classifier."""
    problem = classifier_problem()
    if problem:
        return f"degraded: {problem}"
    name = ModelVersion.objects.filter(is_active=True).values_list("name", flat=True).first()
    return f"ok ({name})" if name else "ok (none active: the asymmetry rule decides)"
