"""WaveNet (van den Oord et al. 2016) on 8-bit mu-law audio, with cached generation (Paine et al.
2016, "Fast WaveNet").

    codes x (B, T) in [0, 256)
      -> embed, shift right one step (position t holds x[t-1]; zeros before the clip)
      -> causal input conv (k = 2)
      -> stacks x layers gated residual blocks, dilations 1, 2, ..., 2^(layers-1) per stack
      -> sum of skips -> ReLU -> 1x1 -> ReLU -> 1x1
      -> outputs (B, O, T): the distribution of x[t] given x[<t] (and the conditioning)

O is 256 logits ("softmax") or 3M mixture parameters ("logistic_mixture", on the codes' [-1, 1]
levels). Global conditioning: speaker and/or digit embeddings, summed, enter every gate.
All log-likelihoods are nats per sample; bits = nats / ln 2.
"""

from __future__ import annotations

import ctypes
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from genlab.data.audio import MU
from genlab.errors import ConfigError
from genlab.nn import kernels
from genlab.nn.causal import CausalConv1d, GatedResidualBlock, receptive_field
from genlab.nn.likelihoods import (
    discretized_logistic_mixture_log_prob,
    discretized_logistic_mixture_sample,
    widened,
)
from genlab.train.config import doc

OUTPUTS = ("softmax", "logistic_mixture")
N_SPEAKERS, N_DIGITS = 6, 10  # FSDD


@dataclass(frozen=True)
class WaveNetConfig:
    channels: int = doc("residual channels", default=32)
    gate_channels: int = doc("channels of each gate (tanh and sigmoid halves)", default=32)
    skip_channels: int = doc("skip and output-head channels", default=64)
    stacks: int = doc("repeated stacks of dilated layers", default=2)
    layers: int = doc("layers per stack; dilations 1, 2, ..., 2^(layers-1)", default=10)
    output: str = doc(f"output distribution: {', '.join(OUTPUTS)}", default="softmax")
    mixtures: int = doc("logistic mixture components (output=logistic_mixture)", default=10)
    speaker: bool = doc("condition on the speaker (global embedding)", default=True)
    digit: bool = doc("condition on the spoken digit (global embedding)", default=True)
    cond_dim: int = doc("size of the conditioning embeddings", default=16)
    crop: int = doc("training crop length in samples (8 kHz)", default=4000)
    tail_silence: int = doc(
        "samples of silence after each training clip that count as targets, so the model "
        "learns to end a word (0: only the clip is learned)",
        default=0,
    )
    position_every: int = doc(
        "condition on the time since the clip began, as a learned embedding of t // this many "
        "samples added to the global conditioning (0: no position input)",
        default=0,
    )
    position_buckets: int = doc("position embeddings; later times share the last", default=24)
    digit_dropout: float = doc(
        "fraction of training crops whose digit is hidden (id -1, no digit embedding), so the "
        "net also learns p(x | speaker) and can sample with classifier-free guidance",
        default=0.0,
    )
    guidance: float = doc(
        "digit guidance scale w when sampling: logits l_free + w (l_digit - l_free), where l_free "
        "hides the digit (1: plain conditional sampling; other values need digit_dropout > 0)",
        default=1.0,
    )
    sample_seconds: float = doc("length of generated clips (sample, pictures)", default=0.75)
    holdout_speaker: str = doc("leave this FSDD speaker out of training (adaptation)", default="")

    def __post_init__(self) -> None:
        if self.output not in OUTPUTS:
            raise ConfigError(f"output must be one of {OUTPUTS}, got '{self.output}'")
        if min(self.channels, self.gate_channels, self.skip_channels, self.stacks, self.layers) < 1:
            raise ConfigError("channels, gate_channels, skip_channels, stacks, layers must be >= 1")
        if self.position_every < 0 or self.position_buckets < 1:
            raise ConfigError("position_every must be >= 0 and position_buckets >= 1")
        if not 0 <= self.digit_dropout < 1:
            raise ConfigError(f"digit_dropout must be in [0, 1), got {self.digit_dropout}")
        if self.guidance != 1 and not self.digit:
            raise ConfigError("guidance needs a digit-conditioned model (digit=true)")
        if self.guidance != 1 and self.output != "softmax":
            raise ConfigError("guidance needs output=softmax (it mixes logits)")
        if self.guidance != 1 and self.digit_dropout == 0:
            raise ConfigError("guidance needs a model trained with digit_dropout > 0: without "
                              "it the net never learned the digit-free distribution")  # fmt: skip

    @property
    def dilations(self) -> list[int]:
        return [2**i for i in range(self.layers)] * self.stacks

    @property
    def receptive_field(self) -> int:
        """Past samples the prediction of x[t] sees: x[t - R] .. x[t - 1]."""
        return receptive_field(self.dilations)

    @property
    def conditional(self) -> bool:
        return self.speaker or self.digit or self.position_every > 0


def global_condition(
    speaker_table: nn.Embedding | None,
    digit_table: nn.Embedding | None,
    speaker: torch.Tensor | None,
    digit: torch.Tensor | None,
) -> torch.Tensor | None:
    """Global conditioning of an audio model: the sum of its speaker and digit embeddings of the
    (B,) ids, (B, G); None if it has neither table. A table without ids is an error. An id of
    -1 means "not given" and contributes zeros (the null condition of classifier-free guidance)."""
    parts = []
    for name, table, ids in (("speaker", speaker_table, speaker), ("digit", digit_table, digit)):
        if table is None:
            continue
        if ids is None:
            raise ConfigError(f"this model is conditioned on {name}: pass {name} ids")
        parts.append(table(ids.clamp(min=0)) * (ids >= 0)[:, None])
    return sum(parts) if parts else None


def crop_nll(model: nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """An autoregressive audio model's loss: mean NLL per real (unpadded) sample of the batch's
    crops, in nats ("loss") and bits. The model maps (x, speaker, digit, offset) to outputs
    that its `step_log_probs(outputs, x)` scores; offset (B,) is where each crop starts in its clip
    (None: at the start). Scored in float32 even if the outputs came from bf16 autocast."""
    x, mask = batch["x"], batch["mask"]
    outputs = model(x, batch.get("speaker"), batch.get("digit"), batch.get("offset"))
    outputs = widened(outputs)
    lp = model.step_log_probs(outputs, x)
    nats = -(lp * mask).sum() / mask.sum()
    return {"loss": nats, "bits_per_sample": nats / math.log(2)}


class WaveNet(nn.Module):
    def __init__(self, cfg: WaveNetConfig):
        super().__init__()
        self.cfg = cfg
        c, g = cfg.channels, cfg.cond_dim if cfg.conditional else 0
        self.embed = nn.Embedding(MU + 1, c)
        self.input = CausalConv1d(c, c, 2)
        self.speaker = nn.Embedding(N_SPEAKERS, cfg.cond_dim) if cfg.speaker else None
        self.digit = nn.Embedding(N_DIGITS, cfg.cond_dim) if cfg.digit else None
        self.position = (
            nn.Embedding(cfg.position_buckets, cfg.cond_dim) if cfg.position_every else None
        )
        if self.position is not None:  # starts as no input, so it can be added to a trained net
            nn.init.zeros_(self.position.weight)
        self.blocks = nn.ModuleList(
            GatedResidualBlock(c, cfg.gate_channels, cfg.skip_channels, d, g) for d in cfg.dilations
        )
        out = MU + 1 if cfg.output == "softmax" else 3 * cfg.mixtures
        self.head1 = nn.Conv1d(cfg.skip_channels, cfg.skip_channels, 1)
        self.head2 = nn.Conv1d(cfg.skip_channels, out, 1)

    # --- conditioning -------------------------------------------------------------------------
    def condition(self, speaker: torch.Tensor | None, digit: torch.Tensor | None):
        """(B,) speaker and digit ids -> the global vector g (B, G), or None if it has neither."""
        return global_condition(self.speaker, self.digit, speaker, digit)

    def position_bucket(self, t: torch.Tensor) -> torch.Tensor:
        """Samples since the clip began (any shape, long) -> position embedding indices."""
        bucket = torch.div(t, self.cfg.position_every, rounding_mode="floor")
        return bucket.clamp(0, self.cfg.position_buckets - 1)

    def conditioning(self, speaker, digit, B: int, T: int, offset: torch.Tensor | None = None):
        """Everything the gates are conditioned on for B clips' T samples starting `offset` (B,)
        samples into the clips (default 0): the global g (B, G), or with a position input g plus
        the position embedding of each step, (B, G, T). None if unconditional."""
        g = self.condition(speaker, digit)
        if self.position is None:
            return g
        start = torch.zeros(B, dtype=torch.long) if offset is None else offset.long()
        p = self.position(self.position_bucket(start[:, None] + torch.arange(T)))  # (B, T, G)
        p = p.transpose(1, 2)
        return p if g is None else g[:, :, None] + p

    def step_conditioning(self, speaker, digit, B: int, t: int) -> torch.Tensor | None:
        """`conditioning` of the single sample t of B clips: (B, G), or None."""
        g = self.conditioning(speaker, digit, B, 1, torch.full((B,), t))
        return g[:, :, 0] if g is not None and g.dim() == 3 else g

    # --- training / scoring -------------------------------------------------------------------
    def forward(
        self,
        x: torch.Tensor,
        speaker: torch.Tensor | None = None,
        digit: torch.Tensor | None = None,
        offset: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x (B, T) long codes -> outputs (B, O, T); column t is the distribution of x[t].
        `offset` (B,): how many samples into its clip x starts (for a position input; default 0,
        the clip's start)."""
        if self.training and self.cfg.digit_dropout > 0 and digit is not None:
            hide = torch.rand(digit.shape) < self.cfg.digit_dropout
            digit = torch.where(hide, -1, digit)
        g = self.conditioning(speaker, digit, *x.shape, offset)
        return self.from_embedding(self.embed(x).transpose(1, 2), g)

    def from_embedding(self, e: torch.Tensor, g: torch.Tensor | None) -> torch.Tensor:
        """Embedded codes e (B, C, T) and conditioning g (B, G) or (B, G, T) (`conditioning`)
        -> outputs (B, O, T)."""
        h = self.input(F.pad(e, (1, -1)))  # shifted: position t sees x[t-1] and x[t-2]
        skip = 0
        for block in self.blocks:
            h, s = block(h, g)
            skip = skip + s
        return self.head2(F.relu(self.head1(F.relu(skip))))

    def log_prob(self, x: torch.Tensor, speaker=None, digit=None) -> torch.Tensor:
        """log p(x [| speaker, digit]) of whole clips of codes x (B, T), from their first sample
        (nothing before it): (B,) nats, exact."""
        return self.step_log_probs(widened(self(x, speaker, digit)), x).sum(1)

    def step_log_probs(self, outputs: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """outputs (B, O, T), codes x (B, T) -> log p(x[t] | x[<t]) (B, T) in nats."""
        if self.cfg.output == "softmax":
            return -F.cross_entropy(outputs, x, reduction="none")
        return discretized_logistic_mixture_log_prob(outputs.transpose(1, 2), x, MU + 1)

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return crop_nll(self, batch)

    # --- as a scoring function (Parallel WaveNet's teacher) -----------------------------------
    def code_log_probs(self, outputs: torch.Tensor) -> torch.Tensor:
        """outputs (B, O, T) -> log P(x[t] = k | x[<t]) for every code k, (B, T, 256) nats."""
        if self.cfg.output == "softmax":
            return F.log_softmax(outputs, 1).transpose(1, 2)
        params = outputs.transpose(1, 2)[:, :, None, :]  # (B, T, 1, 3M)
        codes = torch.arange(MU + 1, device=outputs.device)
        return discretized_logistic_mixture_log_prob(params, codes.expand(*params.shape[:2], -1))

    def embed_continuous(self, y: torch.Tensor) -> torch.Tensor:
        """Continuous mu-law values y (B, T) in [-1, 1] (code k at 2k/255 - 1) -> embeddings
        (B, C, T). The forward value is the embedding of the nearest code (what the model was
        trained on); the gradient is that of the linear interpolation between the two
        neighbouring codes' embeddings (straight-through), so a generator upstream can learn."""
        p = (y.clamp(-1, 1) + 1) * (MU / 2)  # (B, T) in [0, 255]
        lo = p.detach().floor().clamp(max=MU - 1).long()
        frac = (p - lo)[..., None]
        table = self.embed.weight
        soft = table[lo] * (1 - frac) + table[lo + 1] * frac  # (B, T, C)
        hard = table[torch.round(p.detach()).long()]
        return (hard + soft - soft.detach()).transpose(1, 2)

    # --- generation ---------------------------------------------------------------------------
    def draw(self, out: torch.Tensor, u: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        """One step's outputs (B, O) and uniforms u (B, 2) -> codes (B,). Inverse-CDF sampling,
        so the same u gives the same codes whichever way the outputs were computed."""
        if self.cfg.output == "softmax":
            cdf = torch.softmax(out / temperature, -1).cumsum(-1)  # (B, 256)
            return torch.searchsorted(cdf, u[:, :1].contiguous()).squeeze(1).clamp(max=MU)
        return discretized_logistic_mixture_sample(out, u, MU + 1, temperature)

    def guided_streams(self, speaker, digit, guidance: float):
        """Classifier-free guidance's 2B streams: the B given clips, then the same clips with the
        digit hidden (id -1). Returns (speaker, digit) for them."""
        if self.cfg.output != "softmax":
            raise ConfigError("guidance needs output=softmax (it mixes logits)")
        if digit is None or self.digit is None:
            raise ConfigError(f"guidance {guidance} needs a digit-conditioned model and digit ids")
        spk = None if speaker is None else torch.cat([speaker, speaker])
        return spk, torch.cat([digit, torch.full_like(digit, -1)])

    @staticmethod
    def guide(out: torch.Tensor, guidance: float) -> torch.Tensor:
        """Outputs of the 2B guided streams (2B, O) -> the B guided logits
        l_free + guidance (l_digit - l_free)."""
        with_digit, free = out.chunk(2)
        return free + guidance * (with_digit - free)

    @torch.no_grad()
    def generate_naive(
        self, u: torch.Tensor, speaker=None, digit=None, temperature: float = 1.0,
        guidance: float | None = None,
    ) -> torch.Tensor:  # fmt: skip
        """Uniforms u (B, T, 2) -> codes (B, T), recomputing the network over the receptive field
        for every sample: O(T * R) work. The reference that `generate` must equal."""
        B, T, _ = u.shape
        guidance = self.cfg.guidance if guidance is None else guidance
        guided = guidance != 1
        if guided:
            speaker, digit = self.guided_streams(speaker, digit, guidance)
        x = torch.zeros(2 * B if guided else B, T, dtype=torch.long)
        R = self.cfg.receptive_field
        for t in range(T):
            lo = max(0, t - R)
            window = x[:, lo : t + 1]  # the last column is a placeholder for x[t]
            out = self(window, speaker, digit, torch.full((len(x),), lo))[:, :, -1]
            code = self.draw(self.guide(out, guidance) if guided else out, u[:, t], temperature)
            x[:, t] = torch.cat([code, code]) if guided else code
        return x[:B]

    @torch.no_grad()
    def generate(
        self, u: torch.Tensor, speaker=None, digit=None, temperature: float = 1.0,
        progress=None, method: str = "auto", guidance: float | None = None,
    ) -> torch.Tensor:  # fmt: skip
        """Uniforms u (B, T, 2) -> codes (B, T) with per-layer queues of past activations: O(layers)
        work per sample. `method`: "native" (the loop in C, `NativeGenerator`),
        "cached" (PyTorch, `CachedGenerator`), or "auto" (native where a C compiler exists).
        All give the same codes. `progress(n)` is called as samples are done. `guidance` (default:
        the config's) != 1 draws from l_free + guidance (l_digit - l_free) (see
        `WaveNetConfig.guidance`), running each clip twice, with and without its digit."""
        guidance = self.cfg.guidance if guidance is None else guidance
        if method == "auto":
            method = "native" if kernels.load("wavenet_generate") is not None else "cached"
        if method == "native":
            gen = NativeGenerator(self, speaker, digit, guidance)
            return gen.run(u, temperature, progress=progress)[0]
        if method == "cached":
            gen = CachedGenerator(self, u.shape[0], speaker, digit, guidance)
            return gen.run(u, temperature, progress)
        raise ConfigError(f"generation method must be auto, native or cached, not '{method}'")


class CachedGenerator:
    """The queues of one generation: for the input conv the last embedding, for a block with
    dilation d its last d inputs (a ring buffer). Every buffer starts at zero, which is exactly
    the causal padding of the training-time forward pass."""

    def __init__(self, net: WaveNet, batch: int, speaker=None, digit=None, guidance: float = 1.0):
        self.guidance = guidance
        if guidance != 1:  # each clip runs twice: with its digit, then without
            speaker, digit = net.guided_streams(speaker, digit, guidance)
            batch = 2 * batch
        self.net, self.batch, self.speaker, self.digit = net, batch, speaker, digit
        c = net.cfg.channels
        self.biases = self._biases(0)
        dtype = net.embed.weight.dtype
        self.prev_embed = torch.zeros(batch, c, dtype=dtype)
        self.queues = [torch.zeros(b.dilation, batch, c, dtype=dtype) for b in net.blocks]
        self.w1 = net.head1.weight[:, :, 0]
        self.w2 = net.head2.weight[:, :, 0]

    def _biases(self, t: int) -> list[torch.Tensor | None]:
        g = self.net.step_conditioning(self.speaker, self.digit, self.batch, t)
        return [b.cond_bias(g) for b in self.net.blocks]

    def step(self, t: int, prev_code: torch.Tensor | None) -> torch.Tensor:
        """Outputs (B, O) for x[t], given x[t-1] (None at t = 0); steps come in order."""
        net = self.net
        if net.position is not None and t % net.cfg.position_every == 0:  # a new position
            self.biases = self._biases(t)
        e = torch.zeros_like(self.prev_embed) if prev_code is None else net.embed(prev_code)
        h = net.input.step([self.prev_embed, e])
        self.prev_embed = e
        skip = 0
        for block, queue, bias in zip(net.blocks, self.queues, self.biases, strict=True):
            slot = t % block.dilation
            past = queue[slot].clone()
            queue[slot] = h
            h, s = block.step(past, h, bias)
            skip = skip + s
        hidden = F.relu(F.linear(F.relu(skip), self.w1, self.net.head1.bias))
        return F.linear(hidden, self.w2, self.net.head2.bias)

    def run(self, u: torch.Tensor, temperature: float = 1.0, progress=None) -> torch.Tensor:
        B, T, _ = u.shape
        x = torch.zeros(B, T, dtype=torch.long)
        guided, prev = self.guidance != 1, None
        for t in range(T):
            out = self.step(t, prev)
            code = self.net.draw(self.net.guide(out, self.guidance) if guided else out, u[:, t],
                                 temperature)  # fmt: skip
            x[:, t] = code
            prev = torch.cat([code, code]) if guided else code
            if progress is not None and (t + 1) % 1000 == 0:
                progress(1000)
        return x


class NativeGenerator:
    """Cached generation in C (genlab/nn/kernels/wavenet_generate.c): the computation of
    `CachedGenerator` with each layer's two matmuls fused (taps concatenated, residual and skip
    outputs concatenated), the layers' weights stacked and every queue in one buffer, the whole
    sample loop in one C call per `chunk` samples. What `WaveNet.generate` uses: ~48k samples/s
    for the default model on 2 cores, against ~1.2k for `CachedGenerator`, whose PyTorch
    operations are each too small to pay their call overhead (benchmarks/README.md).
    """

    def __init__(self, net: WaveNet, speaker=None, digit=None, guidance: float = 1.0):
        self.net, cfg, blocks = net, net.cfg, net.blocks
        self.guidance = guidance
        if guidance != 1:  # streams b and b + B: with and without the digit
            speaker, digit = net.guided_streams(speaker, digit, guidance)
        self.speaker, self.digit = speaker, digit

        def taps(conv):  # (out, in, 2) -> (2 in, out): [x(t - d), x(t)] @ w
            return torch.cat([conv.weight[:, :, 0].T, conv.weight[:, :, 1].T])

        def tr(conv):  # a 1x1 conv's (out, in, 1) -> (in, out)
            return conv.weight[:, :, 0].T

        with torch.no_grad():  # in the kernel's order; the gate biases (L, B, 2G) go after
            # the dilated taps, made by `bias` for each span of samples in `run`
            self.weights = [
                F.pad(net.embed.weight, (0, 0, 0, 1)),  # row 256 = 0: before the clip starts
                taps(net.input), net.input.bias,
                torch.stack([taps(b.conv) for b in blocks]),  # (L, 2C, 2G)
                torch.stack([tr(b.out) for b in blocks]), torch.stack([b.out.bias for b in blocks]),
                tr(net.head1), net.head1.bias, tr(net.head2), net.head2.bias,
            ]  # fmt: skip
        self.dilations = torch.tensor([b.dilation for b in blocks])
        self.sizes = (len(blocks), cfg.channels, cfg.gate_channels, cfg.skip_channels,
                      net.head2.out_channels, 0 if cfg.output == "softmax" else cfg.mixtures)  # fmt: skip

    @torch.no_grad()
    def bias(self, t: int, batch: int) -> torch.Tensor:
        """Each layer's gate bias plus its conditioning term at sample t: (L, B, 2G) float."""
        g = self.net.step_conditioning(self.speaker, self.digit, batch, t)
        b = torch.stack([b.conv.bias + (0 if g is None else b.cond_bias(g))
                         for b in self.net.blocks])  # fmt: skip
        L, G2 = b.shape[0], b.shape[-1]
        return (b[:, None] if b.dim() == 2 else b).float().expand(L, batch, G2).contiguous()

    def segments(self, T: int, chunk: int) -> list[tuple[int, int]]:
        """[t0, t1) spans of at most `chunk` samples, each within one position bucket."""
        cuts = set(range(0, T, chunk))
        if self.net.position is not None:
            every = self.net.cfg.position_every
            cuts |= set(range(0, min(T, every * self.net.cfg.position_buckets), every))
        cuts = sorted(cuts) + [T]
        return list(zip(cuts[:-1], cuts[1:], strict=True))

    @torch.no_grad()
    def run(
        self, u: torch.Tensor, temperature: float = 1.0, forced: torch.Tensor | None = None,
        keep_outputs: bool = False, progress=None, chunk: int = 1000,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:  # fmt: skip
        """Uniforms u (B, T, 2) -> codes (B, T) and, if `keep_outputs`, every step's outputs
        (B, T, O). With `forced` codes (B, T) it scores them instead of drawing (teacher
        forcing). `progress(n)` after each chunk. RuntimeError without a C compiler."""
        lib = kernels.load("wavenet_generate")
        if lib is None:
            raise RuntimeError("no C compiler for genlab's generation kernel")
        guided = self.guidance != 1
        if guided and forced is not None:
            raise ConfigError("teacher forcing scores codes; it takes no guidance")
        B, T, _ = u.shape  # the drawing streams; guided, the kernel runs 2B
        if guided:
            B = 2 * B
        L, C, G, S, O, mixtures = self.sizes
        position = self.net.position is not None
        weights = [w.float().contiguous() for w in self.weights]
        weights.insert(4, self.bias(0, B))
        queue = torch.zeros(int(self.dilations.sum()), B, C)  # zeros = the causal padding
        prev_embed = torch.zeros(B, C)
        prev_code = torch.full((B,), MU + 1, dtype=torch.long)
        u = u.float().contiguous()
        codes = torch.zeros(B, T, dtype=torch.long) if forced is None else forced.long().clone()
        outputs = torch.zeros(B, T, O) if keep_outputs else None
        ptr = ctypes.c_void_p
        for t0, t1 in self.segments(T, chunk):
            if position:  # each span lies within one position bucket
                weights[4] = self.bias(t0, B)
            status = lib.wavenet_generate(
                *(ctypes.c_int(v) for v in (B, T, L, C, G, S, O, mixtures)),
                *(ptr(w.data_ptr()) for w in weights),
                ptr(self.dilations.data_ptr()), ptr(queue.data_ptr()), ptr(prev_embed.data_ptr()),
                ptr(prev_code.data_ptr()), ptr(u.data_ptr()), ctypes.c_float(temperature),
                ptr(codes.data_ptr()), ctypes.c_int(t0), ctypes.c_int(t1),
                ctypes.c_int(forced is not None),
                ptr(None if outputs is None else outputs.data_ptr()),
                ctypes.c_int(guided), ctypes.c_float(self.guidance),
            )  # fmt: skip
            if status != 0:
                raise RuntimeError(f"wavenet_generate: a width exceeds its limit ({self.net.cfg})")
            if progress is not None:
                progress(t1 - t0)
        if guided:  # the B drawn streams (their outputs unguided, as the kernel computed them)
            half = B // 2
            return codes[:half], None if outputs is None else outputs[:half]
        return codes, outputs
