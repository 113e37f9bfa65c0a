"""Run directories on disk: where a run's config, checkpoint, metrics and pictures live.

<run>/config.json     resolved config: model, data, model options, training options
<run>/checkpoint.pt   the one checkpoint (see genlab.train.state)
<run>/metrics.jsonl   training metrics; <run>/tb/ the same for TensorBoard
<run>/eval.json       the last `genlab eval`
<run>/pictures/       PNGs written by train, sample and latent
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from genlab.errors import RunError
from genlab.train.logger import read_metrics
from genlab.train.state import CHECKPOINT

DEFAULT_ROOT = Path("runs")
# What `genlab runs` shows from eval.json, in this order.
KEY_METRICS = (
    "nll_nats", "neg_elbo_nats", "rec_nats", "fid", "precision", "recall", "accuracy", "ci95",
    "reward", "trial2_accuracy", "mean_return", "std_return",
)  # fmt: skip


def new_run_dir(model: str, data: str, root: Path = DEFAULT_ROOT) -> Path:
    return root / f"{model}-{data}-{time.strftime('%Y%m%d-%H%M%S')}"


def write_config(run_dir: Path, config: dict) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def read_config(run_dir: Path) -> dict:
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise RunError(f"no run at '{run_dir}' (missing {path})")
    return json.loads(path.read_text())


def checkpoint_weights(ckpt: dict, use_ema: bool = True) -> dict[str, torch.Tensor]:
    """A checkpoint's model state dict: its EMA weights if it kept them and `use_ema`."""
    return ckpt["ema"] if use_ema and ckpt.get("ema") is not None else ckpt["model"]


def summarize(run_dir: Path) -> dict:
    """Key facts about a run for `genlab runs`."""
    config = read_config(run_dir)
    rows = read_metrics(run_dir)
    out = {"run": str(run_dir), "model": config["model"], "data": config["data"]}
    out["step"] = rows[-1]["step"] if rows else 0
    if rows:
        out["loss"] = rows[-1].get("loss")
    evaluation = Path(run_dir) / "eval.json"
    if evaluation.is_file():
        out.update(
            {k: v for k, v in json.loads(evaluation.read_text()).items() if k in KEY_METRICS}
        )
    out["checkpoint"] = (Path(run_dir) / CHECKPOINT).is_file()
    return out


def find_runs(root: Path) -> list[Path]:
    return sorted(p.parent for p in Path(root).glob("**/config.json"))
