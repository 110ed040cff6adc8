"""Training and evaluating the ResNet-50 classifier on aligned face crops (pure library, no Django).

By concern:
- data.py: finding the photos, aligning faces (cached), near-duplicate-aware splits and folds, packs
  (the aligned faces as one file, to train on a machine with PyTorch only);
- fitting.py: the one set of training defaults (RECIPE), augmentation, the loop, prediction and the
  checkpoint;
- reporting.py: the held-out evaluation (thresholds of the fused rule, metrics, robustness to photo
  changes), plots and the JSON record;
- __main__.py: `python -m inference.engine.training PACK OUT`, fitting a pack on another machine.

`manage.py train_classifier` drives them on this machine and registers the result
(inference/services.py). The grouping of near-duplicates is inference/engine/duplicates.py, the
metrics inference/engine/evaluation.py (shared with bench/).
"""
