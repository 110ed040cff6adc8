"""Stroke-faces five-fold cross-validation of the shipped classifier's whole recipe, one round at a time.

    PYTHONPATH=. .venv/bin/python bench/five_fold.py var/stroke128.npz --shipped          # round 0
    PYTHONPATH=. .venv/bin/python bench/five_fold.py var/stroke128.npz --round 1 --clinical var/palda128.npz
    PYTHONPATH=. .venv/bin/python bench/five_fold.py var/stroke128.npz --table            # what is done so far

Round k's model never sees fold k: it is trained through the shipped version's lineage (the stages
of RECIPES, each fine-tuning the last, the first from scratch) on the pack's folds but k and k + 1
(validation, used by no stage: each keeps its last epoch), then scores every photo of the pack. Round
0's lineage is the shipped model itself (its fold 0 split; --shipped scores it). On this project's 2-core
CPU one round trains on about 103,000 faces: in fp32 (3.2 s a step of 32) that is more than a session;
with --precision bf16, two side by side with one thread each, rounds 1 and 2 took 2.1 hours each and
rounds 3 and 4 1.2 hours (a faster machine of the same kind), so rounds are run two per session, started
first. Each writes its P(paralysis) for every photo to docs/model-card/five-fold/round<k>.npz (a few KB,
tracked), and --table prints bench/eval_classifier.py's five-round table over those written so far (a
round not yet run is left out and the table says so). All five rounds of resnet50-droops128-v3 are
written: docs/model-card.md gives the table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.eval_classifier import evaluate, print_result  # noqa: E402

RESULTS = ROOT / "docs" / "model-card" / "five-fold"

# The shipped version's lineage: v1 from scratch on the pairs, v2 with a wider brightness range, then
# the clinical photos (palda-dev, all of it, as the shipped run) and, from v4, the relighting term.
# (docs/model-card.md gives each stage's reasons and figures.)
CLINICAL = ["--clinical", "{clinical}", "--clinical-fold", "-1", "--clinical-folds", "2"]
STAGES = {
    "v1": ["--epochs", "18"],
    "v2": ["--epochs", "14", "--lr", "6e-4", "--brightness", "0.45"],
    "v3": ["--epochs", "4", "--lr", "3e-4", "--brightness", "0.45", *CLINICAL],
    "v4": ["--epochs", "4", "--lr", "3e-4", "--brightness", "0.45", *CLINICAL, "--consistency", "0.25", "--relit", "8"],
}
RECIPES = {"resnet50-droops128-v3": ["v1", "v2", "v3"], "resnet50-droops128-v4": ["v1", "v2", "v4"]}


def shipped_name() -> str:
    from inference.shipped import SHIPPED_MODEL

    return SHIPPED_MODEL.name


def save_round(fold: int, probabilities: np.ndarray, prepared, record: dict) -> Path:
    from inference.engine.training.data import split_digest

    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"round{fold}.npz"
    np.savez_compressed(
        out,
        probabilities=probabilities.astype(np.float32),
        split_digest=np.array(split_digest(prepared)),
        record=np.array(json.dumps(record)),
    )
    return out


def score_shipped(prepared) -> np.ndarray:
    from inference.engine.classifier import read_checkpoint
    from inference.engine.training.fitting import predict
    from inference.shipped import SHIPPED_MODEL

    payload, model = read_checkpoint(SHIPPED_MODEL.path)
    return predict(model, prepared.faces, batch_size=64, normalisation=payload.get("normalisation", "imagenet"))


def train_round(
    fold: int, pack: Path, clinical: Path, work: Path, recipe: str, threads: int, precision: str
) -> tuple[np.ndarray, dict]:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    started, previous, seconds = time.monotonic(), None, {}
    for stage in RECIPES[recipe]:
        out = work / f"round{fold}-{stage}"
        args = [a.format(clinical=clinical) for a in STAGES[stage]]
        command = [sys.executable, "-m", "inference.engine.training", str(pack), str(out), "--folds", str(fold), *args]
        # Every stage keeps its last epoch, so the validation split is scored once, at the end.
        command += ["--precision", precision, "--validate", "last"]
        if previous is not None:
            command += ["--start-from", str(previous)]
        if not (out / f"fold{fold}.pt").exists():  # a stage finished earlier in this session is kept
            stage_started = time.monotonic()
            print(" ".join(command), flush=True)
            subprocess.run(command, check=True, env=env, cwd=ROOT)
            seconds[stage] = round(time.monotonic() - stage_started)
        previous = out / f"fold{fold}.pt"
    with np.load(previous.parent / "cv.npz", allow_pickle=False) as cv:
        probabilities = cv["probabilities"][fold]
    record = {
        "recipe": recipe,
        "stages": {stage: STAGES[stage] for stage in RECIPES[recipe]},
        "seconds": seconds,
        "wall_seconds": round(time.monotonic() - started),
        "threads": threads,
        "precision": precision,
    }
    return probabilities, record


def table(prepared, recipe: str) -> dict:
    from inference.engine.training.data import split_digest

    folds, digest = prepared.folds, split_digest(prepared)
    count = int(folds.max()) + 1
    probabilities = np.full((count, len(prepared.labels)), np.nan, dtype=np.float32)
    done = []
    for fold in range(count):
        path = RESULTS / f"round{fold}.npz"
        if not path.exists():
            continue
        with np.load(path, allow_pickle=False) as data:
            record = json.loads(str(data["record"]))
            if str(data["split_digest"]) != digest:
                raise SystemExit(f"{path} was not written for this pack's split")
            if record["recipe"] != recipe:
                print(f"round {fold}: recipe {record['recipe']}, not {recipe}: left out")
                continue
            probabilities[fold] = data["probabilities"]
            done.append(fold)
    missing = sorted(set(range(count)) - set(done))
    if not done:
        raise SystemExit(f"no round of {recipe} has been run yet")
    result = evaluate(prepared.labels, prepared.asymmetry, prepared.groups, folds, probabilities)
    print_result(f"{recipe}, rounds {done}" + (f" (not yet run: {missing})" if missing else ""), result)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pack", type=Path, help="the stroke-faces pack (train_classifier --photo-fit-only --save-pack)")
    parser.add_argument("--round", type=int, help="train and score this round (its fold held out)")
    parser.add_argument("--shipped", action="store_true", help="score the shipped model as round 0")
    parser.add_argument("--table", action="store_true", help="print the table of the rounds written so far")
    parser.add_argument("--clinical", type=Path, help="palda-dev's pack, for the recipe's clinical stage")
    parser.add_argument("--recipe", choices=sorted(RECIPES), help="default: the shipped version's")
    parser.add_argument("--work", type=Path, default=ROOT / "var" / "five-fold")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--precision",
        choices=("auto", "bf16", "fp32"),
        default="auto",
        help="training's arithmetic (auto: bf16 on a GPU, fp32 on a CPU); bf16 fits a round into a CPU session",
    )
    args = parser.parse_args(argv)
    from inference.engine.training.data import load_pack

    recipe = args.recipe or shipped_name()
    if recipe not in RECIPES:
        parser.error(f"no recipe recorded for {recipe}")
    prepared = load_pack(args.pack)  # once: every step below reads the same pack
    if args.shipped:
        if recipe != shipped_name():
            parser.error("--shipped scores the shipped model: its recipe is the shipped one")
        out = save_round(0, score_shipped(prepared), prepared, {"recipe": recipe, "model": "the shipped file"})
        print(f"round 0 (the shipped {recipe}): {out}")
    if args.round is not None:
        if args.round == 0:
            parser.error("round 0 is the shipped model: use --shipped")
        if args.clinical is None:
            parser.error("--clinical is needed: the recipe learns from palda-dev's photos")
        probabilities, record = train_round(
            args.round, args.pack, args.clinical, args.work, recipe, args.threads, args.precision
        )
        out = save_round(args.round, probabilities, prepared, record)
        print(f"round {args.round}: {out} ({record['wall_seconds']} s)")
    if args.table:
        table(prepared, recipe)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
