"""C, the controller: one linear layer from [z_t, h_t] to the action, so that its few hundred
parameters can be searched by CMA-ES (Ha & Schmidhuber 2018, section 2.3).

    a_t = squash(W [z_t, h_t] + b),  W (A, Z + H), b (A,): (Z + H) * A + A parameters
    (Doom: C reads M's cell state too, [z_t, h_t, c_t], as the paper's; H then counts both)
    CarRacing ("car", A = 3): steering = tanh(.) in [-1, 1]; gas = (tanh(.) + 1) / 2 in [0, 1];
    brake = clip(tanh(.), 0, 1) as in the paper's code ("clip": half of the brake's range is no
    brake at all, so a controller near zero drives off at half gas), or (tanh(.) + 1) / 2
    ("shift": a controller near zero brakes at 0.5; genlab's searches before 2026-11-23)
    Doom Take Cover ("doom", A = 1): tanh(.) quantised to left (-1) below -1/3, right (+1)
    above 1/3, stay (0) between, as the paper's code; M reads the quantised value
    Pong ("pong", A = 1): the same three-way move, down (-1), stay (0) or up (+1)

Plain NumPy: it runs inside the evaluation worker processes, one call per environment step.
"""

from __future__ import annotations

import numpy as np

from genlab.errors import ConfigError

BRAKES = ("clip", "shift")
OUTPUTS = {"car": 3, "doom": 1, "pong": 1}  # C's output kinds and their action sizes


def three_way(u: np.ndarray) -> np.ndarray:
    """tanh outputs (..., 1) in [-1, 1] -> the move in {-1, 0, 1} (Doom: left, stay, right;
    Pong: down, stay, up)."""
    return np.where(u < -1 / 3, -1.0, np.where(u > 1 / 3, 1.0, 0.0))


def controller_size(latent_dim: int, hidden: int, action_dim: int = 3) -> int:
    """Parameters of the linear controller: (Z + H) * A + A (867 for Z=32, H=256, A=3)."""
    return (latent_dim + hidden) * action_dim + action_dim


class LinearController:
    """The controller whose weights are the flat vector `params` (W row-major, then b);
    `hidden` is the size of what C reads of M (H, or 2H with the cell state)."""

    def __init__(
        self, params: np.ndarray, latent_dim: int, hidden: int, brake: str = "clip",
        output: str = "car",
    ):  # fmt: skip
        if brake not in BRAKES:
            raise ConfigError(f"brake must be one of {BRAKES}, not '{brake}'")
        if output not in OUTPUTS:
            raise ConfigError(f"controller output must be one of {', '.join(OUTPUTS)}, not "
                              f"'{output}'")  # fmt: skip
        action_dim = OUTPUTS[output]
        n_in = latent_dim + hidden
        expected = controller_size(latent_dim, hidden, action_dim)
        params = np.asarray(params, dtype=np.float64)
        if params.shape != (expected,):
            raise ConfigError(f"controller needs {expected} parameters ((Z + H) * A + A with "
                              f"Z={latent_dim}, H={hidden}, A={action_dim}), got {params.shape}")  # fmt: skip
        self.weight = params[: n_in * action_dim].reshape(action_dim, n_in)
        self.bias = params[n_in * action_dim :]
        self.n_in, self.brake, self.output = n_in, brake, output

    def __call__(self, observation: np.ndarray) -> np.ndarray:
        """[z, h] (..., Z + H) -> actions (..., A) float32: CarRacing's steer, gas, brake, or
        Doom's or Pong's move."""
        if observation.shape[-1:] != (self.n_in,):
            raise ConfigError(f"controller input must be (..., {self.n_in}), got "
                              f"{observation.shape}")  # fmt: skip
        a = np.tanh(observation @ self.weight.T + self.bias)  # (..., A)
        if self.output in ("doom", "pong"):
            return three_way(a).astype(np.float32)
        a[..., 1] = (a[..., 1] + 1) / 2
        a[..., 2] = np.clip(a[..., 2], 0.0, 1.0) if self.brake == "clip" else (a[..., 2] + 1) / 2
        return a.astype(np.float32)
