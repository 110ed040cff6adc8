"""An active checkpoint that cannot be loaded at serve time: each kind of broken file. No scan fails of
it: the asymmetry rule screens alone and the result says so; admins see it (banner, /healthz)."""

from __future__ import annotations

import io
import pickle
import zipfile

import pytest
import torch
import torchvision
from django.core.files.base import ContentFile

from inference import runtime
from inference.engine.classifier import CLASSES, build_resnet50, file_sha256
from inference.models import ModelVersion
from scans.analysis import scan_analyze
from scans.models import Scan
from tests import factories
from tests.faces import drooped_astronaut, jpeg_bytes

pytestmark = pytest.mark.django_db

# As train_classifier records a held-out evaluation: what lets the worker use a version at all
# (inference/services.py). These tests are about loading and serving, not about the figures.
EVALUATED = {"classifier": {"roc_auc": 0.9}}


@pytest.fixture(autouse=True)
def _plain_pytorch(settings):
    settings.INFERENCE_RUNTIME = "torch"


def good_checkpoint() -> bytes:
    buffer = io.BytesIO()
    torch.save({"state_dict": build_resnet50().state_dict(), "classes": list(CLASSES), "input_size": 224}, buffer)
    return buffer.getvalue()


class Exploit:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned",))


def saved(payload) -> bytes:
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


BROKEN = {
    "random-bytes": lambda: bytes(range(256)) * 64,
    "truncated": lambda: good_checkpoint()[: 1 << 20],
    "unpickling-refused": lambda: saved({"state_dict": {}, "trap": Exploit()}),
    "plain-pickle": lambda: pickle.dumps({"state_dict": {"fc.weight": [1, 2]}}),
    "three-class-head": lambda: saved({"state_dict": torchvision.models.resnet50(num_classes=3).state_dict()}),
    "resnet18": lambda: saved(torchvision.models.resnet18(num_classes=2).state_dict()),
    "empty-zip": lambda: _empty_zip(),
}


def _empty_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w"):
        pass
    return buffer.getvalue()


def register(data: bytes, name: str, *, active: bool = True) -> ModelVersion:
    version = ModelVersion(
        name=name,
        sha256="",
        is_active=active,
        thresholds={"classifier_weight": 0.5, "fused_positive_at": 0.6, "fused_negative_below": 0.4},
        metrics=EVALUATED,
    )
    version.checkpoint.save(f"{name}.pt", ContentFile(data), save=False)
    version.sha256 = (
        file_sha256(version.checkpoint.path) if version.checkpoint.storage.exists(version.checkpoint.name) else ""
    )
    version.save()
    return version


def analysed_scan(people):
    scan = factories.ScanFactory(patient=people.patient, uploaded_by=people.carol)
    scan.image.save("photo.jpg", ContentFile(jpeg_bytes(drooped_astronaut())))
    scan_analyze(scan_id=scan.id)
    scan.refresh_from_db()
    return scan


@pytest.mark.parametrize("kind", [*BROKEN, "missing-file"])
def test_a_broken_active_checkpoint_falls_back_to_the_asymmetry_rule_and_says_so(
    kind, people, client, in_memory_channels
):
    if kind == "missing-file":
        version = register(good_checkpoint(), "vanished")
        version.checkpoint.storage.delete(version.checkpoint.name)
    else:
        version = register(BROKEN[kind](), f"broken-{kind}")
    scan = analysed_scan(people)
    assert scan.status == Scan.Status.DONE, scan.status_reason
    assert scan.result.classifier["status"] == "unavailable"
    assert version.name in scan.result.classifier["detail"] and "asymmetry rule" in scan.result.classifier["detail"]
    assert scan.result.decision["used_classifier"] is False
    assert scan.result.model_version is None  # the version that did not decide is not named as if it had
    version.refresh_from_db()
    assert version.load_error and version.load_error_at
    assert "Traceback" not in version.load_error

    health = client.get("/healthz").json()
    assert health["status"] == "degraded" and health["checks"]["classifier"].startswith("degraded:")
    people.triage.is_superuser = True
    people.triage.save()
    client.force_login(people.triage)
    banner = client.get("/admin/").content.decode()
    assert 'id="classifier-problem"' in banner and version.name in banner


def test_a_version_that_loads_again_clears_the_warning(people, client, in_memory_channels):
    version = register(good_checkpoint(), "restored-later")
    stored = version.checkpoint.storage.open(version.checkpoint.name).read()
    version.checkpoint.storage.delete(version.checkpoint.name)  # a volume not mounted yet, say
    analysed_scan(people)
    version.refresh_from_db()
    assert version.load_error
    # The same file comes back (same hash): the worker loads it on its next scan and clears the warning.
    with version.checkpoint.storage.open(version.checkpoint.name, "wb") as handle:
        handle.write(stored)
    runtime._cached.update(key=object(), pipeline=None, version=None)
    scan = analysed_scan(people)
    assert scan.result.classifier["status"] == "used"
    version.refresh_from_db()
    assert version.load_error == "" and version.load_error_at is None
    assert client.get("/healthz").json()["checks"]["classifier"] == "ok (restored-later)"


def test_a_broken_evaluated_version_is_replaced_by_a_new_version_not_by_swapping_its_file(people, in_memory_channels):
    from inference.models import EvaluatedVersionLocked
    from inference.services import model_activate

    version = register(BROKEN["truncated"](), "broken-then-replaced")
    analysed_scan(people)
    # Its figures were measured with the old file: swapping the file under them is refused.
    version.refresh_from_db()
    version.checkpoint.save("fixed.pt", ContentFile(good_checkpoint()), save=False)
    version.sha256 = file_sha256(version.checkpoint.path)
    with pytest.raises(EvaluatedVersionLocked):
        version.save()
    assert ModelVersion.objects.get(id=version.id).sha256 != version.sha256
    model_activate(version=register(good_checkpoint(), "fixed-as-new", active=False))
    scan = analysed_scan(people)
    assert scan.result.classifier["status"] == "used" and scan.result.classifier["model"] == "fixed-as-new"


@pytest.fixture(autouse=True)
def _fresh_runtime_cache():
    runtime._cached.update(key=object(), pipeline=None, version=None)
    yield
    runtime._cached.update(key=object(), pipeline=None, version=None)
