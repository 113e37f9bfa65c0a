"""SPIRAL's painting environment: a valid gymnasium.Env on libmypaint, strokes land where the
action says (no transposition), programs re-render exactly and export to SVG and G-code, and the
NumPy fallback inks the same pixels as libmypaint."""

from __future__ import annotations

import ctypes.util

import numpy as np
import pytest

from genlab.envs import mypaint
from genlab.envs.paint import (
    PaintConfig,
    PaintEnv,
    bezier,
    from_json,
    ink,
    random_episode,
    render,
    to_gcode,
    to_json,
    to_svg,
)
from genlab.errors import ConfigError

gym = pytest.importorskip("gymnasium")
RENDERERS = ["numpy", pytest.param("mypaint", marks=pytest.mark.skipif(
    not mypaint.available(), reason=f"libmypaint missing (apt-get install {mypaint.PACKAGES})"))]  # fmt: skip


@pytest.mark.parametrize("renderer", RENDERERS)
def test_paint_env_passes_the_gymnasium_checker(renderer):
    from gymnasium.utils.env_checker import check_env

    check_env(PaintEnv(PaintConfig(renderer=renderer, episode_length=5)), skip_render_check=True)


@pytest.mark.parametrize("renderer", RENDERERS)
def test_a_stroke_lands_at_the_cell_it_names_not_its_transpose(renderer):
    env = PaintEnv(PaintConfig(renderer=renderer))
    env.reset(seed=0)
    far = 2 * 32 + 28  # row 2, column 28: x = 57, y = 5 on the 64-pixel canvas
    assert env.cell_point(far) == (57.0, 5.0)
    env.step({"flag": 0, "end": far, "control": far, "pressure": 3, "size": 1})  # move only
    assert ink(env.render()).max() == 0  # moving leaves no ink
    below = 20 * 32 + 28  # row 20, same column: a vertical line x = 57, y 5 -> 41
    obs, *_ = env.step({"flag": 1, "end": below, "control": below, "pressure": 3, "size": 1})
    painted = ink(obs["canvas"]) > 0.5
    assert painted[10:36, 56:59].all()  # the line, where x is the column
    assert not painted[:, :50].any() and not painted[50:].any()
    assert env.program()[1].start == (57.0, 5.0)  # the pen is where the move ended


@pytest.mark.parametrize("renderer", RENDERERS)
def test_a_program_re_renders_the_canvas_exactly(renderer):
    cfg = PaintConfig(renderer=renderer, colors=4)
    env = PaintEnv(cfg)
    obs = random_episode(env, seed=3)
    program, canvas = from_json(to_json(env.program(), cfg.canvas))
    assert program == env.program() and canvas == 64
    assert np.array_equal(render(program, canvas, renderer), obs["canvas"])
    assert ink(obs["canvas"]).max() > 0.2


@pytest.mark.skipif(not mypaint.available(), reason="libmypaint missing")
def test_the_numpy_fallback_inks_the_pixels_libmypaint_inks():
    env = PaintEnv(PaintConfig(renderer="mypaint"))
    ious = []
    for seed in range(20):
        real = ink(random_episode(env, seed)["canvas"]) > 0.1
        fallback = ink(render(env.program(), 64, "numpy")) > 0.1
        ious.append((real & fallback).sum() / max(1, (real | fallback).sum()))
    assert np.mean(ious) >= 0.8 and min(ious) >= 0.7, np.round(ious, 2)


def test_bezier_runs_from_start_to_end_through_the_formula_evenly_spaced():
    points = bezier((0, 0), (10, 20), (20, 0))
    assert np.allclose(points[0], (0, 0)) and np.allclose(points[-1], (20, 0))
    t = points[:, 0] / 20  # x of B(t): 2(1-t)t*10 + t^2*20 = 20t, so x gives each point's t
    assert np.all(np.diff(t) > 0)
    assert np.allclose(points[:, 1], 2 * (1 - t) * t * 20)  # y of B(t) with y0 = y2 = 0
    gaps = np.linalg.norm(np.diff(points, axis=0), axis=1)
    assert gaps.max() <= 1.0 + 1e-9 and gaps.min() >= 0.98 * gaps.max(), gaps
    # control on the start: even t would crowd the first points 1/N^2 apart
    gaps = np.linalg.norm(np.diff(bezier((10, 0), (10, 0), (10, 5)), axis=0), axis=1)
    assert gaps.min() >= 0.98 * gaps.max(), gaps
    assert len(bezier((3, 3), (3, 3), (3, 3))) == 2  # a dot


@pytest.mark.skipif(not mypaint.available(), reason="libmypaint missing")
def test_libmypaint_chatter_stays_off_stdout(capfd, monkeypatch):
    libc = ctypes.CDLL(None)
    canvas = mypaint.MyPaintCanvas(64)
    # straight thin strokes, where round-off in libmypaint's dab loop bites
    strokes = [bezier((10, 0), (10, 0), (10, length)) for length in range(3, 30)]

    def chatter() -> str:
        for points in strokes:
            canvas.stroke(points, 1.0, 1.0)
        libc.fflush(None)
        return capfd.readouterr().out

    assert chatter() == ""
    from contextlib import nullcontext

    monkeypatch.setattr(mypaint, "_c_stdout_silenced", nullcontext)
    assert "Time is running backwards" in chatter()  # so the stroke does make libmypaint talk


def test_program_exports_svg_and_gcode():
    env = PaintEnv(PaintConfig(renderer="numpy", episode_length=6))
    random_episode(env, seed=1)
    program = env.program()
    painted = [s for s in program if s.paint]
    svg = to_svg(program, 64)
    assert svg.startswith("<svg") and svg.count("<path") == len(painted)
    gcode = to_gcode(program, 64, width_mm=100.0)
    assert gcode.count("Z0.0") == len(painted)  # the pen goes down once per painted stroke
    moves = [line.split() for line in gcode.splitlines() if line.startswith("G1 X")]
    coords = [(float(x[1:]), float(y[1:])) for _, x, y, *_ in moves]
    assert all(0 <= x <= 100 and 0 <= y <= 100 for x, y in coords)
    first = painted[0]  # y is flipped: row 0 is the top of the paper
    assert f"G0 X{first.start[0] * 100 / 64:.2f} Y{(64 - first.start[1]) * 100 / 64:.2f}" in gcode


def test_episode_length_conditional_targets_and_errors():
    cfg = PaintConfig(renderer="numpy", episode_length=3, conditional=True)
    targets = np.zeros((2, 28, 28), np.uint8)  # MNIST-like: 255 is ink
    targets[:, 7:14] = 255
    env = PaintEnv(cfg, targets)
    obs, _ = env.reset(seed=0)
    assert obs["target"].shape == (64, 64, 3) and obs["step"][0] == 0
    assert (obs["target"][20:28] == 0).all() and (obs["target"][40:] == 255).all()  # ink: black
    steps = [env.step(env.action_space.sample()) for _ in range(3)]
    assert [s[2] for s in steps] == [False, False, True] and not any(s[3] for s in steps)
    assert all(s[1] == 0.0 for s in steps)  # the environment's own reward is always 0
    with pytest.raises(gym.error.ResetNeeded):
        env.step(env.action_space.sample())
    with pytest.raises(ConfigError, match="targets"):
        PaintEnv(cfg)
    with pytest.raises(ConfigError, match="grid"):
        PaintConfig(grid=128)


def test_a_missing_library_names_its_package(monkeypatch):
    mypaint.library.cache_clear()
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: "/nonexistent/libmypaint.so")
    with pytest.raises(mypaint.MyPaintMissing, match="libmypaint-1.5-1"):
        mypaint.MyPaintCanvas(64)
    monkeypatch.undo()
    mypaint.library.cache_clear()


# --- as an agent's task ----------------------------------------------------------------------
def test_paint_task_planes_reward_and_spec():
    from genlab.envs.paint_tasks import PaintTask, parse
    from genlab.envs.registry import env_spec

    assert parse("omniglot-target-l2") == ("omniglot", True, True)
    with pytest.raises(ConfigError, match="DATASET-target-l2"):
        parse("mnist-l2")
    targets = np.zeros((1, 28, 28), np.uint8)
    targets[0, 10:18, 10:18] = 255
    task = PaintTask("mnist-target-l2", PaintConfig(renderer="numpy", episode_length=2), targets)
    obs, _ = task.reset(seed=0)
    assert obs.shape == (4, 64, 64) and obs.dtype == np.uint8
    assert (obs[0] == 255).all() and obs[1].min() == 0 and (obs[2] == 0).all()
    assert np.argwhere(obs[3]).tolist() == [[32, 32], [32, 33], [33, 32], [33, 33]]  # mid-canvas
    move = {"flag": 0, "end": 3 * 32 + 5, "control": 0, "pressure": 0, "size": 0}  # row 3, col 5
    obs, r, term, _, _ = task.step(move)
    assert r == 0.0 and not term and (obs[2] == 128).all()  # halfway through the episode
    assert np.argwhere(obs[3]).tolist() == [[6, 10], [6, 11], [7, 10], [7, 11]]  # the pen's cell
    odd = PaintTask("mnist-target", PaintConfig(renderer="numpy", grid=24), targets)
    odd.reset(seed=0)
    obs, *_ = odd.step({**move, "end": 24 * 23 + 5})  # row 23 (the last), col 5
    rows, cols = np.nonzero(obs[3])
    assert set(rows * 24 // 64) == {23} and set(cols * 24 // 64) == {5}
    assert len(rows) == len(set(rows)) * len(set(cols)) and max(rows) == 63  # a whole cell
    obs, r, term, _, _ = task.step(move)
    target_ink = ink(task.env.target)
    assert term and r == pytest.approx(-float(np.mean(target_ink**2)))  # a blank canvas
    spec = env_spec("paint:mnist-target-l2", task)
    assert spec.action_names == ("flag", "end", "control", "pressure", "size")
    assert spec.action_sizes == (2, 1024, 1024, 4, 4) and spec.obs_scale == 1 / 255


def test_spatial_heads_decode_grid_cells_as_images():
    import torch

    from genlab.agents.impala.networks import AgentNet, SpatialLogits
    from genlab.envs.registry import EnvSpec

    logits = SpatialLogits(10, 32)(torch.randn(3, 10))
    assert logits.shape == (3, 1024)
    spec = EnvSpec("paint:mnist", "paint", (2, 64, 64), "uint8", 1 / 255, (2, 1024, 1024, 4, 4),
                   ("flag", "end", "control", "pressure", "size"))  # fmt: skip
    for torso, head in (("auto", "SpatialLogits"), ("paint_map", "MapLogits")):
        net = AgentNet(spec, torso, lstm=16)
        assert [type(layer).__name__ for layer in net.heads.layers] == [
            "Linear", head, head, "Linear", "Linear"]  # fmt: skip
        obs = torch.randint(0, 256, (1, 3, 2, 64, 64), dtype=torch.uint8)
        features, _ = net.core(obs, torch.ones(1, 3, dtype=torch.bool), net.initial_state(3))
        actions, logp = net.heads.sample(features[0])
        assert actions.shape == (3, 5) and (actions[:, 1] < 1024).all()
        assert torch.allclose(net.heads.evaluate(features[0], actions)[0], logp, atol=1e-5)
    with pytest.raises(ValueError, match="grid"):
        SpatialLogits(10, 24)


def test_map_logits_put_an_earlier_choice_back_on_its_own_cell():
    """MapLogits folds 2x2 grid cells into one map cell and unfolds its logits again: with
    weights that pass the earlier head's plane straight through, the logits are that plane."""
    import torch

    from genlab.agents.impala.networks import MapLogits

    head = MapLogits(features=5, channels=3, planes=1)
    with torch.no_grad():
        for p in head.parameters():
            p.zero_()
        mid, last = head.out[0], head.out[2]  # 3x3 conv (3 + 4 -> 3), 1x1 conv (3 -> 4)
        for k in range(3):  # sub-cells 0..2 pass the centre tap through the hidden channels
            mid.weight[k, 3 + k, 1, 1] = 1.0
            last.weight[k, k, 0, 0] = 1.0
        # sub-cell 3 has no hidden channel of its own: its logit stays 0
    choice = torch.tensor([0, 1, 32 * 7 + 4, 32 * 31 + 30])  # every sub-cell but (odd, odd)
    planes = torch.nn.functional.one_hot(choice, 1024).float().reshape(4, 1, 32, 32)
    logits = head(torch.randn(4, 5), torch.zeros(4, 3, 16, 16), planes)
    assert logits.shape == (4, 1024)
    assert torch.equal(logits.argmax(1), choice) and torch.equal(logits.sum(1), torch.ones(4))


def test_the_map_torso_keeps_the_core_and_value_off_the_map():
    import torch

    from genlab.agents.impala.networks import AgentNet
    from genlab.envs.registry import EnvSpec

    spec = EnvSpec("paint:mnist", "paint", (2, 64, 64), "uint8", 1 / 255, (2, 1024, 1024, 4, 4),
                   ("flag", "end", "control", "pressure", "size"))  # fmt: skip
    net = AgentNet(spec, "paint_map", lstm=16)
    obs = torch.randint(0, 256, (2, 3, 2, 64, 64), dtype=torch.uint8)
    features, state = net.core(obs, torch.zeros(2, 3, dtype=torch.bool), net.initial_state(3))
    assert features.shape == (2, 3, 16 + 16 * 16 * 16) and state.shape == (3, 2, 16)
    shuffled = torch.cat([features[..., :16], features[..., 16:].flip(-1)], -1)
    assert torch.equal(net.values(features), net.values(shuffled))
    with pytest.raises(ValueError, match="multiple of 8"):
        AgentNet(EnvSpec("paint:mnist", "paint", (2, 64, 64), "uint8", 1 / 255,
                         (2, 144, 144, 4, 4), spec.action_names), "paint_map")  # fmt: skip


def test_the_smaller_painter_sees_the_canvas_at_half_size_and_decodes_narrower():
    import torch

    from genlab.agents.impala.networks import AgentNet, SpatialLogits, paint_torso
    from genlab.envs.registry import EnvSpec

    spec = EnvSpec("paint:mnist", "paint", (2, 64, 64), "uint8", 1 / 255, (2, 1024, 1024, 4, 4),
                   ("flag", "end", "control", "pressure", "size"))  # fmt: skip
    torch.manual_seed(0)
    x = torch.rand(1, 2, 64, 64)
    checker = torch.tensor([[1.0, -1.0], [-1.0, 1.0]]).repeat(32, 32) * 0.1
    y = x + checker  # differs in every pixel, not in any 2x2 block's mean
    half, width = paint_torso(spec.obs_shape, pool=2)
    assert width == 256 and torch.allclose(half(x), half(y), atol=1e-5)
    full, _ = paint_torso(spec.obs_shape)
    assert not torch.allclose(full(x), full(y), atol=1e-3)
    net = AgentNet(spec, "paint_half", lstm=16, spatial_channels=8)
    assert net.heads.layers[1].net[0].out_features == 8 * 16
    assert SpatialLogits(10, 32, channels=8)(torch.randn(3, 10)).shape == (3, 1024)
    small = sum(p.numel() for p in net.parameters())
    assert small < sum(p.numel() for p in AgentNet(spec, "paint", lstm=16).parameters()) / 2


def test_impala_paints_towards_a_target_from_the_cli(data_root, tmp_path):
    from genlab.cli import main

    out = tmp_path / "painter"
    assert main(["train", "impala", "--env", "paint:mnist-target-l2", "--steps", "2",
                 "--batch-size", "2", "--lstm", "16", "--out", str(out), "--quiet"]) == 0  # fmt: skip
    log = (out / "metrics.jsonl").read_text().splitlines()
    assert (
        '"return"' in log[-1] and (out / "pictures" / "episode-paint-mnist-target-l2.gif").is_file()
    )
