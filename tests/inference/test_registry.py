"""The model registry decides what the worker uses; a bad checkpoint never turns into random weights."""

from __future__ import annotations

import pytest
import torch
from django.core.files.base import ContentFile
from PIL import Image

from inference import runtime
from inference.engine.classifier import CLASSES, build_resnet50, file_sha256
from inference.models import ModelVersion
from tests.faces import drooped_astronaut

pytestmark = pytest.mark.django_db

# As train_classifier records a held-out evaluation: what lets the worker use a version at all
# (inference/services.py). These tests are about loading and serving, not about the figures.
EVALUATED = {"classifier": {"roc_auc": 0.9}}


@pytest.fixture(autouse=True)
def _plain_pytorch(settings):
    settings.INFERENCE_RUNTIME = "torch"  # the runtime choice is tested in test_classifier.py


@pytest.fixture(scope="module")
def checkpoint_file(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "resnet50-test.pt"
    torch.save(
        {
            "state_dict": build_resnet50().state_dict(),
            "classes": list(CLASSES),
            "input_size": 224,
            "architecture": "resnet50",
        },
        path,
    )
    return path


def register(checkpoint_file, *, name="test-v1", active=True, sha256=None) -> ModelVersion:
    version = ModelVersion(
        name=name,
        sha256=sha256 or file_sha256(checkpoint_file),
        is_active=active,
        thresholds={"classifier_weight": 0.5, "fused_positive_at": 0.6, "fused_negative_below": 0.4},
        metrics=EVALUATED,
    )
    version.checkpoint.save(f"{name}.pt", ContentFile(checkpoint_file.read_bytes()), save=False)
    version.save()
    return version


def test_without_an_active_version_the_classifier_stage_is_reported_absent():
    pipeline, version = runtime.current_pipeline()
    assert version is None and pipeline.classifier is None
    result = pipeline.analyze(Image.fromarray(drooped_astronaut()))
    assert result.classifier["status"] == "absent"
    assert result.heatmap_jpeg is None


def test_activating_a_version_changes_what_the_worker_uses(checkpoint_file):
    version = register(checkpoint_file)
    pipeline, active = runtime.current_pipeline()
    assert active == version and pipeline.classifier is not None
    assert pipeline.rule.name == "fused:test-v1" and pipeline.rule.classifier_weight == 0.5
    result = pipeline.analyze(Image.fromarray(drooped_astronaut()))
    assert result.classifier["status"] == "used" and result.classifier["model"] == "test-v1"
    assert 0.0 <= result.classifier["probability"] <= 1.0
    assert result.decision["used_classifier"] is True
    assert result.heatmap_jpeg[:2] == b"\xff\xd8"
    # Cached per process: the same objects while the registry does not change.
    assert runtime.current_pipeline()[0] is pipeline

    ModelVersion.objects.filter(id=version.id).update(is_active=False)
    assert runtime.current_pipeline()[0].classifier is None


def test_a_checkpoint_whose_hash_does_not_match_is_refused_not_used(checkpoint_file):
    register(checkpoint_file, name="tampered", sha256="0" * 64)
    pipeline, _ = runtime.current_pipeline()
    assert pipeline.classifier is None
    assert "could not be used" in pipeline.classifier_note and "sha256 does not match" in pipeline.classifier_note
    result = pipeline.analyze(Image.fromarray(drooped_astronaut()))
    assert result.classifier["status"] == "unavailable" and "tampered" in result.classifier["detail"]
    assert runtime.loaded_version_of(pipeline, ModelVersion.objects.get()) is None


def test_only_one_version_can_be_active(checkpoint_file):
    from django.db import IntegrityError, transaction

    register(checkpoint_file, name="a")
    with pytest.raises(IntegrityError), transaction.atomic():
        register(checkpoint_file, name="b")


def test_the_admin_shows_each_versions_figures_and_warns_when_activating_one_that_reads_the_photo(
    admin_client, checkpoint_file
):
    steady = register(checkpoint_file, name="steady", active=False)
    steady.metrics = {
        "classifier": {"roc_auc": 0.9512},
        "robustness": {
            "as stored": {"flipped": 0.0},
            "mirrored (control)": {"flipped": 0.02},
            "brighter x1.3": {"flipped": 0.04},
        },
    }
    steady.save()
    shaky = register(checkpoint_file, name="shaky", active=False)
    shaky.metrics = {
        "classifier": {"roc_auc": 0.935},
        "robustness": {
            "as stored": {"flipped": 0.0},
            "brighter x1.3": {"flipped": 0.207},
            "darker x0.7": {"flipped": 0.147},
        },
    }
    shaky.save()
    page = admin_client.get("/admin/inference/modelversion/").content.decode()
    assert "0.951" in page and "4% (brighter x1.3)" in page and "21% (brighter x1.3)" in page

    def activate(version):
        response = admin_client.post(
            "/admin/inference/modelversion/", {"action": "activate", "_selected_action": [version.id]}, follow=True
        )
        return [str(message) for message in response.context["messages"]]

    said = activate(steady)
    assert any("steady is now active" in m for m in said) and not any("Caution" in m for m in said)
    said = activate(shaky)
    assert ModelVersion.objects.get(is_active=True) == shaky  # the admin decides; the warning informs
    assert any("Caution: 21% of held-out labels flip under 'brighter x1.3'" in m for m in said)
