"""The ResNet-50 shipped in the repository: its file, the sha256 it must have, and its record.

`manage.py install_shipped_model` (run by `make run` and by compose's migrate service) registers it
after checking the hash and activates it where no version is active, so a fresh clone runs ResNet-50
on every scan. The record beside the file holds the decision rule's thresholds and the held-out
figures that let it be activated (inference/selectors.activation_problems); how they were measured
is docs/model-card.md. A better version is a new file and a new entry here: every version stays in
the repository's history.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class ShippedModel:
    name: str
    file: str  # relative to the repository's root
    sha256: str

    @property
    def path(self) -> Path:
        return ROOT / self.file

    @property
    def record_path(self) -> Path:
        return self.path.with_suffix(".json")


SHIPPED_MODEL = ShippedModel(
    name="resnet50-droops128-v3",
    file="models/resnet50-droops128-v3.pt",
    sha256="abffeb31abaab80f25aabbf46b61cdd8a1299eec46a4716e60c05ed73da3e0df",
)
