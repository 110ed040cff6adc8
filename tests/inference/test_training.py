"""A tiny training run end to end, on faces the tests make (warped copies of a real portrait)."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from django.core.management import call_command
from PIL import Image

from inference.engine import duplicates, training
from inference.engine.classifier import ResNetClassifier
from inference.engine.face import FaceMeshDetector
from inference.models import ModelVersion
from tests.faces import astronaut, astronaut_landmarks, drooped_astronaut


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    """The paper's layout. Every photo is a copy of one portrait, so the command must report that
    near-duplicates cross its splits: the healthy copies, the left-drooped and the right-drooped ones
    are three groups (a sideways mouth shift changes the aligned face), each in all three splits."""
    root = tmp_path_factory.mktemp("faces")
    index = 0
    for split, count in (("train", 6), ("val", 3), ("test", 3)):
        for name in ("paralysis", "no_paralysis"):
            (root / split / name).mkdir(parents=True)
        for _ in range(count):
            gain = 0.85 + 0.05 * (index % 4)
            drooped = drooped_astronaut(side="left" if index % 2 else "right", pixels=8 + index % 7)
            Image.fromarray(np.clip(drooped * gain, 0, 255).astype(np.uint8)).save(
                root / split / "paralysis" / f"p{index}.jpg")
            Image.fromarray(np.clip(astronaut() * gain, 0, 255).astype(np.uint8)).save(
                root / split / "no_paralysis" / f"n{index}.jpg")
            index += 1
    (root / "train" / "no_paralysis" / "broken.jpg").write_bytes(b"not a photo")
    return root


def test_discover_reads_the_papers_layout_and_flat_class_folders(tmp_path, tiny_dataset):
    paper = training.discover(tiny_dataset)
    assert sorted({s.split for s in paper}) == ["test", "train", "val"]
    assert sum(s.label == 1 for s in paper) == 12 and sum(s.label == 0 for s in paper) == 13
    for name in ("paralysis", "no_paralysis"):
        (tmp_path / name).mkdir()
        Image.fromarray(astronaut()).save(tmp_path / name / "a.jpg")
    flat = training.discover(tmp_path)
    assert len(flat) == 2 and all(s.split is None for s in flat)
    (tmp_path / "paralysis" / "a.jpg").unlink()
    with pytest.raises(FileNotFoundError, match="no photos of class paralysis"):
        training.discover(tmp_path)


def test_near_duplicates_group_together_and_splits_never_share_a_group():
    """Augmented copies (mirrored, brightened, rotated and shrunk) of one portrait form one group, as
    prepare() would see them (landmarks found on each copy); noise under the same landmarks does not."""
    face = astronaut()
    height, width = face.shape[:2]
    copies = [face, np.ascontiguousarray(face[:, ::-1]), np.clip(face * 1.1, 0, 255).astype(np.uint8),
              cv2.warpAffine(face, cv2.getRotationMatrix2D((width / 2, height / 2), 15, 0.9), (width, height))]
    detector = FaceMeshDetector()
    signatures = [duplicates.signature(copy, detector.find(copy).faces[0]) for copy in copies]
    noise = np.random.default_rng(0).integers(0, 255, size=face.shape, dtype=np.uint8)
    signatures.append(duplicates.signature(noise, astronaut_landmarks()))
    groups = duplicates.duplicate_groups(signatures)
    assert groups[0] == groups[1] == groups[2] == groups[3] != groups[4]

    prepared = training.PreparedSet(
        faces=np.zeros((40, 8, 8, 3), np.uint8), labels=np.array([0, 1] * 20), asymmetry=np.zeros(40, np.float32),
        paths=[str(i) for i in range(40)], splits=[""] * 40, groups=np.array([i // 4 for i in range(40)]))
    training.group_split(prepared, seed=1)
    assert set(prepared.splits) == {"train", "val", "test"}
    assert training.leakage(prepared) == 0
    for group in set(prepared.groups.tolist()):
        assert len({s for s, g in zip(prepared.splits, prepared.groups) if g == group}) == 1


def test_prepare_caches_faces_and_duplicate_signatures(tmp_path):
    for name, image in (("paralysis", np.clip(astronaut() * 0.9, 0, 255)), ("no_paralysis", astronaut()[:, ::-1])):
        (tmp_path / name).mkdir()
        Image.fromarray(image.astype(np.uint8)).save(tmp_path / name / "a.png")
    samples = training.discover(tmp_path)
    first = training.prepare(samples, size=32, cache_dir=tmp_path / "cache")

    class NoDetector:
        def find(self, rgb):
            raise AssertionError("the cache should have answered")

    again = training.prepare(samples, size=32, detector=NoDetector(), cache_dir=tmp_path / "cache")
    assert first.groups.tolist() == again.groups.tolist() == [0, 0]  # a darker copy and a mirror of one photo
    np.testing.assert_array_equal(first.faces, again.faces)
    np.testing.assert_array_equal(first.asymmetry, again.asymmetry)


@pytest.mark.django_db
def test_a_tiny_training_run_registers_a_version_the_worker_can_load(tiny_dataset, tmp_path):
    out = io.StringIO()
    call_command("train_classifier", str(tiny_dataset), "--epochs", "1", "--image-size", "64", "--batch-size", "4",
                 "--output-dir", str(tmp_path / "run"), "--name", "tiny", "--activate", stdout=out)
    log = out.getvalue()
    assert "training from scratch" in log  # no ImageNet file here, and it says so
    assert "skipped {'unreadable': 1}" in log
    assert "groups crossing splits 3\n" in log and "overstate" in log
    version = ModelVersion.objects.get(name="tiny")
    assert version.is_active and version.input_size == 64
    for key in ("classifier", "asymmetry_index", "fused"):
        report = version.metrics[key]
        assert {"accuracy", "roc_auc", "sensitivity_at_90_specificity", "paralysis", "no_paralysis",
                "confusion_matrix"} <= set(report)
    assert {"classifier_weight", "fused_positive_at", "fused_negative_below"} <= set(version.thresholds)
    assert (tmp_path / "run" / "roc.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "run" / "confusion.png").exists()
    classifier = ResNetClassifier(version.checkpoint.path, expected_sha256=version.sha256)
    assert classifier.input_size == 64
