"""The ResNet-50 shipped under models/: a fresh clone registers it after its sha256 check, activates it,
and runs it (probability and Grad-CAM) on every analysed photo; an evaluated version cannot change
under its metrics."""

from __future__ import annotations

import io
import json
import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch
from django.core.management import CommandError, call_command

from inference.engine.classifier import file_sha256
from inference.models import EvaluatedVersionLocked, ModelVersion
from inference.selectors import activation_problems
from inference.shipped import SHIPPED_MODEL
from tests.faces import drooped_astronaut, jpeg_bytes

pytestmark = pytest.mark.django_db


def test_the_shipped_file_is_the_recorded_one_fp16_and_small_enough():
    path = SHIPPED_MODEL.path
    assert path.parent.name == "models" and path.stat().st_size <= 50 * 1024 * 1024
    assert file_sha256(path) == SHIPPED_MODEL.sha256
    payload = torch.load(path, map_location="cpu", weights_only=True)
    floats = [t for t in payload["state_dict"].values() if t.is_floating_point()]
    assert floats and all(t.dtype == torch.float16 for t in floats)
    assert payload["mirror_average"] is True and payload["input_size"] == 128
    record = json.loads(SHIPPED_MODEL.record_path.read_text())
    assert record["sha256"] == SHIPPED_MODEL.sha256
    # Every file under models/ but the shipped one is its record; nothing else large is tracked there.
    assert sorted(p.name for p in path.parent.iterdir()) == sorted([path.name, SHIPPED_MODEL.record_path.name])


def test_install_registers_and_activates_it_once_and_never_replaces_an_admins_choice():
    out = io.StringIO()
    call_command("install_shipped_model", stdout=out)
    version = ModelVersion.objects.get(is_active=True)
    assert version.name == SHIPPED_MODEL.name and version.sha256 == SHIPPED_MODEL.sha256
    assert "registered and activated" in out.getvalue()
    assert activation_problems(version) == []
    assert version.metrics["evaluation"]["classifier"]["roc_auc"] >= 0.8

    call_command("install_shipped_model", stdout=(again := io.StringIO()))
    assert ModelVersion.objects.count() == 1 and "already active" in again.getvalue()

    other = ModelVersion.objects.create(name="admins-choice", sha256="0" * 64, is_active=False)
    ModelVersion.objects.update(is_active=False)
    ModelVersion.objects.filter(id=other.id).update(is_active=True)
    call_command("install_shipped_model", stdout=(third := io.StringIO()))
    assert ModelVersion.objects.get(is_active=True).name == "admins-choice"
    assert "admins-choice stays active" in third.getvalue()


def test_a_tampered_shipped_file_is_refused_and_registers_nothing(tmp_path, monkeypatch):
    copy = tmp_path / "models" / SHIPPED_MODEL.path.name
    copy.parent.mkdir()
    shutil.copy(SHIPPED_MODEL.record_path, copy.with_suffix(".json"))
    data = bytearray(SHIPPED_MODEL.path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    copy.write_bytes(bytes(data))
    monkeypatch.setattr("inference.shipped.ROOT", tmp_path)
    with pytest.raises(CommandError, match="not the recorded"):
        call_command("install_shipped_model")
    assert not ModelVersion.objects.exists()


def test_analyze_image_runs_the_shipped_resnet50_with_grad_cam(tmp_path, settings):
    settings.INFERENCE_RUNTIME = "torch"
    call_command("install_shipped_model", stdout=io.StringIO())
    photo, mirrored = tmp_path / "face.jpg", tmp_path / "mirrored.jpg"
    face = drooped_astronaut()
    photo.write_bytes(jpeg_bytes(face))
    mirrored.write_bytes(jpeg_bytes(np.ascontiguousarray(face[:, ::-1])))
    out = io.StringIO()
    call_command("analyze_image", str(photo), str(mirrored), "--json", "--images", str(tmp_path / "img"), stdout=out)
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    for record in (first, second):
        classifier = record["classifier"]
        assert classifier["status"] == "used" and classifier["model"] == SHIPPED_MODEL.name
        assert classifier["sha256"] == SHIPPED_MODEL.sha256
        assert 0.0 <= classifier["probability"] <= 1.0 and classifier["heatmap"] == "grad-cam"
        assert record["model_version"].startswith(SHIPPED_MODEL.name)
        assert (tmp_path / "img" / f"{record['path'].rsplit('/', 1)[1][:-4]}-heatmap.jpg").read_bytes()[
            :2
        ] == b"\xff\xd8"
        assert record["decision"]["used_classifier"] is True
    # Mirror-averaged by construction: the same face mirrored moves P(paralysis) by at most 0.05.
    assert abs(first["classifier"]["probability"] - second["classifier"]["probability"]) <= 0.05
    assert first["affected_side"] != second["affected_side"]


def test_an_evaluated_version_keeps_its_file_and_thresholds(admin_client):
    call_command("install_shipped_model", stdout=io.StringIO())
    version = ModelVersion.objects.get(name=SHIPPED_MODEL.name)
    version.thresholds = {**version.thresholds, "fused_positive_at": 0.99}
    with pytest.raises(EvaluatedVersionLocked, match="thresholds cannot change"):
        version.save()
    version.refresh_from_db()
    version.checkpoint.name = "models/another.pt"
    with pytest.raises(EvaluatedVersionLocked, match="checkpoint cannot change"):
        version.save()
    version.refresh_from_db()
    version.notes = "notes may change"
    version.save()

    page = admin_client.get(f"/admin/inference/modelversion/{version.id}/change/").content.decode()
    assert 'name="thresholds"' not in page and 'name="checkpoint"' not in page and 'name="notes"' in page
    unevaluated = ModelVersion.objects.create(name="fresh", sha256="1" * 64)
    page = admin_client.get(f"/admin/inference/modelversion/{unevaluated.id}/change/").content.decode()
    assert 'name="thresholds"' in page and 'name="checkpoint"' in page


def test_a_second_reader_is_shown_and_does_not_decide():
    from inference.engine.decide import ASYMMETRY_ONLY_RULE, DecisionRule, decide, explain
    from inference.engine.pipeline import classifier_role

    rule = DecisionRule.from_thresholds(
        {"classifier_weight": 0.0, "fused_positive_at": 0.5, "fused_negative_below": 0.43}, name="fused:second"
    )
    assert classifier_role(rule)["role"] == "second reader"
    assert "shown, not deciding" in classifier_role(rule)["detail"]
    for index in (0.1, 0.45, 0.8):
        low = decide(asymmetry_index=index, severity="mild", probability=0.0, rule=rule)
        high = decide(asymmetry_index=index, severity="mild", probability=1.0, rule=rule)
        alone = decide(asymmetry_index=index, severity="mild", probability=None, rule=ASYMMETRY_ONLY_RULE)
        assert low.label == high.label == alone.label
    steps = explain(asymmetry_index=0.8, probability=0.9, rule=rule.as_dict())
    assert "second reader, shown, not deciding" in steps[0]
    assert (
        replace(rule, classifier_weight=0.4)
        and classifier_role(replace(rule, classifier_weight=0.4))["role"] == "deciding"
    )
