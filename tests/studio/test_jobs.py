"""A training started from the studio: one at a time, followed through its metrics, stopped as
Ctrl-C stops it (the checkpoint is saved), and a failed one's error line reported."""

from __future__ import annotations

import time

import pytest

from genlab.errors import ConfigError
from genlab.studio.guard import Busy
from genlab.studio.jobs import Preset, Trainer
from genlab.train.state import read_checkpoint
from studio_helpers import VAE

TINY = Preset("tiny VAE", "vae", 2.0, ("--steps", "100000", "--log-every", "5", *VAE))


def wait_for(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"waited {seconds} s for {what}")


def test_a_preset_trains_one_at_a_time_and_stops_with_its_checkpoint_saved(tmp_path, data_root):
    trainer = Trainer(tmp_path, {"tiny": TINY})
    assert trainer.status()["state"] == "idle"
    with pytest.raises(ConfigError, match="unknown preset 'vae-9min'; one of tiny"):
        trainer.start("vae-9min")
    started = trainer.start("tiny")
    try:
        assert started["state"] == "running" and started["run"].startswith("tiny-")
        with pytest.raises(Busy, match="a training is running"):
            trainer.start("tiny")
        first = wait_for(lambda: trainer.status()["step"], 15, "the first metrics row")
        wait_for(lambda: trainer.status()["step"] > first, 10, "the curve to move")
        assert 0 < trainer.status()["progress"] < 1
        assert trainer.stop()["state"] == "stopping"
        wait_for(lambda: trainer.status()["state"] != "stopping", 15, "the training to stop")
    finally:
        trainer.close()
    status = trainer.status()
    assert status["state"] == "stopped" and status["progress"] == 1.0
    ckpt = read_checkpoint(tmp_path / status["run"])
    assert ckpt["step"] >= status["step"] > 0  # saved at the step it stopped
    with pytest.raises(Exception, match="no training is running"):
        trainer.stop()


def test_a_failed_training_reports_its_error_line(tmp_path):
    trainer = Trainer(tmp_path, {"bad": Preset("bad", "vae", 1.0, ("--likelihood", "poisson"))})
    trainer.start("bad")
    wait_for(lambda: trainer.status()["state"] == "failed", 15, "the training to fail")
    assert "likelihood must be one of" in trainer.status()["error"]
