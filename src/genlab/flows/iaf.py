"""Inverse autoregressive flow over 1-D signals (Kingma et al. 2016): the Parallel WaveNet student.

One step, in the sampling direction (noise -> signal), every time step at once:

    v_t = u_t * s_t + mu_t,    (mu_t, log s_t) = a causal WaveNet-like net of u[<t] (and g)

A stack of K steps maps logistic noise z (B, T) to a signal x (B, T). Since every step only looks
at the past of its input, x_t given x_<t (equivalently z_<t) is one logistic distribution with

    scale  S_t = prod_k s^k_t,      mean  M_t = sum_k mu^k_t prod_{j>k} s^j_t,

which is what probability density distillation scores against the teacher. The Jacobian dx/dz is
lower triangular with diagonal S_t, so log |det dx/dz| = sum_t log S_t.

genlab.flows convention: `forward` is data -> noise. For an IAF that direction is sequential (one
pass of the network per time step); it exists for tests and for scoring real signals. `inverse`
(noise -> data) is the fast direction and the one `sample` runs.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from genlab.nn import kernels
from genlab.nn.causal import CausalConv1d, GatedResidualBlock, receptive_field


class IAFStep(nn.Module):
    """One affine autoregressive step. The net: input causal conv on the signal shifted right one
    step (position t sees u[t-1], u[t-2]), gated residual blocks with `dilations`, the sum of
    skips -> ReLU -> 1x1 conv -> (mu, log s). The last conv starts at zero weights with log s
    biased to `init_log_scale`, so a new step is a fixed scaling of its input."""

    def __init__(
        self,
        channels: int,
        gate: int,
        dilations: Sequence[int],
        cond_dim: int = 0,
        init_log_scale: float = 0.0,
    ):
        super().__init__()
        self.input = CausalConv1d(1, channels, 2)
        self.blocks = nn.ModuleList(
            GatedResidualBlock(channels, gate, channels, d, cond_dim) for d in dilations
        )
        self.head = nn.Conv1d(channels, 2, 1)
        nn.init.zeros_(self.head.weight)
        with torch.no_grad():
            self.head.bias.copy_(torch.tensor([0.0, init_log_scale]))
        self.receptive_field = receptive_field(list(dilations))

    def shift_and_log_scale(
        self, u: torch.Tensor, g: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """u (B, T), g (B, G) or None -> mu (B, T), log s (B, T); column t sees u[<t] only."""
        h = self.input(F.pad(u[:, None], (1, -1)))  # (B, C, T)
        skip = 0
        for block in self.blocks:
            h, s = block(h, g)
            skip = skip + s
        out = self.head(F.relu(skip))  # (B, 2, T)
        return out[:, 0], out[:, 1]

    def inverse(
        self, u: torch.Tensor, context: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Noise side -> signal side, in parallel: (v (B, T), log |det dv/du| (B,))."""
        mu, log_s = self.shift_and_log_scale(u, context)
        return u * log_s.exp() + mu, log_s.sum(1)

    def forward(
        self, v: torch.Tensor, context: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Signal side -> noise side, one time step per pass (O(T) passes):
        (u (B, T), log |det du/dv| (B,))."""
        u = torch.zeros_like(v)
        log_s = torch.zeros_like(v)
        for t in range(v.shape[1]):
            mu_t, ls_t = (a[:, t] for a in self.shift_and_log_scale(u, context))
            u = u.clone()  # keep autograd's saved tensors intact
            u[:, t] = (v[:, t] - mu_t) * torch.exp(-ls_t)
            log_s[:, t] = ls_t
        return u, -log_s.sum(1)


def logistic_log_prob(z: torch.Tensor) -> torch.Tensor:
    """log of the standard logistic density, elementwise: -z - 2 log(1 + e^-z), in nats."""
    return -z - 2 * F.softplus(-z)


def logistic_noise(shape: Sequence[int], generator: torch.Generator | None = None) -> torch.Tensor:
    """Standard logistic samples, log(u) - log(1 - u) for u uniform, kept away from 0 and 1."""
    u = torch.rand(*shape, generator=generator).clamp(1e-5, 1 - 1e-5)
    return torch.log(u) - torch.log1p(-u)


class IAF(nn.Module):
    """K IAF steps, `steps[0]` applied to the noise first. Base distribution: standard logistic."""

    def __init__(self, steps: Sequence[IAFStep]):
        super().__init__()
        self.steps = nn.ModuleList(steps)

    @property
    def receptive_field(self) -> int:
        """How far back x_t's distribution looks in z: the steps' fields chained."""
        return 1 + sum(s.receptive_field - 1 for s in self.steps)

    def sample(
        self, z: torch.Tensor, g: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Noise z (B, T) -> the signal x (B, T) and its per-step logistic: mean M (B, T) and
        log scale log S (B, T), both functions of z[<t] only (so x = z * S + M)."""
        x, mean, log_scale = z, torch.zeros_like(z), torch.zeros_like(z)
        for step in self.steps:
            mu, log_s = step.shift_and_log_scale(x, g)
            s = log_s.exp()
            x, mean, log_scale = x * s + mu, mean * s + mu, log_scale + log_s
        return x, mean, log_scale

    def inverse(
        self, z: torch.Tensor, context: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Noise -> signal: (x (B, T), log |det dx/dz| (B,))."""
        x, _, log_scale = self.sample(z, context)
        return x, log_scale.sum(1)

    def forward(
        self, x: torch.Tensor, context: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Signal -> noise (sequential): (z (B, T), log |det dz/dx| (B,))."""
        logdet = x.new_zeros(x.shape[0])
        for step in reversed(self.steps):
            x, ld = step(x, context)
            logdet = logdet + ld
        return x, logdet

    def log_prob(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """log density of signals x (B, T) under the flow, (B,) nats (sequential: small T)."""
        z, logdet = self(x, context)
        return logistic_log_prob(z).sum(1) + logdet


class NativeIAF:
    """`IAF.sample`'s signal for one stream at a time, computed by the C kernel
    genlab/nn/kernels/iaf_forward.c (threads over time steps). The weights are packed once; the
    conditioning is folded into each layer's bias per stream."""

    def __init__(self, flow: IAF, threads: int | None = None):
        self.lib = kernels.load("iaf_forward")
        if self.lib is None:
            raise RuntimeError("no C compiler: use IAF.sample")
        self.threads = threads or torch.get_num_threads()
        self.steps = [self._pack(step) for step in flow.steps]

    @staticmethod
    def _pack(step: IAFStep) -> dict:
        blocks = list(step.blocks)
        b0 = blocks[0]
        f32 = {"dtype": torch.float32}
        with torch.no_grad():
            packed = {
                "C": b0.channels, "G": b0.gate, "S": b0.out.out_channels - b0.channels,
                "dilations": torch.tensor([b.dilation for b in blocks], dtype=torch.int32),
                "w_in": step.input.weight[:, 0, :].T.contiguous().to(**f32),  # (2, C)
                "b_in": step.input.bias.to(**f32).contiguous(),
                "w_z": torch.stack([torch.stack([b.conv.weight[:, :, 0].T, b.conv.weight[:, :, 1].T])
                                    for b in blocks]).to(**f32).contiguous(),  # (L, 2, C, 2G)
                "b_z": torch.stack([b.conv.bias for b in blocks]).to(**f32).contiguous(),
                "cond": [b.cond for b in blocks],
                "w_o": torch.stack([b.out.weight[:, :, 0].T for b in blocks]).to(**f32).contiguous(),
                "b_o": torch.stack([b.out.bias for b in blocks]).to(**f32).contiguous(),
                "w_h": step.head.weight[:, :, 0].T.contiguous().to(**f32),  # (S, 2)
                "b_h": step.head.bias.to(**f32).contiguous(),
            }  # fmt: skip
        return packed

    @torch.no_grad()
    def sample(self, z: torch.Tensor, g: torch.Tensor | None = None) -> torch.Tensor:
        """Noise z (T,) and conditioning g (G,) or None -> the signal x (T,)."""
        x = z.to(torch.float32).contiguous()
        for p in self.steps:
            b_z = p["b_z"]
            if g is not None:
                b_z = (b_z + torch.stack([c(g) for c in p["cond"]])).contiguous()
            out = torch.empty_like(x)
            C, G, S = p["C"], p["G"], p["S"]
            scratch = torch.empty(len(x) * (2 * C + S))
            ptr = [t.data_ptr() for t in (p["dilations"], x, out, p["w_in"], p["b_in"], p["w_z"],
                                          b_z, p["w_o"], p["b_o"], p["w_h"], p["b_h"], scratch)]  # fmt: skip
            if self.lib.iaf_step(len(x), C, G, S, len(p["dilations"]), *[ctypes.c_void_p(q) for q in ptr],
                                 self.threads) != 0:  # fmt: skip
                raise RuntimeError(f"iaf_step: widths C={C}, G={G}, S={S} are too large")
            x = out
        return x
