"""A small wide residual network (Zagoruyko & Komodakis 2016) for 28x28 grey images: the model
population-based augmentation searches a schedule for. Pre-activation blocks (BN, ReLU, conv),
three groups of (depth - 4) / 6 blocks at 16k, 32k and 64k channels, strides 1, 2, 2, then
global average pooling and a linear layer."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from genlab.errors import ConfigError
from genlab.train.config import doc

AUGMENTS = ("none", "standard", "random", "pba")
BASES = ("none", "standard")  # what runs after a random or PBA policy
EVAL_BN = ("clean", "running")  # batch norm's statistics when scoring


@dataclass(frozen=True)
class WRNConfig:
    depth: int = doc("layers, 6n + 4 (10: one block per group)", default=10)
    widen: int = doc("width multiplier k: 16k, 32k, 64k channels", default=2)
    dropout: float = doc("dropout inside each block", default=0.0)
    train_images: int = doc("training images kept: a seeded subset of the training split "
                            "(0 = all)", default=1000)  # fmt: skip
    val_images: int = doc("validation images, from the rest of the training split",
                          default=5000)  # fmt: skip
    augment: str = doc(f"training augmentation: {', '.join(AUGMENTS)} (none; shift 2 px and "
                       "rotate up to 10 degrees; one random PBA policy; the PBA schedule in "
                       "--pba-schedule)", default="none")  # fmt: skip
    pba_schedule: str = doc("--augment pba: a PBA schedule JSON file",
                            default="")  # fmt: skip
    base_augment: str = doc("--augment random or pba: 'standard' also shifts and rotates each "
                            "image after the policy, as AutoAugment and PBA apply their "
                            "policies on top of the baseline augmentation; 'none': the policy "
                            "alone", default="none")  # fmt: skip
    n_classes: int = doc("number of classes (964 with --data omniglot)", default=10)
    eval_bn: str = doc("batch norm's statistics when scoring: 'clean', re-estimated on the "
                       "un-augmented training images (a policy that shifts brightness, such "
                       "as equalize or invert, otherwise leaves statistics that plain images "
                       "do not match); 'running', training's running averages",
                       default="clean")  # fmt: skip

    def __post_init__(self) -> None:
        if self.depth < 10 or (self.depth - 4) % 6:
            raise ConfigError(
                f"depth must be 6n + 4 with n >= 1 (10, 16, 22, ...), got {self.depth}"
            )
        if self.augment not in AUGMENTS:
            raise ConfigError(f"augment must be one of {', '.join(AUGMENTS)}, got '{self.augment}'")
        if (self.augment == "pba") != bool(self.pba_schedule):
            raise ConfigError("--augment pba and --pba-schedule FILE go together")
        if self.base_augment not in BASES:
            raise ConfigError(f"base_augment must be one of {', '.join(BASES)}, "
                              f"got '{self.base_augment}'")  # fmt: skip
        if self.eval_bn not in EVAL_BN:
            raise ConfigError(f"eval_bn must be one of {', '.join(EVAL_BN)}, got '{self.eval_bn}'")
        if self.base_augment != "none" and self.augment not in ("random", "pba"):
            raise ConfigError(f"--base-augment {self.base_augment} goes under a policy: "
                              f"--augment random or pba (got {self.augment})")  # fmt: skip

    @property
    def representation(self) -> str:
        return "float"


class Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, dropout: float):
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(cin), nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2, self.conv2 = nn.BatchNorm2d(cout), nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.dropout = dropout
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Conv2d(cin, cout, 1, stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = F.relu(self.bn1(x))
        h = self.conv1(a)
        h = F.dropout(F.relu(self.bn2(h)), self.dropout, self.training)
        return self.conv2(h) + (x if self.shortcut is None else self.shortcut(a))


class WideResNet(nn.Module):
    """(B, 1, 28, 28) in [0, 1] -> logits (B, n_classes)."""

    def __init__(self, cfg: WRNConfig):
        super().__init__()
        self.cfg = cfg
        n, k = (cfg.depth - 4) // 6, cfg.widen
        widths = (16, 16 * k, 32 * k, 64 * k)
        layers: list[nn.Module] = [nn.Conv2d(1, widths[0], 3, 1, 1, bias=False)]
        for group, stride in zip(range(3), (1, 2, 2), strict=True):
            for i in range(n):
                cin = widths[group] if i == 0 else widths[group + 1]
                layers.append(Block(cin, widths[group + 1], stride if i == 0 else 1, cfg.dropout))
        layers += [nn.BatchNorm2d(widths[3]), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.body = nn.Sequential(*layers)  # (B, 64k)
        self.head = nn.Linear(widths[3], cfg.n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        logits = self(batch["x"])
        return {"loss": F.cross_entropy(logits, batch["y"]),
                "accuracy": (logits.argmax(1) == batch["y"]).float().mean()}  # fmt: skip
