"""Synthetic droops: drawn at the face's real landmarks, on the side asked, measurable as a droop by the
serving pipeline; negatives get the same resampling without a difference between the sides."""

from __future__ import annotations

import numpy as np
import pytest

from inference.engine.align import aligned_face, crop_points
from inference.engine.decide import ASYMMETRY_ONLY_RULE
from inference.engine.face import FaceMeshDetector
from inference.engine.measure import measure
from inference.engine.training.synthetic import Droop, draw, droop_batch
from tests.faces import astronaut, astronaut_landmarks

SIZE = 256


@pytest.fixture(scope="module")
def crop():
    points = astronaut_landmarks()
    return aligned_face(astronaut(), points, size=SIZE), crop_points(points, SIZE)


@pytest.fixture(scope="module")
def detector():
    return FaceMeshDetector()


def measured(detector, face):
    search = detector.find(face)
    assert len(search.faces) == 1
    return measure(search.faces[0])


def test_crop_points_are_where_the_aligned_face_shows_the_landmarks(crop, detector):
    face, points = crop
    found = detector.find(face).faces[0]
    eye_distance = np.linalg.norm(points[473] - points[468])
    # The mesh refitted on the crop lands within a few percent of an eye distance of the mapped points.
    assert np.median(np.linalg.norm(found - points, axis=1)) < 0.05 * eye_distance


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("kind", ["central", "peripheral"])
def test_a_drawn_droop_measures_as_a_droop_of_that_side(crop, detector, side, kind):
    face, points = crop
    before = measured(detector, face)
    after = measured(detector, draw(face, points, Droop(side=side, kind=kind, strength=1.0)))
    assert after.asymmetry_index > before.asymmetry_index + 0.4
    assert after.affected_side == side


def test_the_symmetric_change_given_to_negatives_leaves_the_sides_alike(crop, detector):
    face, points = crop
    before = measured(detector, face).asymmetry_index
    changed = draw(face, points, Droop(kind="peripheral"), symmetric_strength=1.0)
    assert not np.array_equal(changed, face)  # resampled like a positive
    after = measured(detector, changed).asymmetry_index
    assert after <= before + 0.1 and after < ASYMMETRY_ONLY_RULE.asymmetry_negative_below  # no new asymmetry


def test_a_peripheral_droop_also_moves_the_eye_and_brow_a_central_one_spares_them(crop):
    face, points = crop
    eye_region = (
        slice(int(points[159, 1]) - 30, int(points[145, 1]) + 12),
        slice(int(points[33, 0]) - 10, int(points[133, 0]) + 10),
    )
    central = draw(face, points, Droop(side="right", kind="central", strength=1.0))
    peripheral = draw(face, points, Droop(side="right", kind="peripheral", strength=1.0))
    changed_central = np.abs(central[eye_region].astype(int) - face[eye_region]).mean()
    changed_peripheral = np.abs(peripheral[eye_region].astype(int) - face[eye_region]).mean()
    assert changed_peripheral > 3 * max(changed_central, 0.1)


def test_training_batches_turn_a_share_of_healthy_faces_into_positives_and_keep_real_labels(crop):
    face, points = crop
    faces = np.stack([face] * 40)
    landmarks = np.stack([points] * 40).astype(np.float32)
    labels = np.array([0] * 30 + [1] * 10)
    out, targets = droop_batch(faces, labels, landmarks, 0.5, np.random.default_rng(0))
    assert (targets[30:] == 1).all()  # real paralysis stays paralysis
    assert 8 <= targets[:30].sum() <= 22  # about half of the healthy faces drooped
    none, kept = droop_batch(faces, labels, landmarks, 0.0, np.random.default_rng(0))
    assert (kept == labels).all()


def test_a_pair_differs_by_the_droop_alone(crop):
    from inference.engine.training.synthetic import paired_batch

    face, points = crop
    faces, labels = paired_batch(face[None], points[None].astype(np.float32), np.random.default_rng(3))
    assert labels.tolist() == [0, 1]
    negative, positive = faces.astype(int)
    changed = np.abs(positive - negative).max(axis=2) > 8
    rows, cols = np.nonzero(changed)
    assert changed.any()
    # Mostly one side: the drooped half changes, and the lips it draws across (the working side pulls
    # the mouth over, so part of the other half's mouth moves too).
    midline = (points[168, 0] + points[152, 0]) / 2
    assert max((cols < midline).mean(), (cols > midline).mean()) > 2 / 3
    assert rows.min() > points[10, 1]  # nothing above the forehead's top changes
