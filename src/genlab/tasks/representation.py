"""Self-supervised representations (CPC on images and on speech, rotation prediction: their
registry entries and pretext evaluation) and the linear probe that `genlab probe` runs on any
model's representation: logistic regression on frozen features from a few labels per class,
beside the raw input (pixels; log-mel statistics for speech), the same network untrained, and
(images) the same network trained on those labels alone.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from genlab.data import augment
from genlab.data.audio import ClipSet, CropBatches, log_mel, mel_filterbank, mulaw_decode
from genlab.data.images import ImageSplits, image_splits
from genlab.data.images import omniglot_characters as characters
from genlab.errors import RunError
from genlab.metrics.probe import probe_accuracy, stratified_draw
from genlab.metrics.stats import mean_ci95
from genlab.models.cpc import CPC, CPCConfig, RotNet, RotNetConfig
from genlab.models.cpc_audio import AudioCPC, AudioCPCConfig
from genlab.tasks import audio
from genlab.tasks.entry import ModelEntry
from genlab.tasks.images import load_images, model_input, train_batches
from genlab.train.loop import adam
from genlab.viz.curves import save_curves

PROBE_SEED = 4242  # the stochastic binarization/dequantization of probed images, drawn once
Features = Callable[[torch.Tensor], torch.Tensor]  # uint8 images (N, C, H, W) -> (N, D)


@dataclass(frozen=True)
class Labelled:
    """What a probe reads: inputs (or indices the features take) and labels, train and test."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor


def evaluate_pretext(model, options, splits: ImageSplits, n: int | None = None, **_) -> dict:
    """The pretext task on test images: the mean of each loss() metric over batches of 250
    (CPC: InfoNCE in nats and how often the true patch scored highest, per offset k;
    rotation prediction: cross-entropy and accuracy)."""
    x = splits.test_x[:n].float() / 255.0
    return {**mean_metrics(model, [{"x": b} for b in x.split(250)]), "n": len(x)}


def mean_metrics(model, batches: list[dict]) -> dict[str, float]:
    """Each of model.loss()'s metrics averaged over `batches` (weighted by their size)."""
    sums: dict[str, float] = {}
    for b in batches:
        for k, v in model.loss(b).items():
            sums[k] = sums.get(k, 0.0) + v.item() * len(b["x"])
    total = sum(len(b["x"]) for b in batches)
    return {k: v / total for k, v in sums.items()}


def embedder(model, options, batch_size: int = 500) -> Features:
    """A model's frozen representation, `model.embed`, of uint8 images in its own input
    representation, in batches, without gradients."""

    @torch.no_grad()
    def features(x: torch.Tensor) -> torch.Tensor:
        inputs, _ = model_input(options, x, PROBE_SEED)
        return torch.cat([model.embed(b).float() for b in inputs.split(batch_size)])

    return features


def pixels(x: torch.Tensor) -> torch.Tensor:
    """The baseline representation: the image itself, (N, C H W) in [0, 1]."""
    return x.flatten(1).float() / 255.0


def label_counts(text: str) -> list[int | None]:
    """'1,5,10,all' -> [1, 5, 10, None] (None: every training label)."""
    counts = [None if t.strip() == "all" else int(t) for t in text.split(",")]
    if any(c is not None and c < 1 for c in counts):
        raise ValueError(f"labels per class must be >= 1 or 'all', got '{text}'")
    return counts


def probe(
    representations: dict[str, Features], splits: ImageSplits, counts: list[int | None],
    draws: int, l2: float, seed: int = 0, n_test: int | None = None,
    supervised: Callable[[torch.Tensor, torch.Tensor], Features] | None = None,
    supervised_up_to: int | None = None, mlp: tuple[str, ...] = (),
) -> dict:  # fmt: skip
    """Linear-probe test accuracy of each representation with `counts` labels per class
    (`splits`: anything with train_x, train_y, test_x, test_y that the features take)
    (`draws` stratified draws each; one when every label is used), and, with `supervised`
    ((x, y) -> trained features+head's class scores), the network trained on the same labels
    (for counts up to `supervised_up_to` labels per class; None: every count).

    Returns {"rows": {name: {count: {"accuracy", "ci95", "draws"}}}, ...}, accuracies in %."""
    test_x, test_y = splits.test_x[:n_test], splits.test_y[:n_test]
    n_classes = int(max(splits.train_y.max(), test_y.max())) + 1
    plan = {c: [stratified_draw(splits.train_y, c, seed * 1000 + d) for d in range(draws)]
            if c else [torch.arange(len(splits.train_y))] for c in counts}  # fmt: skip
    needed = torch.cat([i for idx in plan.values() for i in idx]).unique()  # sorted
    where = torch.full((len(splits.train_y),), -1, dtype=torch.long)
    where[needed] = torch.arange(len(needed))
    rows: dict[str, dict] = {}
    t0 = time.monotonic()
    for name, features in representations.items():
        train_f, test_f = features(splits.train_x[needed]), features(test_x)
        for head in ("linear", "mlp") if name in mlp else ("linear",):
            row = rows[name if head == "linear" else f"{name}+{head}"] = {}
            for c, draw_list in tqdm(plan.items(), desc=f"{head} probe {name}", disable=None):
                accs = [100 * probe_accuracy(train_f[where[i]], splits.train_y[i], test_f,
                                             test_y, n_classes, l2, head) for i in draw_list]  # fmt: skip
                row[count_key(c)] = summary(accs)
    if supervised is not None:
        rows["supervised"] = {}
        for c, draw_list in plan.items():
            if supervised_up_to is not None and (c is None or c > supervised_up_to):
                continue
            accs = []
            for i in tqdm(draw_list, desc=f"supervised, {count_key(c)} labels", disable=None):
                scores = supervised(splits.train_x[i], splits.train_y[i])
                accs.append(100 * (scores(test_x).argmax(1) == test_y).double().mean().item())
            rows["supervised"][count_key(c)] = summary(accs)
    return {"labels_per_class": [count_key(c) for c in counts], "draws": draws, "l2": l2,
            "test_examples": len(test_y), "train_examples": len(splits.train_y),
            "classes": n_classes, "rows": rows,
            "seconds": round(time.monotonic() - t0, 1)}  # fmt: skip


def label_efficiency_picture(table: dict, path: Path, title: str) -> Path:
    """Accuracy against labels per class (log scale; "all" at the mean class size), one line
    per representation, into `path`."""
    per_class = {k: math.log10(int(k) if k != "all" else table["train_examples"] / table["classes"])
                 for k in table["labels_per_class"]}  # fmt: skip
    series = {name: ([per_class[k] for k in row], [row[k]["accuracy"] for k in row])
              for name, row in table["rows"].items()}  # fmt: skip
    return save_curves(series, path, "log10 labels per class",
                       "test accuracy %", f"{title} ({table['draws']} draws)")  # fmt: skip


@dataclass(frozen=True)
class ProbeSettings:
    """How `genlab probe` probes: labels per class (None: all), label draws, the L2 penalty,
    the seed, test examples (None: all), the supervised row's steps (0: none) and largest label
    count, and whether the run's features also get the small non-linear probe."""

    counts: tuple[int | None, ...]
    draws: int = 5
    l2: float = 1e-2
    seed: int = 0
    n: int | None = None
    supervised_steps: int = 0
    supervised_up_to: int = 100
    mlp: bool = False


def probe_run(entry: ModelEntry, options, model, data: str, settings: ProbeSettings,
              data_dir: str | None = None) -> dict[str, dict]:  # fmt: skip
    """The probe tables of a trained model, by task: MNIST {"digit"}, Omniglot {"character"}
    (`omniglot_characters`), FSDD {"digit", "speaker"}; each beside the raw input and the same
    network untrained (and, for images, trained on the labels alone). A model that learned from
    another dataset's images names it as `images_from` (SPIRAL's painter: the dataset its critic
    judges). RunError if the model has no representation or the data no probe task."""
    s = settings
    speech = data == "fsdd" and hasattr(model, "embed_clips")
    if speech:
        clips, tasks = speech_tasks(entry.load_data(data, data_dir, options))
        features, raw = (lambda net: clip_embedder(net, clips)), {"log_mel": clip_log_mel(clips)}
    elif hasattr(model, "embed"):
        tasks = image_tasks(getattr(model, "images_from", data), data_dir)
        features, raw = (lambda net: embedder(net, options)), {"pixels": pixels}
    else:
        raise RunError(f"model '{entry.name}' has no representation to probe (no embed())")
    torch.manual_seed(s.seed)
    untrained = entry.build(options).eval()
    rows = {"run": features(model), **raw, "untrained": features(untrained)}
    tables = {}
    for task, labelled in tasks.items():
        trainer = None
        if s.supervised_steps and not speech:
            n_classes = int(labelled.train_y.max()) + 1
            trainer = supervised_trainer(
                entry.build, options, n_classes, s.supervised_steps, seed=s.seed
            )
        tables[task] = probe(rows, labelled, list(s.counts), s.draws, s.l2, s.seed, s.n, trainer,
                             s.supervised_up_to, ("run",) if s.mlp else ())  # fmt: skip
    return tables


def image_tasks(data: str, data_dir: str | None = None) -> dict[str, Labelled | ImageSplits]:
    """The probe task of an image dataset: MNIST's digits, or Omniglot's unseen characters."""
    if data == "mnist":
        return {"digit": image_splits(data, data_dir)}
    if data == "omniglot":
        return {"character": omniglot_characters(data_dir)}
    raise RunError(f"genlab probe reads the labels of mnist, omniglot and fsdd; this run "
                   f"trained on '{data}'")  # fmt: skip


def omniglot_characters(data_dir: str | None = None) -> Labelled:
    """Omniglot's many-class probe: the 659 characters of the evaluation alphabets (never seen
    by a model trained on the background set), drawers 1-15 of each to label, 16-20 to test."""
    s = characters(data_dir, background=False)
    return Labelled(s.train_x, s.train_y, s.test_x, s.test_y)


def speech_tasks(data: audio.AudioSplits) -> tuple[ClipSet, dict[str, Labelled]]:
    """Every FSDD clip in one ClipSet (train clips first, then test), and the two probe tasks
    (digit, speaker) as indices into it with their labels."""
    parts = (data.train, data.test)
    clips = ClipSet.from_clips([s.clip(k) for s in parts for k in range(len(s))],
                               torch.cat([s.speaker for s in parts]),
                               torch.cat([s.digit for s in parts]))  # fmt: skip
    train, test = torch.arange(len(data.train)), len(data.train) + torch.arange(len(data.test))
    return clips, {
        "digit": Labelled(train, data.train.digit, test, data.test.digit),
        "speaker": Labelled(train, data.train.speaker, test, data.test.speaker),
    }


def once(compute: Callable[[], torch.Tensor]) -> Features:
    """Features of clip indices, from every clip's features (K, D) computed on first use."""
    every = functools.cache(compute)
    return lambda idx: every()[idx]


def clip_embedder(model, clips: ClipSet, batch: int = 32) -> Features:
    """A speech model's `embed_clips` of whole clips, shortest first in padded batches (what
    lies past a clip's end does not reach its embedding)."""

    @torch.no_grad()
    def compute() -> torch.Tensor:
        order = torch.argsort(clips.offsets[1:] - clips.offsets[:-1])  # (K,) shortest first
        batches = (clips.padded(rows.tolist()) for rows in order.split(batch))
        sorted_features = torch.cat([model.embed_clips(mulaw_decode(codes), mask.sum(1))
                                     for codes, mask in batches])  # fmt: skip
        out = torch.empty_like(sorted_features)
        out[order] = sorted_features
        return out

    return once(compute)


def clip_log_mel(clips: ClipSet, n_mels: int = 40) -> Features:
    """The baseline for speech: each clip's log-mel energies (40 bands, 32-ms windows every
    10 ms), mean and standard deviation over its frames."""
    filters = mel_filterbank(n_mels, 256, 8000)

    def compute() -> torch.Tensor:
        stats = []
        for k in range(len(clips)):
            m = log_mel(mulaw_decode(clips.clip(k))[None], filters)[0]  # (n_mels, frames)
            stats.append(torch.cat([m.mean(1), m.std(1)]))
        return torch.stack(stats)

    return once(compute)


def evaluate_speech_pretext(model, options, data: audio.AudioSplits, n: int | None = None,
                            **_) -> dict:  # fmt: skip
    """CPC's InfoNCE and per-offset accuracy on `n` (default 512) seeded crops of test clips."""
    crops = CropBatches(data.test, options.crop, 32, seed=0)
    batches = [crops.batch(step) for step in range(math.ceil((n or 512) / 32))]
    return {**mean_metrics(model, batches), "n": 32 * len(batches)}


def count_key(c: int | None) -> str:
    return "all" if c is None else str(c)


def summary(accs: list[float]) -> dict:
    """Mean accuracy, the half-width of its 95% interval (None for one draw), the draws."""
    mean, half = mean_ci95(torch.tensor(accs))
    return {"accuracy": mean, "ci95": half if len(accs) > 1 else None, "draws": accs}


def supervised_trainer(build, options, n_classes: int, steps: int, lr: float = 1e-3,
                       seed: int = 0):  # fmt: skip
    """(x, y) -> class scores of the probed network's architecture, freshly initialised with a
    linear head on `embed`, trained `steps` Adam steps on those labels alone (batches of up to
    64, shifted and rotated as `augment.standard`)."""

    def train(x: torch.Tensor, y: torch.Tensor) -> Features:
        torch.manual_seed(seed)
        net = build(options)
        inputs, _ = model_input(options, x, PROBE_SEED)
        head = torch.nn.Linear(net.embed(inputs[:1]).shape[1], n_classes)
        params = [*net.parameters(), *head.parameters()]
        opt = adam(params, lr, weight_decay=5e-4)
        g = torch.Generator().manual_seed(seed)
        for _ in range(steps):
            idx = torch.randint(len(inputs), (min(64, len(inputs)),), generator=g)
            loss = torch.nn.functional.cross_entropy(
                head(net.embed(augment.standard(inputs[idx], g))), y[idx]
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
        features = embedder(net, options)
        return lambda images: head(features(images)).detach()

    return train


ENTRIES = (
    ModelEntry(
        name="cpc", summary="contrastive predictive coding on image patches (a representation "
        "for `genlab probe`; --data fsdd trains cpc_audio)", options=CPCConfig, build=CPC,
        datasets=("mnist", "omniglot"),
        load_data=load_images, batches=train_batches, evaluate=evaluate_pretext,
        train_defaults={"lr": 1e-3, "batch_size": 64}, bf16=True,
    ),
    ModelEntry(
        name="rotnet", summary="rotation prediction, on CPC's patch encoder (a representation "
        "for `genlab probe`)", options=RotNetConfig, build=RotNet,
        datasets=("mnist", "omniglot"), load_data=load_images, batches=train_batches,
        evaluate=evaluate_pretext, train_defaults={"lr": 1e-3, "batch_size": 64}, bf16=True,
    ),
    ModelEntry(
        name="cpc_audio", summary="contrastive predictive coding on raw 8 kHz speech (a "
        "representation for `genlab probe`)", options=AudioCPCConfig, build=AudioCPC,
        datasets=("fsdd",), load_data=audio.load_data, batches=audio.train_batches,
        evaluate=evaluate_speech_pretext, train_defaults={"lr": 1e-3, "batch_size": 16}, bf16=True,
    ),
)  # fmt: skip
