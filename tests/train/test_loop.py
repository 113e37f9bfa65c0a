"""The one training loop: determinism, exact resume, NaN handling, safe checkpoints, schedules, EMA."""

from __future__ import annotations

import json
import math
import os
import signal

import pytest
import torch
from torch import nn

from genlab.data.batches import InMemoryBatches
from genlab.errors import NonFiniteError
from genlab.train import state as state_mod
from genlab.train.config import TrainConfig, lr_factor
from genlab.train.logger import read_metrics
from genlab.train.loop import adam, fit, gradient_step, make_state
from genlab.train.state import EMA, read_checkpoint


class Noisy(nn.Module):
    """A tiny model whose loss uses the global RNG, as a VAE's reparameterization does."""

    def __init__(self, nan_at: float | None = None):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))
        self.nan_at = nan_at

    def loss(self, batch):
        noise = 0.1 * torch.randn_like(batch["x"])
        err = (self.net(batch["x"] + noise).squeeze(1) - batch["y"]).square().mean()
        if self.nan_at is not None and err.item() < self.nan_at:
            err = err * float("nan")
        return {"loss": err, "mse": err}


def data(seed: int = 0) -> InMemoryBatches:
    g = torch.Generator().manual_seed(123)
    x = torch.randn(256, 4, generator=g)
    return InMemoryBatches({"x": x, "y": x.sum(1).sin()}, 32, seed=seed)


def train(run_dir, steps, seed=0, **kw):
    cfg = TrainConfig(
        steps=steps, log_every=1, checkpoint_every=kw.pop("checkpoint_every", 5), seed=seed, **kw
    )
    torch.manual_seed(seed)
    state = make_state(Noisy(), cfg)
    return fit(state, data(seed), cfg, run_dir, progress=False), state


def losses(run_dir) -> list[float]:
    return [r["loss"] for r in read_metrics(run_dir)]


def test_same_seed_same_losses_and_different_seed_differs(tmp_path):
    train(tmp_path / "a", 20)
    train(tmp_path / "b", 20)
    train(tmp_path / "c", 20, seed=1)
    assert losses(tmp_path / "a") == losses(tmp_path / "b")
    assert losses(tmp_path / "a") != losses(tmp_path / "c")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_and_resumed_run_matches_uninterrupted(tmp_path, signum):
    kw = dict(warmup_steps=5, schedule="cosine", ema_decay=0.9, grad_clip=1.0)
    train(tmp_path / "full", 30, **kw)
    # The same run receives the signal during step 13: it finishes the step, saves and stops.
    split = tmp_path / "split"
    cfg = TrainConfig(steps=30, log_every=1, checkpoint_every=1000, **kw)
    torch.manual_seed(0)
    state = make_state(Noisy(), cfg)
    plain = gradient_step(cfg.grad_clip)

    def step_then_ctrl_c(state, batch):
        if state.step == 12:
            os.kill(os.getpid(), signum)
        return plain(state, batch)

    result = fit(state, data(), cfg, split, step_then_ctrl_c, progress=False)
    assert (result.status, result.step) == ("interrupted", 13)
    assert read_checkpoint(split)["step"] == 13
    torch.manual_seed(999)  # a resumed run must not depend on the caller's RNG state
    _, resumed = train(split, 30, **kw)
    assert resumed.step == 30
    assert losses(split) == losses(tmp_path / "full")
    assert [r["step"] for r in read_metrics(split)] == list(range(1, 31))


def test_resume_discards_metrics_logged_after_the_checkpoint(tmp_path):
    train(tmp_path / "ref", 15)
    train(tmp_path, 10)
    with open(
        tmp_path / "metrics.jsonl", "a"
    ) as f:  # rows a crashed run logged past its checkpoint
        f.write('{"step": 11, "loss": -1.0}\n{"step": 12, "loss": -1.0}\n')
    train(tmp_path, 15)
    assert [r["step"] for r in read_metrics(tmp_path)] == list(range(1, 16))
    assert losses(tmp_path) == losses(tmp_path / "ref")


def test_nan_loss_stops_with_step_and_metric_and_keeps_last_good_checkpoint(tmp_path):
    cfg = TrainConfig(steps=200, log_every=1, checkpoint_every=5, lr=0.05)
    torch.manual_seed(0)
    model = Noisy(nan_at=0.3)  # turns NaN once it has learned enough
    with pytest.raises(NonFiniteError) as err:
        fit(make_state(model, cfg), data(), cfg, tmp_path, progress=False)
    msg = str(err.value)
    assert "metric 'loss' is nan" in msg and "last good checkpoint" in msg
    bad_step = int(msg.split("step ")[1].split(":")[0])
    ckpt = read_checkpoint(tmp_path)
    assert ckpt["step"] == 5 * ((bad_step - 1) // 5)
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values())


def test_a_save_killed_midway_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    _, state = train(tmp_path, 5)
    good = read_checkpoint(tmp_path)

    def torn_save(obj, f):
        f.write(b"partial checkpoint bytes")
        raise KeyboardInterrupt  # the process dies mid-write

    monkeypatch.setattr(torch, "save", torn_save)
    state.step = 99
    with pytest.raises(KeyboardInterrupt):
        state_mod.save_checkpoint(state, tmp_path)
    monkeypatch.undo()
    assert read_checkpoint(tmp_path)["step"] == good["step"] == 5
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_minutes_budget_stops_on_time(tmp_path):
    cfg = TrainConfig(minutes=0.02, log_every=1000)  # 1.2 s
    result = fit(make_state(Noisy(), cfg), data(), cfg, tmp_path, progress=False)
    assert result.status == "done" and result.step > 10 and 1.0 < result.seconds < 5.0


def test_lr_warmup_then_cosine_matches_formula():
    cfg = TrainConfig(steps=110, warmup_steps=10, schedule="cosine")
    assert lr_factor(0, cfg) == pytest.approx(0.1)
    assert lr_factor(9, cfg) == pytest.approx(1.0)
    assert lr_factor(60, cfg) == pytest.approx(0.5)  # halfway through the cosine
    assert lr_factor(110, cfg) == pytest.approx(0.0, abs=1e-12)
    for s in (10, 35, 85):
        assert lr_factor(s, cfg) == pytest.approx(0.5 * (1 + math.cos(math.pi * (s - 10) / 100)))


def test_the_linear_schedule_falls_to_zero_at_the_last_step():
    cfg = TrainConfig(steps=110, warmup_steps=10, schedule="linear")
    assert lr_factor(9, cfg) == pytest.approx(1.0)
    assert [lr_factor(s, cfg) for s in (10, 35, 60, 110, 200)] == pytest.approx(
        [1.0, 0.75, 0.5, 0.0, 0.0])  # fmt: skip
    with pytest.raises(ValueError, match="the linear schedule needs a step budget"):
        TrainConfig(minutes=1, schedule="linear")


def test_a_schedule_that_ends_with_the_budget_takes_the_larger_progress():
    cfg = TrainConfig(steps=110, warmup_steps=10, schedule="linear", minutes=1,
                      schedule_ends="budget")  # fmt: skip
    assert lr_factor(35, cfg, time_fraction=0.1) == pytest.approx(0.75)  # the steps bind
    assert lr_factor(35, cfg, time_fraction=0.6) == pytest.approx(0.4)  # the clock binds
    assert lr_factor(5, cfg, time_fraction=0.9) == pytest.approx(0.6)  # warmup still counts steps
    assert lr_factor(60, cfg, time_fraction=1.3) == 0.0
    by_steps = TrainConfig(steps=110, warmup_steps=10, schedule="linear", minutes=1)
    assert lr_factor(35, by_steps, time_fraction=0.6) == pytest.approx(0.75)  # the clock ignored
    timed = TrainConfig(minutes=1, schedule="cosine", schedule_ends="budget")  # no --steps needed
    assert lr_factor(500, timed, time_fraction=0.5) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="schedule_ends must be one of steps, budget, got 'time'"):
        TrainConfig(steps=10, schedule_ends="time")
    with pytest.raises(ValueError, match="or --minutes with --schedule-ends budget"):
        TrainConfig(steps=None, schedule="linear", schedule_ends="budget")


def test_the_rate_reaches_zero_when_the_minutes_end_before_the_steps(tmp_path):
    def lrs(minutes: float) -> list[float]:
        cfg = TrainConfig(steps=10**7, minutes=minutes, lr=0.01, schedule="linear",
                          schedule_ends="budget", log_every=1, checkpoint_every=10**6)  # fmt: skip
        before = len(read_metrics(tmp_path)) if (tmp_path / "metrics.jsonl").is_file() else 0
        fit(make_state(Noisy(), cfg), data(), cfg, tmp_path, progress=False)
        return [r["lr"] for r in read_metrics(tmp_path)][before:]

    first = lrs(0.02)  # 1.2 s, far short of 10**7 steps: the rate follows the clock down
    assert first[0] > 0.009 and first[-1] < 0.0005
    assert first == sorted(first, reverse=True)
    # resumed with 1.2 s more: half the time budget is spent, so it goes on from about half
    again = lrs(0.02)
    assert 0.003 < again[0] < 0.007 and again[-1] < 0.0005
    assert again == sorted(again, reverse=True)


def _train_on_the_clock(out):
    from genlab.train import distributed as dist

    torch.manual_seed(0)
    cfg = TrainConfig(minutes=0.02, lr=0.01, schedule="linear", schedule_ends="budget",
                      log_every=10**6, checkpoint_every=10**6)  # fmt: skip
    state = make_state(Noisy(), cfg)
    fit(state, data(), cfg, out / "run", progress=False)
    torch.save({"step": state.step, "lr": state.optimizers["main"].param_groups[0]["lr"],
                "model": state.model.state_dict()}, out / f"rank{dist.rank()}.pt")  # fmt: skip


def test_two_processes_stop_at_one_step_and_share_the_schedules_clock(tmp_path):
    """Each process has its own clock: they must still stop at the same step (one that went on
    would wait forever for the other's gradients) and set the same rate, or the copies part."""
    from genlab.train import distributed as dist

    dist.launch(2, _train_on_the_clock, tmp_path)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    assert r0["step"] == r1["step"] > 10 and r0["lr"] == r1["lr"] < 0.0005
    for k in r0["model"]:
        assert torch.equal(r0["model"][k], r1["model"][k]), k


def test_optimizer_follows_the_schedule(tmp_path):
    train(tmp_path, 8, warmup_steps=4, lr=0.01)
    lrs = [r["lr"] for r in read_metrics(tmp_path)]
    assert lrs[:4] == pytest.approx([0.005, 0.0075, 0.01, 0.01])  # lr used for the *next* step


def naive_adamw(w, grads, lr, betas, weight_decay, eps=1e-8):
    """Adam with decoupled weight decay, written out for one tensor (Loshchilov & Hutter)."""
    m, v = torch.zeros_like(w), torch.zeros_like(w)
    for t, g in enumerate(grads, start=1):
        w = w * (1 - lr * weight_decay)
        m = betas[0] * m + (1 - betas[0]) * g
        v = betas[1] * v + (1 - betas[1]) * g * g
        m_hat, v_hat = m / (1 - betas[0] ** t), v / (1 - betas[1] ** t)
        w = w - lr * m_hat / (v_hat.sqrt() + eps)
    return w


@pytest.mark.parametrize("betas, weight_decay", [((0.9, 0.999), 0.0), ((0.0, 0.9), 0.1)])
def test_genlabs_fused_adam_is_adamw_written_out(betas, weight_decay):
    torch.manual_seed(0)
    w0 = torch.randn(5, 7, dtype=torch.float64)
    grads = [torch.randn(5, 7, dtype=torch.float64) for _ in range(6)]
    w = nn.Parameter(w0.clone())
    opt = adam([w], 0.01, betas=betas, weight_decay=weight_decay)
    assert opt.param_groups[0]["fused"]
    for g in grads:
        w.grad = g.clone()
        opt.step()
    assert torch.allclose(w.detach(), naive_adamw(w0, grads, 0.01, betas, weight_decay))
    assert not torch.allclose(w.detach(), w0)


def test_ema_update_is_the_formula():
    model = nn.Linear(3, 2)
    ema = EMA(model, 0.9)
    before = ema.shadow.weight.clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update(model)
    assert torch.allclose(ema.shadow.weight, 0.9 * before + 0.1 * model.weight)


@pytest.mark.parametrize("own_step", [False, True])
def test_the_loop_keeps_the_ema_once_per_step_whatever_the_step(tmp_path, own_step):
    """The default step and a model's own step (which never touches the EMA: a learned
    optimizer's meta-step, SPIRAL's) both leave shadow = the formula over the steps' weights."""
    cfg = TrainConfig(steps=3, ema_decay=0.5, log_every=1, checkpoint_every=100)
    torch.manual_seed(0)
    state = make_state(Noisy(), cfg)
    start = state.model.net[0].bias.detach().clone()
    seen = []
    plain = gradient_step()

    def set_weights(state, batch):  # a step of its own: bias = step + 1
        with torch.no_grad():
            state.model.net[0].bias.fill_(state.step + 1.0)
        return {"loss": torch.tensor(0.0)}

    def plain_step(state, batch):
        out = plain(state, batch)
        seen.append(state.model.net[0].bias.detach().clone())
        return out

    fit(state, data(), cfg, tmp_path, set_weights if own_step else plain_step, progress=False)
    weights = [torch.full_like(start, s + 1.0) for s in range(3)] if own_step else seen
    expected = start
    for w in weights:
        expected = 0.5 * expected + 0.5 * w
    torch.testing.assert_close(state.ema.shadow.net[0].bias, expected)


def test_gradient_clipping_bounds_the_global_norm():
    cfg = TrainConfig(steps=1, grad_clip=1e-3)
    torch.manual_seed(0)
    state = make_state(Noisy(), cfg)
    seen = []
    params = list(state.model.parameters())
    state.optimizers["main"].register_step_pre_hook(
        lambda *_: seen.append(nn.utils.get_total_norm([p.grad for p in params]))
    )
    metrics = gradient_step(cfg.grad_clip)(state, data().batch(0))
    assert metrics["grad_norm"] > 1e-2  # the raw norm is logged ...
    assert seen[0] == pytest.approx(1e-3, rel=1e-4)  # ... and the optimizer sees the clipped one


def test_config_written_and_metrics_are_json(tmp_path):
    train(tmp_path, 3)
    for line in (tmp_path / "metrics.jsonl").read_text().splitlines():
        assert set(json.loads(line)) >= {"step", "loss", "mse", "lr"}
    assert any((tmp_path / "tb").iterdir())


def test_cosine_without_steps_is_rejected():
    with pytest.raises(ValueError, match="cosine"):
        TrainConfig(minutes=1, schedule="cosine")


def test_training_works_even_if_the_caller_disabled_gradients(tmp_path):
    with torch.no_grad():
        result, _ = train(tmp_path, 3)
    assert result.step == 3


def test_profile_records_the_steps_asked_for_and_training_goes_on(tmp_path, capsys):
    result, _ = train(tmp_path, steps=6, profile=3)
    assert result.step == 6  # profiling three steps does not end the run
    trace = json.loads((tmp_path / "profile" / "trace.json").read_text())
    steps = {
        e["name"] for e in trace["traceEvents"] if e.get("name", "").startswith("ProfilerStep")
    }
    assert len(steps) == 3  # after one warm-up step
    top = (tmp_path / "profile" / "top_operations.txt").read_text()
    assert "aten::" in top and top in capsys.readouterr().err


def test_a_profile_longer_than_the_run_keeps_what_ran(tmp_path):
    train(tmp_path, steps=2, profile=50)
    assert (tmp_path / "profile" / "trace.json").is_file()
