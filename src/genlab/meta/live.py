"""Draw a few new symbols, label them, and classify another: the demo of talk 002.

    clf = genlab.tasks.meta.few_shot_classifier("runs/maml-omniglot-...")
    clf.fit([drawing_a, drawing_b, ...], [0, 1, ...])    # one or more drawings per class
    clf.predict_proba([new_drawing])                      # (1, ways) probabilities

Drawings are 2-D arrays of any size (uint8 0..255 or floats in [0, 1]), dark ink on a light
background or the other way round; they are resized to 28x28 like genlab's Omniglot. Queries are
normalised with the support set's batch-norm statistics (`bn='support'`), so a single drawing
is classified on its own. Adaptation copies the weights; the trained model is never changed.
Any learner with `classifier(support_x, support_y, bn, steps)` works: MAML, FOMAML and Reptile
adapt by gradient steps, SNAIL reads the drawings as a sequence.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from PIL import Image

from genlab.errors import ConfigError


def prepare(drawings: Sequence[np.ndarray]) -> torch.Tensor:
    """A list of 2-D arrays -> (N, 1, 28, 28) floats in [0, 1] with ink = 1."""
    out = []
    for i, d in enumerate(drawings):
        a = np.asarray(d, dtype=np.float32)
        if a.ndim != 2:
            raise ConfigError(f"drawing {i}: expected a 2-D array, got shape {a.shape}")
        if a.max() > 1.0:
            a = a / 255.0
        if a.mean() > 0.5:  # dark ink on a light page
            a = 1.0 - a
        img = Image.fromarray((a * 255).round().astype(np.uint8)).resize(
            (28, 28), Image.Resampling.LANCZOS
        )
        out.append(torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0))
    return torch.stack(out).unsqueeze(1)


class FewShotClassifier:
    def __init__(self, model, steps: int | None = None):
        self.model = model.eval()
        self.steps = steps
        self._classify: Callable[[torch.Tensor], torch.Tensor] | None = None

    def fit(self, drawings: Sequence[np.ndarray], labels: Sequence[int]) -> FewShotClassifier:
        ways = self.model.cfg.ways
        y = torch.as_tensor(list(labels), dtype=torch.long)
        if len(drawings) != len(y) or len(y) == 0:
            raise ConfigError(f"got {len(drawings)} drawings and {len(y)} labels")
        if y.min() < 0 or y.max() >= ways:
            raise ConfigError(f"labels must be in 0..{ways - 1} (this model is {ways}-way)")
        self._classify = self.model.classifier(prepare(drawings), y, "support", self.steps)
        return self

    @torch.no_grad()
    def predict_proba(self, drawings: Sequence[np.ndarray]) -> torch.Tensor:
        if self._classify is None:
            raise ConfigError("call fit(drawings, labels) before predict_proba")
        return self._classify(prepare(drawings)).softmax(-1)  # (Q, ways)
