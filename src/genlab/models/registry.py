"""The models the CLI knows, by their stable lower-case names. An explicit table, no magic."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from torch import nn

from genlab.agents.impala import evaluation as impala
from genlab.agents.impala.agent import ImpalaAgent
from genlab.agents.impala.config import A2CConfig, ImpalaConfig
from genlab.agents.spiral import (
    SpiralAgent,
    SpiralConfig,
    evaluate_painter,
    make_spiral_state,
    sample_paintings,
    spiral_step,
)
from genlab.agents.world_models import sequences as world_models
from genlab.agents.world_models.mdnrnn import MDNRNN, MDNRNNConfig
from genlab.data.images import image_splits
from genlab.errors import GenlabError
from genlab.meta import learners as meta
from genlab.meta import rl2
from genlab.models import audio_tasks, image_tasks
from genlab.models.audio_classifier import AudioClassifier, AudioClassifierConfig
from genlab.models.classifier import Classifier, ClassifierConfig
from genlab.models.flow_models import GlowConfig, ImageFlow, RealNVPConfig
from genlab.models.gan import GAN, DCGANConfig, WGANConfig, WGANGPConfig, gan_step, make_gan_state
from genlab.models.linear_ar import LinearAR, LinearARConfig
from genlab.models.parallel_wavenet import (
    ParallelWaveNet,
    ParallelWaveNetConfig,
    evaluate_student,
)
from genlab.models.pixelcnn import GatedPixelCNNConfig, PixelCNN, PixelCNNConfig
from genlab.models.pixelvae import PixelVAE, PixelVAEConfig
from genlab.models.vae import VAE, AutoEncoder, VAEConfig
from genlab.models.wavenet import WaveNet, WaveNetConfig
from genlab.train.config import TrainConfig
from genlab.train.loop import StepFn, TrainState, gradient_step, make_state


def default_step(cfg: TrainConfig) -> StepFn:
    return gradient_step(cfg.grad_clip, cfg.precision)


def load_images(data: str, data_dir: str | None, options: object) -> object:
    return image_splits(data, data_dir)


@dataclass(frozen=True)
class ModelEntry:
    name: str
    summary: str
    options: type  # frozen dataclass of model options; its fields become CLI flags
    build: Callable[[object], nn.Module]
    datasets: tuple[str, ...]  # the first is the default
    evaluate: Callable[..., dict]  # (model, options, data, k=, n=, seed=, tasks=) -> metrics
    can_sample: bool
    # How the shared loop trains it: optimizers and state, and the step function.
    make_state: Callable[[nn.Module, TrainConfig], TrainState] = make_state
    make_step: Callable[[TrainConfig], StepFn] = default_step
    # Training options that differ from TrainConfig's defaults for this model (the papers').
    train_defaults: dict = field(default_factory=dict)
    # What it trains and is evaluated on: (data name, data_dir, options) -> a dataset object,
    # and (options, dataset, batch_size, seed, model=) -> the loop's BatchSource (with `close()`
    # if it holds processes or files; the workflow calls it). Default: 28x28 images.
    load_data: Callable[[str, str | None, object], object] = load_images
    batches: Callable[..., object] = image_tasks.train_batches
    # Pictures after training: (model, options, dataset, out_dir, seed) -> paths; None = the
    # image models' samples and latent pictures.
    pictures: Callable[..., list] | None = None
    # `genlab sample`: (model, options, n, out_path, seed) -> path; None = a grid of image samples.
    sample: Callable[..., object] | None = None
    # Agents: environment frames per training step, (options, train config) -> int, so that
    # `--frames` budgets convert to steps. None: the model has no frames.
    frames_per_step: Callable[[object, TrainConfig], int] | None = None
    # `--precision bf16` is offered only where it was checked: the default step, and a loss
    # scored in float32 from the network's outputs (tests/test_precision.py).
    bf16: bool = False


MODELS: dict[str, ModelEntry] = {
    "vae": ModelEntry(
        "vae", "convolutional variational autoencoder", VAEConfig, VAE,
        ("mnist", "omniglot", "carracing"),
        image_tasks.evaluate_vae, can_sample=True,
    ),
    "ae": ModelEntry(
        "ae", "convolutional autoencoder (no prior; compare with vae)", VAEConfig, AutoEncoder,
        ("mnist", "omniglot"), image_tasks.evaluate_ae, can_sample=False,
    ),
    "classifier": ModelEntry(
        "classifier", "MNIST digit classifier; its features measure sample quality",
        ClassifierConfig, Classifier, ("mnist",), image_tasks.evaluate_classifier,
        can_sample=False,
    ),
    "dcgan": ModelEntry(
        "dcgan", "DCGAN, non-saturating loss", DCGANConfig, GAN, ("mnist",),
        image_tasks.evaluate_sampler, True, make_gan_state, gan_step,
        {"lr": 2e-4, "batch_size": 64},
    ),
    "wgan": ModelEntry(
        "wgan", "Wasserstein GAN, weight clipping, RMSprop", WGANConfig, GAN, ("mnist",),
        image_tasks.evaluate_sampler, True, make_gan_state, gan_step,
        {"lr": 5e-5, "batch_size": 320},  # 5 critic updates of 64 per generator update
    ),
    "wgan_gp": ModelEntry(
        "wgan_gp", "Wasserstein GAN with gradient penalty", WGANGPConfig, GAN, ("mnist",),
        image_tasks.evaluate_sampler, True, make_gan_state, gan_step,
        {"lr": 4e-4, "batch_size": 128, "ema_decay": 0.998},  # 2 critic slices of 64
    ),
    "pixelcnn": ModelEntry(
        "pixelcnn", "PixelCNN (masked convolutions) on binarized or 8-bit MNIST", PixelCNNConfig,
        PixelCNN, ("mnist",), image_tasks.evaluate_autoregressive, True,
        bf16=True, train_defaults={"lr": 1e-3, "batch_size": 64, "grad_clip": 1.0},
    ),
    "gated_pixelcnn": ModelEntry(
        "gated_pixelcnn", "Gated PixelCNN (no blind spot) on binarized or 8-bit MNIST",
        GatedPixelCNNConfig, PixelCNN, ("mnist",), image_tasks.evaluate_autoregressive, True,
        bf16=True, train_defaults={"lr": 1e-3, "batch_size": 64, "grad_clip": 1.0},
    ),
    "pixelvae": ModelEntry(
        "pixelvae", "VAE with a Gated PixelCNN decoder (free bits, KL warm-up)", PixelVAEConfig,
        PixelVAE, ("mnist",), image_tasks.evaluate_vae, True,
        train_defaults={"lr": 1e-3, "batch_size": 64, "grad_clip": 1.0},
        pictures=image_tasks.decoded_pictures,
    ),
    "glow": ModelEntry(
        "glow", "Glow flow on dequantized 8-bit MNIST (shared coupling optional)", GlowConfig,
        ImageFlow, ("mnist",), image_tasks.evaluate_flow, True,
        bf16=True,
        train_defaults={"lr": 1e-3, "batch_size": 64, "grad_clip": 50.0, "warmup_steps": 200},
        pictures=image_tasks.flow_pictures,
    ),
    "realnvp": ModelEntry(
        "realnvp", "RealNVP flow on dequantized 8-bit MNIST", RealNVPConfig, ImageFlow,
        ("mnist",), image_tasks.evaluate_flow, True,
        bf16=True,
        train_defaults={"lr": 1e-3, "batch_size": 64, "grad_clip": 50.0, "warmup_steps": 200},
        pictures=image_tasks.flow_pictures,
    ),
    "audio_classifier": ModelEntry(
        "audio_classifier", "spoken-digit classifier (log-mel CNN); the yardstick for speech",
        AudioClassifierConfig, AudioClassifier, ("fsdd",), audio_tasks.evaluate_audio_classifier,
        False, train_defaults={"lr": 2e-3, "batch_size": 64, "log_every": 20},
        load_data=audio_tasks.load_data, batches=audio_tasks.classifier_batches,
    ),
    "wavenet": ModelEntry(
        "wavenet", "WaveNet on 8-bit mu-law speech (FSDD), cached fast generation",
        WaveNetConfig, WaveNet, ("fsdd",), audio_tasks.evaluate_nll, False,
        bf16=True, train_defaults={"lr": 1e-3, "batch_size": 8, "grad_clip": 1.0, "log_every": 20,
                        "checkpoint_every": 200},
        load_data=audio_tasks.load_data, batches=audio_tasks.train_batches,
        pictures=audio_tasks.audio_pictures, sample=audio_tasks.sample_audio,
    ),
    "parallel_wavenet": ModelEntry(
        "parallel_wavenet", "Parallel WaveNet: an IAF student distilled from a WaveNet teacher",
        ParallelWaveNetConfig, ParallelWaveNet, ("fsdd",), evaluate_student, False,
        train_defaults={"lr": 1e-3, "batch_size": 4, "grad_clip": 1.0, "log_every": 20,
                        "checkpoint_every": 200},
        load_data=audio_tasks.load_data, batches=audio_tasks.train_batches,
        pictures=audio_tasks.audio_pictures, sample=audio_tasks.sample_audio,
    ),
    "linear_ar": ModelEntry(
        "linear_ar", "linear autoregressive predictor: the baseline WaveNet must beat (FSDD)",
        LinearARConfig, LinearAR, ("fsdd",), audio_tasks.evaluate_nll, False,
        train_defaults={"lr": 1e-3, "batch_size": 8, "log_every": 20, "checkpoint_every": 200},
        load_data=audio_tasks.load_data, batches=audio_tasks.train_batches,
    ),
    "mdnrnn": ModelEntry(
        "mdnrnn", "World Models' M: an LSTM with a mixture density head over V's next latent",
        MDNRNNConfig, MDNRNN, ("carracing",), world_models.evaluate_memory, False,
        train_defaults={"lr": 1e-3, "batch_size": 32, "grad_clip": 1.0, "log_every": 20},
        load_data=world_models.load_memory_data, batches=world_models.memory_batches,
        pictures=lambda *args: [],
    ),
}  # fmt: skip

# fmt: off
_MAML = {"lr": 1e-3, "batch_size": 32}  # Adam; --batch-size counts tasks
for _name, _options, _summary, _state, _defaults in (
    ("maml", meta.MetaConfig, "MAML (second order) few-shot learner", make_state, _MAML),
    ("fomaml", meta.FOMAMLConfig, "first-order MAML few-shot learner", make_state, _MAML),
    ("reptile", meta.ReptileConfig, "Reptile few-shot learner", meta.make_reptile_state,
     {"lr": 1.0, "batch_size": 5}),  # outer SGD step 1.0, 5 tasks (Nichol et al.)
):
    MODELS[_name] = ModelEntry(
        _name, _summary, _options, meta.MetaLearner, ("omniglot",), meta.evaluate_fewshot,
        False, _state, default_step, {"log_every": 100, **_defaults},
        meta.load_data, meta.train_batches, meta.task_pictures,
    )

for _name, _options, _summary, _data, _evaluate in (
    ("rl2", rl2.RL2Config, "RL²: a recurrent agent that learns to explore bandits (A2C)",
     "bandits", rl2.evaluate_bandits),
    ("harlow", rl2.HarlowConfig, "an LSTM agent that learns to learn Harlow's two-object task "
     "(A2C)", "harlow", rl2.evaluate_harlow),
):
    MODELS[_name] = ModelEntry(
        _name, _summary, _options, rl2.RL2Agent, (_data,), _evaluate, False, make_state,
        default_step, {"batch_size": 256, "lr": 1e-3, "grad_clip": 1.0, "log_every": 20},
        rl2.load_data, rl2.train_batches, rl2.action_raster,
    )

for _name, _options, _summary in (
    ("impala", ImpalaConfig, "IMPALA: actor/learner with V-trace (MinAtar, Atari, gym)"),
    ("a2c", A2CConfig, "batched synchronous advantage actor-critic (the on-policy baseline)"),
):
    MODELS[_name] = ModelEntry(
        _name, _summary, _options, ImpalaAgent, ("env",), impala.evaluate_agent, False,
        make_state, default_step,
        {"lr": 2e-3, "batch_size": 32, "grad_clip": 40.0, "log_every": 20,
         "checkpoint_every": 500},
        impala.load_data, impala.train_batches, impala.episode_gifs, impala.sample_gif,
        lambda options, cfg: options.unroll * cfg.batch_size,
    )
MODELS["spiral"] = ModelEntry(
    "spiral", "SPIRAL: an IMPALA painter (libmypaint) rewarded by a WGAN-GP critic",
    SpiralConfig, SpiralAgent, ("env",), evaluate_painter, False, make_spiral_state, spiral_step,
    {"lr": 6e-4, "batch_size": 32, "grad_clip": 40.0, "log_every": 20, "checkpoint_every": 200},
    impala.load_data, impala.train_batches, impala.episode_gifs, sample_paintings,
    lambda options, cfg: options.unroll * cfg.batch_size,
)
# fmt: on


def get_model(name: str) -> ModelEntry:
    if name in MODELS:
        return MODELS[name]
    raise GenlabError(f"unknown model '{name}'; available: {', '.join(MODELS)}")
