"""A small MNIST classifier: genlab's yardstick for sample quality (its penultimate features
stand in for Inception's, which cannot be downloaded here)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from genlab.train.config import doc


@dataclass(frozen=True)
class ClassifierConfig:
    channels: int = doc("channels of the first conv block (doubled in the next two)", default=32)
    features: int = doc("width of the penultimate layer (the feature vector for FID)", default=128)
    dropout: float = doc("dropout before the last layer", default=0.3)
    n_classes: int = doc("number of classes", default=10)
    augment_shift: int = doc("train on images shifted by up to this many pixels", default=2)

    @property
    def representation(self) -> str:
        return "float"


class Classifier(nn.Module):
    """(B, 1, 28, 28) in [0, 1] -> logits (B, n_classes); `features` gives (B, features)."""

    def __init__(self, cfg: ClassifierConfig):
        super().__init__()
        self.cfg = cfg
        c = cfg.channels
        self.body = nn.Sequential(
            nn.Conv2d(1, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU(),
            nn.MaxPool2d(2),  # (B, c, 14, 14)
            nn.Conv2d(c, 2 * c, 3, padding=1), nn.BatchNorm2d(2 * c), nn.ReLU(),
            nn.MaxPool2d(2),  # (B, 2c, 7, 7)
            nn.Conv2d(2 * c, 4 * c, 3, padding=1), nn.BatchNorm2d(4 * c), nn.ReLU(),
            nn.MaxPool2d(2), nn.Flatten(),  # (B, 4c * 3 * 3): keeps where the strokes are
            nn.Linear(4 * c * 9, cfg.features), nn.ReLU(),
        )  # fmt: skip
        self.head = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(cfg.features, cfg.n_classes))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        logits = self(batch["x"])
        return {
            "loss": F.cross_entropy(logits, batch["y"]),
            "accuracy": (logits.argmax(1) == batch["y"]).float().mean(),
        }
