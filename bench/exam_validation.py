"""Issue 41, item 6: the guided exam's measurement chain on drawn exams (tests/faces.draw_pose).

Prints, for drawn central and peripheral exams on both sides: the percentages drawn and recovered, the
pattern and side named; the spread of a pose's percentage over re-takes measured from one frame and
from three (burst jitter); and the CPU of an exam against one photo's analysis.

    .venv/bin/python -m bench.exam_validation [--takes 8]
"""

from __future__ import annotations

import argparse
import functools
import time

import numpy as np
from PIL import Image

from inference.engine.pipeline import Pipeline
from tests.faces import astronaut, astronaut_landmarks, draw_pose, droop

STRONG_PX = 10.0


def drawn_exam(side: str, kind: str, weak_share: float, *, frames: int = 1, seed: int = 0):
    """(rest, poses) of a palsy on ``side``: the weak side moves ``weak_share`` of the strong side's
    amount in the smile (and the brow raise, for a peripheral one); lids close 95% / 95% x share."""
    rgb, points = astronaut(), astronaut_landmarks()
    rest = droop(rgb, points, side=side, pixels=4)
    points = _fitted(side)  # the drooped face's own landmarks: the poses are drawn where its features are
    weak, strong = STRONG_PX * weak_share, STRONG_PX
    pair = (strong, weak) if side == "left" else (weak, strong)
    brows = (strong, strong) if kind == "central" else pair
    lids = (0.95, 0.95) if kind == "central" else tuple(0.95 * v / strong for v in pair)
    poses = {
        "brows_raised": {"brow_lift": brows},
        "smile": {"corner_pull": pair},
        "eyes_closed": {"lid_close": lids},
    }
    seeds = [None] if frames == 1 and seed is None else [seed * 10 + i for i in range(frames)]
    return rest, {
        name: [draw_pose(rest, points, jitter_seed=s, **drawing) for s in seeds] for name, drawing in poses.items()
    }


@functools.lru_cache(maxsize=2)
def _fitted(side: str) -> np.ndarray:
    from inference.engine.face import FaceMeshDetector

    return FaceMeshDetector().find(droop(astronaut(), astronaut_landmarks(), side=side, pixels=4)).faces[0]


def run(pipeline: Pipeline, rest, poses):
    return pipeline.analyze_exam(
        Image.fromarray(rest), {name: [Image.fromarray(f) for f in frames] for name, frames in poses.items()}
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--takes", type=int, default=8)
    args = parser.parse_args()
    pipeline = Pipeline()
    print("drawn exams (weak side at 30% and 50% of the strong side's movement):")
    for side in ("left", "right"):
        for kind in ("central", "peripheral"):
            for share in (0.3, 0.5):
                exam = run(pipeline, *drawn_exam(side, kind, share, seed=None)).exam
                for pose in exam.poses.values():
                    if pose.status == "refused":
                        print("   ", pose.pose, pose.reason, pose.identity)
                got = {name: pose.percent for name, pose in exam.poses.items()}
                print(
                    f"  {kind:10s} {side:5s} drawn {100 * share:.0f}%: pattern {exam.pattern} {exam.affected_side}; "
                    + " ".join(
                        f"{name} {value:.0f}%" if value is not None else f"{name} refused"
                        for name, value in got.items()
                    )
                    + f"; HB {exam.house_brackmann['grade']}"
                )
    for frames in (1, 3):
        values = []
        for take in range(args.takes):
            exam = run(pipeline, *drawn_exam("left", "peripheral", 0.5, frames=frames, seed=100 + take)).exam
            values.append([exam.poses[p].percent for p in ("brows_raised", "smile")])
        values = np.array(values)
        print(
            f"  {frames} frame(s): SD over {args.takes} takes, brow {values[:, 0].std(ddof=1):.2f} "
            f"smile {values[:, 1].std(ddof=1):.2f} percentage points"
        )
    rest, poses = drawn_exam("left", "peripheral", 0.5, frames=1, seed=7)
    pipeline.analyze(Image.fromarray(rest))
    clock = time.process_time()
    for _ in range(3):
        pipeline.analyze(Image.fromarray(rest))
    photo = (time.process_time() - clock) / 3
    for frames in (1, 3):
        rest, poses = drawn_exam("left", "peripheral", 0.5, frames=frames, seed=7)
        clock = time.process_time()
        for _ in range(3):
            run(pipeline, rest, poses)
        exam = (time.process_time() - clock) / 3
        print(
            f"  CPU: one photo {1000 * photo:.0f} ms; exam of rest + 3 poses x {frames} frame(s) "
            f"{1000 * exam:.0f} ms = {exam / photo:.2f} photos"
        )


if __name__ == "__main__":
    main()
