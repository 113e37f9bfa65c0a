"""The image models: what every 28x28 (or CarRacing 64x64) image model does around its network
(data, batches, evaluation, pictures), and their registry entries (`ENTRIES`).

A new image model needs its model file and one `image_entry(...)` line in `ENTRIES`; the
contract tests (tests/tasks/test_contracts.py) pick it up from the registry.
"""

from __future__ import annotations

import functools
import math
import time
from pathlib import Path

import torch
from tqdm import tqdm

from genlab.agents.world_models import pong
from genlab.data.batches import InMemoryBatches
from genlab.data.images import (
    ImageSplits,
    dequantize,
    image_splits,
    representation,
    static_binarization,
)
from genlab.errors import ConfigError
from genlab.interfaces import LatentModel, NoiseGenerator
from genlab.metrics import objects
from genlab.metrics.likelihood import gaussian_kl_standard_normal, importance_sampled_nll
from genlab.models.classifier import Classifier, ClassifierConfig
from genlab.models.flow_models import GlowConfig, ImageFlow, RealNVPConfig
from genlab.models.gan import GAN, DCGANConfig, WGANConfig, WGANGPConfig, gan_step, make_gan_state
from genlab.models.pixelcnn import GatedPixelCNNConfig, PixelCNN, PixelCNNConfig
from genlab.models.pixelvae import PixelVAE, PixelVAEConfig
from genlab.models.vae import VAE, AutoEncoder, VAEConfig
from genlab.nn.latent import attribute_vector, lerp, pca_2d, slerp
from genlab.nn.modes import eval_mode
from genlab.tasks.entry import ModelEntry
from genlab.viz.curves import save_scatter
from genlab.viz.images import save_grid

TEST_BINARIZATION_SEED = 5678  # the fixed stochastic binarization of the test set


def load_images(data: str, data_dir: str | None, options: object) -> ImageSplits:
    """The dataset's splits, after checking that the model's image size and channels (where it
    has them) are the data's: a ConfigError naming the option otherwise."""
    splits = image_splits(data, data_dir)
    _, c, side, _ = splits.train_x.shape
    for option, have in (("image_size", side), ("image_channels", c)):
        wanted = getattr(options, option, have)
        if wanted != have:
            flag = "--" + option.replace("_", "-")
            raise ConfigError(f"{flag} {wanted}: {data}'s images are {c}x{side}x{side} "
                              f"(channels x side x side); pass {flag} {have}")  # fmt: skip
    return splits


def train_batches(options, splits: ImageSplits, batch_size: int, seed: int, **_) -> InMemoryBatches:
    """Shuffled training batches in the model's representation. Options may define
    `augment_shift` (pixels of random translation); models without it get none."""
    tensors = {"x": splits.train_x, "y": splits.train_y}
    transform = representation(options.representation, getattr(options, "augment_shift", 0))
    return InMemoryBatches(tensors, batch_size, seed, transform)


def model_input(options, x: torch.Tensor, seed: int) -> tuple[torch.Tensor, str]:
    """uint8 images (N, C, H, W) as the model sees them, with any randomness (binarization,
    dequantization) drawn once from `seed`; and a description for the results JSON. Options
    without a representation (a painter's) see x / 255."""
    kind = getattr(options, "representation", "float")
    if kind == "binary_dynamic":
        return static_binarization(x, seed), f"stochastic binarization, fixed seed {seed}"
    if kind == "uint8":
        return x, "8-bit codes 0-255"
    if kind == "dequantized":
        x = dequantize(x, torch.Generator().manual_seed(seed))
        return x, f"(x + u) / 256, u ~ U[0, 1) drawn once with seed {seed}"
    return x.float() / 255.0, "x / 255 in [0, 1]"


def test_images(options, splits: ImageSplits) -> tuple[torch.Tensor, str]:
    """The test set as the model sees it, and a description for the results JSON."""
    return model_input(options, splits.test_x, TEST_BINARIZATION_SEED)


def evaluate_vae(
    model, options, splits: ImageSplits, k: int = 1000, n: int | None = None, seed: int = 0, **_
) -> dict:
    """-log p(x) by importance sampling with K samples, plus -ELBO, KL and reconstruction (nats),
    and the active latent units (variance of the posterior mean across test images > 0.01)."""
    x, how = test_images(options, splits)
    x = x[:n] if n else x
    torch.manual_seed(seed)
    t0 = time.monotonic()
    with tqdm(total=x.shape[0], desc=f"IWAE k={k}", unit="img", disable=None) as bar:
        est = importance_sampled_nll(model.log_weights, x, k, progress=bar.update)
    posteriors = [model.encode(b) for b in x.split(1000)]
    kl = torch.cat([gaussian_kl_standard_normal(mu, logvar) for mu, logvar in posteriors])
    means = torch.cat([mu for mu, _ in posteriors])  # (N, Z)
    labels = splits.test_labels
    seen = {"objects": objects_kept(model, x, means, labels)} if "ball" in labels else {}
    return {
        **seen,
        "active_units": int((means.var(0) > 0.01).sum()),  # Burda et al. 2016
        "nll_nats": est["nll"].mean().item(),
        "neg_elbo_nats": est["neg_elbo"].mean().item(),
        "kl_nats": kl.mean().item(),
        "rec_nats": est["rec"].mean().item(),
        "nll_stderr": (est["nll"].std() / x.shape[0] ** 0.5).item(),
        "k": k,
        "n": x.shape[0],
        "likelihood": options.likelihood,
        "test_data": how,
        "seconds": round(time.monotonic() - t0, 1),
    }


@torch.no_grad()
def objects_kept(model, x: torch.Tensor, z: torch.Tensor, labels: dict, radius: int = 2) -> dict:
    """Pong (the world-model talk's test of a V): on the test frames x (N, 1, S, S) with their
    posterior means z (N, Z) and emulator positions `labels` (ball, opponent, player: (N', 2),
    N' >= N): how often the reconstruction keeps the ball (frames where it is in the open
    field, more than radius + 2 pixels across from either paddle) and the opponent's paddle
    (`metrics.objects.kept`), how often it draws a ball where the frame has nothing (at the
    mirrored spot), and the out-of-fold R^2 of a linear probe from z to the ball's (x, y)."""
    n = len(x)
    labels = {k: v[:n] for k, v in labels.items()}
    ball, opponent = labels["ball"], labels["opponent"]
    recon = torch.cat([model.mean_image(b) for b in z.split(250)])[:, 0]  # (N, S, S)
    truth = x[:, 0].float()

    def rate(images: torch.Tensor, where: torch.Tensor, frames: torch.Tensor) -> float:
        return objects.kept(images[frames], where[frames], radius).float().mean().item()

    present = ~ball.isnan().any(1)
    field = pong.in_open_field(labels, radius + 2)
    alarms, clear = objects.false_alarms(recon[field], truth[field], ball[field], radius)
    paddle = ~opponent.isnan().any(1)
    return {
        "ball_kept": rate(recon, ball, field),
        "ball_frames": int(field.sum()),
        "ball_in_truth": rate(truth, ball, field),
        "ball_false_alarms": alarms / max(clear, 1),
        "opponent_kept": rate(recon, opponent, paddle),
        "opponent_frames": int(paddle.sum()),
        "ball_probe_r2": objects.probe_r2(z[present], ball[present]),
        "probe_frames": int(present.sum()),
        "radius_px": radius,
        "reconstruction": "mean_image of the posterior mean, on where > 0.5 (a PixelCNN "
        "decoder's pixel by pixel, each given those before it)",
    }


def evaluate_ae(model, options, splits: ImageSplits, n: int | None = None, **_) -> dict:
    """An autoencoder has no likelihood: report its reconstruction term -log p(x | f(x)) in nats."""
    x, how = test_images(options, splits)
    x = x[:n] if n else x
    with torch.no_grad():
        rec = torch.cat([-model.log_px(model.decoder(model.embed(b)), b) for b in x.split(500)])
    return {
        "rec_nats": rec.mean().item(),
        "n": x.shape[0],
        "likelihood": options.likelihood,
        "test_data": how,
    }


def evaluate_classifier(model, options, splits: ImageSplits, n: int | None = None, **_) -> dict:
    """Test accuracy (a fraction in [0, 1]) and mean cross-entropy in nats."""
    x, y = splits.test_x.float() / 255.0, splits.test_y
    x, y = (x[:n], y[:n]) if n else (x, y)
    with torch.no_grad():
        logits = torch.cat([model(b) for b in x.split(1000)])
    return {
        "accuracy": (logits.argmax(1) == y).float().mean().item(),
        "cross_entropy_nats": torch.nn.functional.cross_entropy(logits, y).item(),
        "n": len(y),
    }


def per_image(score, x: torch.Tensor, y: torch.Tensor, desc: str) -> torch.Tensor:
    """score(x_batch, y_batch) -> (b,) for the whole test set in batches of 500, in eval mode,
    with a progress bar: (N,) float64."""
    out = []
    with tqdm(total=len(x), desc=desc, unit="img", disable=None) as bar:
        for xb, yb in zip(x.split(500), y.split(500), strict=True):
            out.append(score(xb, yb).double())
            bar.update(len(xb))
    return torch.cat(out)


def evaluate_flow(model, options, splits: ImageSplits, n: int | None = None, **_) -> dict:
    """The 8-bit test set's bound from the dequantized density: bits per dimension and nats per
    image (the same number in two units; D = 784)."""
    x, how = test_images(options, splits)
    x = x[:n] if n else x
    t0 = time.monotonic()
    with eval_mode(model):
        bpd = per_image(lambda xb, _: model.bits_per_dim(xb), x, splits.test_y[: len(x)],
                        "test bits/dim")  # fmt: skip
    return {
        "bits_per_dim": bpd.mean().item(),
        "nll_nats": (bpd.mean() * model.dims * math.log(2)).item(),
        "bits_per_dim_stderr": (bpd.std() / len(bpd) ** 0.5).item(),
        "n": len(bpd),
        "test_data": how,
        "seconds": round(time.monotonic() - t0, 1),
    }


def evaluate_autoregressive(model, options, splits: ImageSplits, n: int | None = None, **_):
    """Exact test log-likelihood of a PixelCNN: nats per image, and bits/dim for 8-bit data."""
    x, how = test_images(options, splits)
    x = x[:n] if n else x
    t0 = time.monotonic()
    with eval_mode(model):
        nats = per_image(
            lambda xb, yb: -model.log_prob(xb, yb if options.conditional else None),
            x, splits.test_y[: len(x)], "test NLL",
        )  # fmt: skip
    out = {"nll_nats": nats.mean().item(), "nll_stderr": (nats.std() / len(nats) ** 0.5).item()}
    if options.representation == "uint8":
        out["bits_per_dim"] = out["nll_nats"] / (784 * math.log(2))
    return {**out, "n": len(nats), "test_data": how, "seconds": round(time.monotonic() - t0, 1)}


@torch.no_grad()
def reconstructions_and_interpolations(
    model, shown: torch.Tensor, out: Path, paths: tuple[str, ...], steps: int
) -> list[Path]:
    """Each shown image beside its reconstruction (8 pairs a row), and for each path kind
    ("linear", "spherical") interpolations between consecutive pairs of them, one per row."""
    z = model.embed(shown)
    pairs = torch.stack([shown, model.mean_image(z)], 1).flatten(0, 1)  # input, recon, ...
    written = [save_grid(pairs, out / "reconstructions.png", nrow=8)]
    for name in paths:
        path_fn = {"linear": lerp, "spherical": slerp}[name]
        rows = [path_fn(z[2 * i], z[2 * i + 1], steps) for i in range(min(6, len(z) // 2))]
        pictures = model.mean_image(torch.cat(rows))
        written.append(save_grid(pictures, out / f"interpolation_{name}.png", nrow=steps))
    return written


@torch.no_grad()
def decoded_pictures(model, options, splits: ImageSplits, out: Path, seed: int = 0) -> list[Path]:
    """For models whose decoding is slow (autoregressive given z: `decode(z, u)` from uniforms
    u (B, S, S, 2)): 32 samples, 8 reconstructions and 4 linear interpolations of 8 steps, all
    decoded in one batch (one pass over the pixels, not three)."""
    g = torch.Generator().manual_seed(seed)
    x, _ = test_images(options, splits)
    S = x.shape[-1]
    with eval_mode(model):
        z_prior = torch.randn(32, model.cfg.latent_dim, generator=g)  # as model.sample draws
        u = torch.cat([torch.rand(32, S, S, 2, generator=g), torch.full((40, S, S, 2), 0.5)])
        shown = x[torch.randperm(x.shape[0], generator=g)[:8]]
        z_shown = model.embed(shown)  # (8, Z)
        walks = [lerp(z_shown[2 * i], z_shown[2 * i + 1], 8) for i in range(4)]
        images = model.decode(torch.cat([z_prior, z_shown, *walks]), u)  # (72, 1, S, S)
    samples, recon, walked = images.split([32, 8, 32])
    pairs = torch.stack([shown.float(), recon], 1).flatten(0, 1)  # input, recon, ...
    return [save_grid(samples, out / "samples.png"),
            save_grid(pairs, out / "reconstructions.png", nrow=8),
            save_grid(walked, out / "interpolation_linear.png", nrow=8)]  # fmt: skip


@torch.no_grad()
def flow_pictures(model, options, splits: ImageSplits, out: Path, seed: int = 0) -> list[Path]:
    """Samples at temperatures 0.5, 0.7 and 1.0, then the latent pictures (reconstructions are
    exact; interpolations are the talk's "morphing")."""
    written = []
    with eval_mode(model):
        for t in (0.5, 0.7, 1.0):
            x = model.sample(64, generator=torch.Generator().manual_seed(seed), temperature=t)
            written.append(save_grid(x, out / f"samples_T{t}.png"))
        written += latent_pictures(model, options, splits, out, seed)
    return written


def evaluate_sampler(model, options, splits: ImageSplits, **_) -> dict:
    """A model with no likelihood (a GAN) is judged by its samples alone; `genlab eval` adds
    fid, precision, recall and class coverage."""
    return {"likelihood": "none (implicit model)"}


@torch.no_grad()
def latent_pictures(model, options, splits: ImageSplits, out: Path, seed: int = 0) -> list[Path]:
    """Reconstructions, interpolations, a 2-D latent scatter and attribute arithmetic (PNGs)."""
    g = torch.Generator().manual_seed(seed)
    x, _ = test_images(options, splits)
    y = splits.test_y
    shown = torch.randperm(x.shape[0], generator=g)[:16]
    written = reconstructions_and_interpolations(model, x[shown], out, ("linear", "spherical"), 10)
    n_scatter = min(5000, x.shape[0])
    z_all = torch.cat([model.embed(b) for b in x[:n_scatter].split(1000)])
    pts = pca_2d(z_all)
    how = "latent" if z_all.shape[1] == 2 else f"PCA of {z_all.shape[1]}-d latent"
    written.append(
        save_scatter(
            pts,
            y[:n_scatter],
            splits.label_names,
            out / "latent_scatter.png",
            title=f"{how}, {n_scatter} test images coloured by label",
        )
    )
    if not splits.labels_are_classes or len(y[:n_scatter].unique()) < 2:
        return written  # attribute arithmetic needs two classes
    src, dst = int(y[0]), int(y[1]) if int(y[1]) != int(y[0]) else (int(y[0]) + 1) % 10
    vec = attribute_vector(z_all, y[:n_scatter], src, dst)
    base = z_all[y[:n_scatter] == src][:6]  # (6, Z) images of class src
    steps = torch.linspace(0, 1.5, 8).view(1, 8, 1)
    moved = (base.unsqueeze(1) + steps * vec).flatten(0, 1)  # (6*8, Z)
    name = f"attribute_{splits.label_names[src]}_to_{splits.label_names[dst]}.png"
    written.append(save_grid(model.mean_image(moved), out / name, nrow=8))
    return written


@torch.no_grad()
def sample_grid(model, n: int, path: Path, seed: int = 0) -> Path:
    """A grid of n samples drawn with their own seeded generator, in eval mode (batch-norm
    statistics untouched), leaving the model's mode and the global RNG as they were."""
    with eval_mode(model):
        return save_grid(model.sample(n, generator=torch.Generator().manual_seed(seed)), path)


def progress_grid(state, run_dir: Path) -> Path:
    """`on_checkpoint` hook: the same 64 latent draws at every checkpoint, to watch training."""
    path = Path(run_dir) / "pictures" / "progress" / f"step_{state.step:07d}.png"
    return sample_grid(state.model, 64, path)


@torch.no_grad()
def noise_interpolations(model, out: Path, seed: int = 0) -> list[Path]:
    """Linear and spherical walks between random noise vectors of a generator (6 rows of 10);
    a class-conditional generator keeps one class per row (row i: class i)."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(12, model.cfg.latent_dim, generator=g)
    written = []
    with eval_mode(model):
        for name, path_fn in (("linear", lerp), ("spherical", slerp)):
            rows = []
            for i in range(6):
                y = torch.full((10,), i) if getattr(model.cfg, "conditional", False) else None
                rows.append(model.generate(path_fn(z[2 * i], z[2 * i + 1], 10), y))
            written.append(save_grid(torch.cat(rows), out / f"interpolation_{name}.png", nrow=10))
    return written


def image_pictures(
    model, options, splits: ImageSplits, out: Path, seed: int = 0, *, samples: bool = True
) -> list[Path]:
    """After training: a grid of samples (if `samples`) and the latent-space pictures (a VAE's
    or autoencoder's codes; a GAN generator's noise walks)."""
    written = [sample_grid(model, 64, out / "samples.png", seed)] if samples else []
    if isinstance(model, LatentModel):
        written += latent_pictures(model, options, splits, out, seed)
    elif isinstance(model, NoiseGenerator):
        written += noise_interpolations(model, out, seed)
    return written


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp")


def sample_images(model, options, n: int, out: Path, seed: int = 0) -> Path:
    """`genlab sample`: a grid of n samples as an image file (PNG, or as `out`'s suffix says)."""
    if Path(out).suffix.lower() not in IMAGE_SUFFIXES or Path(out).is_dir():
        raise ConfigError(f"--out {out}: give an image file to write, e.g. samples.png")
    return sample_grid(model, n, Path(out), seed)


# --- the registry's image entries ----------------------------------------------------------------
def image_entry(*, can_sample: bool, **kw) -> ModelEntry:
    """An image model's entry: image datasets, shuffled batches in the model's representation;
    a sampler also gets sample grids (at each checkpoint, after training, `genlab sample`)."""
    defaults = {
        "load_data": load_images,
        "batches": train_batches,
        "pictures": functools.partial(image_pictures, samples=can_sample),
        "sample": sample_images if can_sample else None,
        "on_checkpoint": progress_grid if can_sample else None,
    }
    return ModelEntry(can_sample=can_sample, **{**defaults, **kw})


_PIXELCNN = {"lr": 1e-3, "batch_size": 64, "grad_clip": 1.0}
_FLOW = {"lr": 1e-3, "batch_size": 64, "grad_clip": 50.0, "warmup_steps": 200}
ENTRIES = (
    image_entry(name="vae", summary="convolutional variational autoencoder", options=VAEConfig,
                build=VAE, datasets=("mnist", "omniglot", "carracing", "doom", "pong"),
                evaluate=evaluate_vae,
                can_sample=True, bf16=True),
    image_entry(name="ae", summary="convolutional autoencoder (no prior; compare with vae)",
                options=VAEConfig, build=AutoEncoder, datasets=("mnist", "omniglot"),
                evaluate=evaluate_ae, can_sample=False, bf16=True),
    image_entry(name="classifier", summary="MNIST digit classifier; its features measure sample "
                "quality", options=ClassifierConfig, build=Classifier, datasets=("mnist",),
                evaluate=evaluate_classifier, can_sample=False),
    image_entry(name="dcgan", summary="DCGAN, non-saturating loss", options=DCGANConfig,
                build=GAN, datasets=("mnist",), evaluate=evaluate_sampler, can_sample=True,
                make_state=make_gan_state, make_step=gan_step, bf16=True,
                train_defaults={"lr": 2e-4, "batch_size": 64}),
    image_entry(name="wgan", summary="Wasserstein GAN, weight clipping, RMSprop",
                options=WGANConfig, build=GAN, datasets=("mnist",), evaluate=evaluate_sampler,
                can_sample=True, make_state=make_gan_state, make_step=gan_step, bf16=True,
                # 5 critic updates of 64 per generator update
                train_defaults={"lr": 5e-5, "batch_size": 320}),
    image_entry(name="wgan_gp", summary="Wasserstein GAN with gradient penalty",
                options=WGANGPConfig, build=GAN, datasets=("mnist",), evaluate=evaluate_sampler,
                can_sample=True, make_state=make_gan_state, make_step=gan_step, bf16=True,
                # 2 critic slices of 64
                train_defaults={"lr": 4e-4, "batch_size": 128, "ema_decay": 0.998}),
    image_entry(name="pixelcnn", summary="PixelCNN (masked convolutions) on binarized or 8-bit "
                "MNIST", options=PixelCNNConfig, build=PixelCNN, datasets=("mnist",),
                evaluate=evaluate_autoregressive, can_sample=True, bf16=True,
                train_defaults=_PIXELCNN),
    image_entry(name="gated_pixelcnn", summary="Gated PixelCNN (no blind spot) on binarized or "
                "8-bit MNIST", options=GatedPixelCNNConfig, build=PixelCNN, datasets=("mnist",),
                evaluate=evaluate_autoregressive, can_sample=True, bf16=True,
                train_defaults=_PIXELCNN),
    image_entry(name="pixelvae", summary="VAE with a Gated PixelCNN decoder (free bits, KL "
                "warm-up)", options=PixelVAEConfig, build=PixelVAE, datasets=("mnist", "pong"),
                evaluate=evaluate_vae, can_sample=True, bf16=True, train_defaults=_PIXELCNN,
                pictures=decoded_pictures),
    image_entry(name="glow", summary="Glow flow on dequantized 8-bit MNIST (shared coupling "
                "optional)", options=GlowConfig, build=ImageFlow, datasets=("mnist",),
                evaluate=evaluate_flow, can_sample=True, bf16=True, train_defaults=_FLOW,
                pictures=flow_pictures),
    image_entry(name="realnvp", summary="RealNVP flow on dequantized 8-bit MNIST",
                options=RealNVPConfig, build=ImageFlow, datasets=("mnist",),
                evaluate=evaluate_flow, can_sample=True, bf16=True, train_defaults=_FLOW,
                pictures=flow_pictures),
)  # fmt: skip
ENTRY = {e.name: e for e in ENTRIES}
