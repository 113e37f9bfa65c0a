"""Shared by the studio's tests: tiny training command lines and a client of the app."""

from __future__ import annotations

import pytest

TestClient = pytest.importorskip(
    "fastapi.testclient", reason="the studio extra (fastapi, uvicorn) is not installed"
).TestClient

VAE = ["--latent-dim", "2", "--channels", "4", "--hidden", "16", "--batch-size", "32"]
TINY = {
    "vae": ["vae", "--steps", "30", *VAE],
    "classifier": ["classifier", "--steps", "30", "--channels", "4", "--features", "16"],
    "glow": ["glow", "--steps", "3", "--levels", "1", "--depth", "2", "--hidden", "8"],
    "maml": ["maml", "--steps", "2", "--channels", "4", "--ways", "3", "--eval-inner-steps", "2"],
    "spiral": ["spiral", "--steps", "2", "--batch-size", "2", "--lstm", "16",
               "--env", "paint:mnist-target-l2", "--reward", "l2"],
    "a2c": ["a2c", "--steps", "2", "--batch-size", "2"],
    "rl2": ["rl2", "--steps", "3", "--arms", "3", "--pulls", "10", "--hidden", "8", "--batch-size", "4"],
    "wavenet": ["wavenet", "--steps", "2", "--channels", "4", "--gate-channels", "4",
                "--skip-channels", "8", "--stacks", "1", "--layers", "3", "--crop", "200",
                "--batch-size", "4", "--sample-seconds", "0.05"],
}  # fmt: skip

WORLD_MODEL = [
    ["collect", "--episodes", "2", "--workers", "1", "--max-steps", "8"],
    ["train-v", "--steps", "2", "--batch-size", "8", "--quiet"],
    ["train-m", "--steps", "2", "--batch-size", "2", "--seq-len", "4", "--hidden", "16", "--quiet"],
]


def studio_client(app, host="127.0.0.1:8765"):
    """A client that names the studio's bound address in its Host header."""
    return TestClient(app, base_url=f"http://{host}")
