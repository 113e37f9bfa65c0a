"""Parallel WaveNet (van den Oord et al. 2017): a trained WaveNet teacher distilled into an inverse
autoregressive flow student that turns noise into audio, every sample in parallel.

    logistic noise z (B, T) -> IAF student (conditioned on speaker and digit like the teacher)
      -> y (B, T) continuous mu-law values in [-1, 1]; code k sits at 2k/255 - 1
      -> audio = mu-law expansion of y, or the codes round((y + 1) * 255 / 2)

Given z_<t the student's y_t is one logistic (mean M_t, scale S_t, `genlab.flows.iaf`), binned
onto the 256 codes exactly as the teacher's distributions are. The losses, each weighted by an
option (0 switches it off), all per sample in nats unless said:

1. distillation: KL(P_S || P_T) at every step, in closed form over the 256 codes, with the
   frozen teacher scoring the student's own sample y_<t (Monte Carlo only over y_<t);
2. power: squared difference of the log average power spectra of the student's audio and a
   real crop with the same speaker and digit (the paper's is on the power itself; logs keep the
   quiet bands from being ignored). Without it students whisper;
3. perceptual: cross-entropy of genlab's frozen spoken-digit classifier on the student's audio
   against the conditioned digit;
4. contrastive: minus `contrastive_weight` times the KL to the teacher told a wrong digit.

The teacher is part of the module (frozen, saved with the student) so a student run is
self-contained; the classifier is given (genlab.tasks.audio passes its cached one) and used
when the perceptual loss is on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from genlab.data.audio import MU, in_window, mulaw_decode, mulaw_expand, power_spectrum
from genlab.errors import ConfigError
from genlab.flows.iaf import IAF, IAFStep, NativeIAF, logistic_noise
from genlab.metrics.audio import energy_ratio
from genlab.models.audio_classifier import WINDOW
from genlab.models.wavenet import N_DIGITS, N_SPEAKERS, WaveNet, global_condition
from genlab.nn import kernels
from genlab.nn.likelihoods import discretized_logistic_mixture_log_prob
from genlab.train.config import doc

N_FFT = 256  # power loss: 32 ms frames at 8 kHz, hop N_FFT // 4


@dataclass(frozen=True)
class ParallelWaveNetConfig:
    teacher: str = doc("the trained `genlab train wavenet` run to distil (a directory)", default="")
    flows: int = doc("IAF steps of the student", default=4)
    layers: int = doc("layers per step; dilations 1, 2, ..., 2^(layers-1)", default=10)
    channels: int = doc("residual (and skip) channels of each step", default=16)
    gate_channels: int = doc("channels of each gate (tanh and sigmoid halves)", default=16)
    cond_dim: int = doc("size of the student's conditioning embeddings", default=16)
    init_scale: float = doc("the new student's output scale, in mu-law units", default=0.05)
    crop: int = doc("samples the student generates per training example", default=4000)
    kl_weight: float = doc("weight of KL(student || teacher)", default=1.0)
    power_weight: float = doc("weight of the power loss", default=0.1)
    perceptual_weight: float = doc("weight of the digit classifier's cross-entropy", default=1.0)
    contrastive_weight: float = doc("weight of the KL to a wrong-digit teacher (subtracted)",
                                    default=0.3)  # fmt: skip
    teacher_guidance: float = doc(
        "distil the teacher's digit-guided distribution, softmax(l_free + w (l_digit - l_free)) "
        "(WaveNet's classifier-free guidance; needs a softmax teacher trained with "
        "digit_dropout; 1: the teacher as it is)",
        default=1.0,
    )
    sample_seconds: float = doc("length of generated clips (sample, pictures)", default=0.75)

    def __post_init__(self) -> None:
        if min(self.flows, self.layers, self.channels, self.gate_channels, self.crop) < 1:
            raise ConfigError("flows, layers, channels, gate_channels and crop must be >= 1")
        if self.crop < N_FFT:
            raise ConfigError(f"crop must be >= {N_FFT} samples (one STFT frame), got {self.crop}")
        weights = (self.kl_weight, self.power_weight, self.perceptual_weight,
                   self.contrastive_weight)  # fmt: skip
        if min(weights) < 0:
            raise ConfigError(f"loss weights must be >= 0, got {weights}")


# --- the losses, as pure functions ------------------------------------------------------------
def logistic_code_log_probs(mean: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """A logistic (mean, log scale) (B, T) on [-1, 1] binned onto the 256 codes like the
    teacher's mixture (end bins take the tails) -> log P(code k) (B, T, 256) nats."""
    params = torch.stack([torch.zeros_like(mean), mean, log_scale], -1)[:, :, None, :]
    codes = torch.arange(MU + 1, device=mean.device).expand(*mean.shape, -1)
    return discretized_logistic_mixture_log_prob(params, codes)


def categorical_kl(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """KL(p || q) over the last axis, (..., K) log-probabilities -> (...) nats."""
    return (log_p.exp() * (log_p - log_q)).sum(-1)


def average_power(audio: torch.Tensor) -> torch.Tensor:
    """Float audio (B, T) -> its power spectrum averaged over frames, (B, N_FFT // 2 + 1)."""
    return power_spectrum(audio, N_FFT, N_FFT // 4).mean(-1)


def power_loss(audio: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of log average power spectra, (B, T) each -> scalar."""
    eps = 1e-7
    difference = torch.log(average_power(audio) + eps) - torch.log(average_power(real) + eps)
    return difference.square().mean()


def to_codes(y: torch.Tensor) -> torch.Tensor:
    """Continuous mu-law values (B, T) -> the nearest codes (B, T) long."""
    return torch.round((y.clamp(-1, 1) + 1) * (MU / 2)).long()


# --- the model ------------------------------------------------------------------------------------
class ParallelWaveNet(nn.Module):
    def __init__(
        self,
        cfg: ParallelWaveNetConfig,
        teacher: WaveNet,
        classifier: Callable[[], nn.Module] | None = None,
    ):
        """`teacher`: the trained WaveNet to distil (frozen, saved with the student).
        `classifier`: gives the spoken-digit classifier of the perceptual loss (called once,
        on the loss's first use; kept outside the module: not trained, not saved)."""
        super().__init__()
        self.cfg = cfg
        self.teacher = teacher.eval().requires_grad_(False)
        self._load_classifier = classifier
        tc = self.teacher.cfg
        if cfg.contrastive_weight > 0 and not tc.digit:
            raise ConfigError("the contrastive loss needs a digit-conditioned teacher; "
                              "set --contrastive-weight 0")  # fmt: skip
        if cfg.perceptual_weight > 0 and not tc.digit:
            raise ConfigError("the perceptual loss needs digit conditioning; "
                              "set --perceptual-weight 0")  # fmt: skip
        try:  # refused where the teacher itself would refuse to sample so
            replace(tc, guidance=cfg.teacher_guidance)
        except ConfigError as e:
            raise ConfigError(f"teacher_guidance {cfg.teacher_guidance}: {e}") from e
        self.speaker = nn.Embedding(N_SPEAKERS, cfg.cond_dim) if tc.speaker else None
        self.digit = nn.Embedding(N_DIGITS, cfg.cond_dim) if tc.digit else None
        g = cfg.cond_dim if tc.conditional else 0
        dilations = [2**i for i in range(cfg.layers)]
        log_init = float(torch.tensor(cfg.init_scale).log()) / cfg.flows  # scales multiply
        self.student = IAF([IAFStep(cfg.channels, cfg.gate_channels, dilations, g, log_init)
                            for _ in range(cfg.flows)])  # fmt: skip
        self._classifier = None  # loaded on first use, not saved with the student

    def train(self, mode: bool = True) -> ParallelWaveNet:
        super().train(mode)
        self.teacher.eval()  # frozen: always scoring, never training
        return self

    def classifier(self) -> nn.Module:
        """The frozen spoken-digit classifier, kept outside the module (not trained, not saved)."""
        if self._classifier is None:
            if self._load_classifier is None:
                raise ConfigError("the perceptual loss needs the spoken-digit classifier: build "
                                  "the student with classifier=...")  # fmt: skip
            net = self._load_classifier().requires_grad_(False)
            object.__setattr__(self, "_classifier", net)
        return self._classifier

    def native_student(self) -> NativeIAF:
        """The C kernel's packed copy of the student, packed again only after the weights
        changed (every in-place update bumps a tensor's version counter)."""
        key = tuple((p.data_ptr(), p._version) for p in self.student.parameters())
        if getattr(self, "_native_key", None) != key:
            object.__setattr__(self, "_native", NativeIAF(self.student))
            object.__setattr__(self, "_native_key", key)
        return self._native

    def condition(self, speaker: torch.Tensor | None, digit: torch.Tensor | None):
        return global_condition(self.speaker, self.digit, speaker, digit)

    def sample(self, z: torch.Tensor, speaker=None, digit=None):
        """Noise z (B, T) -> y (B, T) in mu-law units, and the per-step logistic's mean and log
        scale (B, T) each (see `IAF.sample`)."""
        return self.student.sample(z, self.condition(speaker, digit))

    def teacher_log_probs(self, y: torch.Tensor, speaker, digit) -> torch.Tensor:
        """The teacher's log P(code k at t | y_<t) for the student's y (B, T): (B, T, 256);
        guided by the digit (`teacher_guidance`) if the config says so."""
        t, w = self.teacher, self.cfg.teacher_guidance
        e = t.embed_continuous(y)  # (B, C, T)
        if w == 1:
            return t.code_log_probs(t.from_embedding(e, t.conditioning(speaker, digit, *y.shape)))
        speaker, digit = t.guided_streams(speaker, digit, w)  # with, then without the digit
        g = t.conditioning(speaker, digit, 2 * y.shape[0], y.shape[1])
        return t.code_log_probs(t.guide(t.from_embedding(torch.cat([e, e]), g), w))

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A batch of real crops x (B, T) (their speaker, digit and mask) -> the weighted sum of
        the switched-on losses ("loss") and each term, plus the energy ratio (diagnostic)."""
        cfg = self.cfg
        x, mask, speaker, digit = (
            batch["x"],
            batch["mask"],
            batch.get("speaker"),
            batch.get("digit"),
        )
        z = logistic_noise(x.shape)
        y, mean, log_scale = self.sample(z, speaker, digit)
        log_ps = logistic_code_log_probs(mean, log_scale)  # (B, T, 256)
        audio = mulaw_expand(y.clamp(-1, 1)) * mask  # silent where the real crop is padding
        real = mulaw_decode(x) * mask
        out: dict[str, torch.Tensor] = {}
        total = torch.zeros(())
        if cfg.kl_weight > 0:
            out["kl"] = categorical_kl(log_ps, self.teacher_log_probs(y, speaker, digit)).mean()
            total = total + cfg.kl_weight * out["kl"]
        if cfg.contrastive_weight > 0:
            wrong = (digit + torch.randint(1, N_DIGITS, digit.shape)) % N_DIGITS
            out["kl_wrong_digit"] = categorical_kl(
                log_ps, self.teacher_log_probs(y, speaker, wrong)
            ).mean()
            total = total - cfg.contrastive_weight * out["kl_wrong_digit"]
        if cfg.power_weight > 0:
            out["power"] = power_loss(audio, real)
            total = total + cfg.power_weight * out["power"]
        if cfg.perceptual_weight > 0:
            logits = self.classifier()(in_window(list(audio), WINDOW)[0])
            out["perceptual"] = F.cross_entropy(logits, digit)
            total = total + cfg.perceptual_weight * out["perceptual"]
        with torch.no_grad():
            out["energy_ratio"] = energy_ratio(audio, real)
            out["student_entropy"] = (log_scale + 2).mean()  # nats per sample, continuous
        return {"loss": total, **out}

    @torch.no_grad()
    def generate(
        self, u: torch.Tensor, speaker=None, digit=None, temperature: float = 1.0,
        progress=None, method: str = "auto",
    ) -> torch.Tensor:  # fmt: skip
        """Uniforms u (B, T, 2) -> codes (B, T), all samples at once: the noise is the logistic
        inverse CDF of u[..., 0] scaled by `temperature` (u[..., 1] is unused; the argument
        matches WaveNet's so the same sampling code drives both). `method`: "native" (the C
        kernel, one stream at a time), "torch", or "auto" (native where a C compiler exists);
        they agree to float32 rounding."""
        v = u[..., 0].clamp(1e-5, 1 - 1e-5)
        z = (torch.log(v) - torch.log1p(-v)) * temperature  # (B, T)
        if method == "auto":
            method = "native" if kernels.load("iaf_forward") is not None else "torch"
        if method == "native":
            g = self.condition(speaker, digit)
            native = self.native_student()
            y = torch.stack([native.sample(z[b], None if g is None else g[b])
                             for b in range(len(z))])  # fmt: skip
        elif method == "torch":
            y = self.sample(z, speaker, digit)[0]
        else:
            raise ConfigError(f"generation method must be auto, native or torch, not '{method}'")
        if progress is not None:
            progress(u.shape[1])
        return to_codes(y)
