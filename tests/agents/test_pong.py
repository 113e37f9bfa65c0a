"""Pong frames for a world model: the preprocessing keeps a 2x4-pixel ball, positions come from
the screen's colours, a collected episode is labelled and resumable, and V and PixelVAE train and
are evaluated on the frames from the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from genlab.agents.world_models import pong
from genlab.data.images import image_splits


def screen(ball=None, opponent=None, player=None) -> np.ndarray:
    """A synthetic (210, 160, 3) screen: background, walls, and objects with their top-left
    corners at the given playfield (x, y): ball 2x4 pixels, paddles 4x16."""
    s = np.empty((210, 160, 3), np.uint8)
    s[:] = pong.BACKGROUND
    s[24:34] = s[194:] = pong.COLOURS["ball"]  # the walls share the ball's colour
    for name, at, (w, h) in (("ball", ball, (2, 4)), ("opponent", opponent, (4, 16)),
                             ("player", player, (4, 16))):  # fmt: skip
        if at is not None:
            x, y = at
            s[34 + y : 34 + y + h, x : x + w] = pong.COLOURS[name]
    return s


def test_any_pool_matches_a_loop():
    rng = np.random.default_rng(0)
    mask = rng.random((160, 160)) > 0.995
    got = pong.any_pool(mask, 64)
    want = np.zeros((64, 64), bool)
    for r, c in zip(*np.nonzero(mask), strict=True):
        want[r * 64 // 160, c * 64 // 160] = True
    assert (got == want).all() and want.sum() > 50


@pytest.mark.parametrize("x, y", [(0, 0), (77, 40), (158, 156), (101, 3)])
def test_the_ball_survives_preprocessing_where_its_label_says(x, y):
    s = screen(ball=(x, y), opponent=(16, 60), player=(140, 100))
    frame = pong.preprocess(s)[..., 0]
    where = pong.positions(s)
    bx, by = where["ball"]
    assert bx == pytest.approx((x + 1) * 0.4 - 0.5) and by == pytest.approx((y + 2) * 0.4 - 0.5)
    near = frame[max(0, round(by) - 1) : round(by) + 2, max(0, round(bx) - 1) : round(bx) + 2]
    assert near.max() == 255  # drawn within a pixel of the label
    assert frame.sum() // 255 <= 2 * 3 + 2 * (3 * 8)  # ball + two paddles, walls cropped off
    assert where["opponent"] == pytest.approx([(16 + 2) * 0.4 - 0.5, (60 + 8) * 0.4 - 0.5])


def test_objects_off_screen_are_nan_and_a_blank_field_is_black():
    s = screen()
    assert all(np.isnan(v).all() for v in pong.positions(s).values())
    assert pong.preprocess(s).max() == 0
    with pytest.raises(ValueError, match="210, 160, 3"):
        pong.preprocess(s[:200])


def test_the_open_field_keeps_balls_away_from_both_paddles():
    nan = float("nan")
    ball = torch.tensor([[30.0, 5], [10.0, 5], [53.0, 5], [nan, nan], [8.0, 5]])
    opponent = torch.tensor([[6.7, 20]] * 4 + [[nan, nan]])  # the last frame: no paddle
    player = torch.full((5, 2), 56.7)
    got = pong.in_open_field({"ball": ball, "opponent": opponent, "player": player}, 4)
    assert got.tolist() == [True, False, False, False, True]  # 3.3 and 3.7 from a paddle: near


def test_a_pong_episode_is_labelled_frame_by_frame(tmp_path):
    pytest.importorskip("ale_py")
    from genlab.agents.world_models.games import collect
    from genlab.data.episodes import episode_files, load_episode

    report = collect(tmp_path, 2, workers=1, max_steps=40, seed=1, progress=False, env="atari:Pong")
    assert report["new_episodes"] == 2
    episode = load_episode(episode_files(tmp_path)[0])
    assert episode.frames.shape == (41, 64, 64, 1) and set(np.unique(episode.frames)) <= {0, 255}
    assert episode.actions.shape == (40, 1) and set(np.unique(episode.actions)) <= {-1, 0, 1}
    assert {k: v.shape for k, v in episode.labels.items()} == {k: (41, 2) for k in pong.COLOURS}
    again = pong.play(1 * 100_003 + 0, 40)  # episode i is replayed by its seed
    assert (again.frames == episode.frames).all()
    np.testing.assert_array_equal(again.labels["ball"], episode.labels["ball"])


def test_m_refuses_pong_episodes_of_the_old_action_format_in_one_line(tmp_path):
    from genlab.agents.world_models.sequences import encode_episodes
    from genlab.data.episodes import Episode, episode_path, save_episode
    from genlab.errors import DataError

    old = Episode(np.zeros((4, 64, 64, 1), np.uint8), np.array([0, 5, 2], np.int64),
                  np.zeros(3, np.float32), np.zeros(3, bool))  # fmt: skip
    save_episode(old, episode_path(tmp_path, 0))
    with pytest.raises(DataError, match=r"episode_00000.npz: actions of shape \(3,\).*collect"):
        encode_episodes(None, [episode_path(tmp_path, 0)], progress=False)


@pytest.fixture(scope="module")
def pong_data(tmp_path_factory):
    """Two collected Pong episodes of 150 steps (the second held out), from the CLI."""
    pytest.importorskip("ale_py")
    from genlab.cli import main

    d = tmp_path_factory.mktemp("wm")
    assert main(["worldmodels", "collect", str(d), "--env", "atari:Pong", "--episodes", "2",
                 "--workers", "1", "--max-steps", "150"]) == 0  # fmt: skip
    assert (d / "data" / "pong" / "episode_00001.npz").is_file()
    return d / "data"


TINY_DECODER = ["--decoder-layers", "2", "--decoder-channels", "8", "--channels", "8",
                "--hidden", "32"]  # fmt: skip


@pytest.mark.parametrize("model, extra", [("vae", []), ("pixelvae", TINY_DECODER)])
def test_v_and_pixelvae_on_pong_frames_report_the_ball_from_the_cli(
    pong_data, tmp_path, capsys, model, extra
):
    from genlab.cli import main

    data = ["--data", "pong", "--data-dir", str(pong_data)]
    tiny = ["--steps", "2", "--batch-size", "8", "--quiet"]
    run = str(tmp_path / model)
    assert main(["train", model, *data, "--out", run, *extra, *tiny]) == 2
    assert "--image-size 28: pong's images are 1x64x64" in capsys.readouterr().err
    assert main(["train", model, *data, "--image-size", "64", "--out", run, *extra, *tiny]) == 0
    capsys.readouterr()
    assert main(["eval", run, "--data-dir", str(pong_data), "--k", "2", "--n", "60",
                 "--json"]) == 0  # fmt: skip
    seen = json.loads(capsys.readouterr().out)["objects"]
    first = {k: v[:60] for k, v in image_splits("pong", pong_data).test_labels.items()}
    assert seen["ball_frames"] == int(pong.in_open_field(first, 2 + 2).sum()) > 0
    assert seen["opponent_frames"] == int((~first["opponent"].isnan().any(1)).sum()) > 0
    assert seen["probe_frames"] == int((~first["ball"].isnan().any(1)).sum())
    assert seen["ball_in_truth"] == 1.0  # every labelled ball is drawn where its label says


@pytest.mark.parametrize("v", ["vae", "pixelvae"])
def test_the_pong_pipeline_runs_with_either_v_from_the_cli(pong_data, tmp_path, capsys, v):
    """V (a World Models VAE, or a PixelVAE linked in as DIR/vae), M on its latents, C searched
    in the real game, then evaluated: the talk's comparison, stage by stage."""
    from genlab.cli import main

    (tmp_path / "data").symlink_to(pong_data)
    d, tiny = str(tmp_path), ["--workers", "1", "--max-steps", "30"]
    small = ["--steps", "2", "--batch-size", "8", "--quiet"]
    if v == "vae":
        assert main(["worldmodels", "train-v", "--env", "atari:Pong", d, *small]) == 0
        assert json.loads((tmp_path / "vae" / "config.json").read_text())["model_options"][
            "image_channels"] == 1  # fmt: skip
    else:
        assert main(["train", "pixelvae", "--data", "pong", "--data-dir", str(pong_data),
                     "--image-size", "64", "--out", str(tmp_path / "vae"), *TINY_DECODER,
                     *small]) == 0  # fmt: skip
    assert main(["worldmodels", "train-m", d, "--steps", "2", "--batch-size", "2", "--seq-len",
                 "8", "--hidden", "16", "--quiet"]) == 0  # fmt: skip
    m = json.loads((tmp_path / "mdnrnn" / "config.json").read_text())["model_options"]
    assert m["action_dim"] == 1 and m["latent_dim"] == 32
    assert main(["worldmodels", "train-c", d, "--popsize", "3", "--generations", "1",
                 *tiny]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["worldmodels", "eval", d, "--controller", "controller", "--episodes", "2",
                 *tiny]) == 0  # fmt: skip
    report = json.loads(capsys.readouterr().out.splitlines()[0])
    # a point takes longer than 30 steps (120 frames) from the serve: no one scores yet
    assert report["returns"] == [0.0, 0.0] and report["env_steps"] == 60


class Replay:
    """A stand-in model whose reconstruction of code i is `frames[i]`."""

    def __init__(self, frames: torch.Tensor):
        self.frames = frames

    def mean_image(self, z: torch.Tensor) -> torch.Tensor:
        return self.frames[z[:, 0].long()]


def test_a_perfect_reconstruction_keeps_everything_and_a_lit_one_raises_alarms(pong_data):
    from genlab.tasks.images import objects_kept

    splits = image_splits("pong", pong_data)
    x = splits.test_x[:120].float() / 255  # (N, 1, 64, 64)
    z = torch.arange(len(x), dtype=torch.float32)[:, None]  # code i: frame i
    perfect = objects_kept(Replay(x), x, z, splits.test_labels)
    assert perfect["ball_kept"] == perfect["opponent_kept"] == 1.0
    assert perfect["ball_false_alarms"] == 0.0 and perfect["ball_frames"] > 0
    lit = objects_kept(Replay(torch.ones_like(x)), x, z, splits.test_labels)
    assert lit["ball_kept"] == 1.0 and lit["ball_false_alarms"] == 1.0
    blank = objects_kept(Replay(torch.zeros_like(x)), x, z, splits.test_labels)
    assert blank["ball_kept"] == blank["opponent_kept"] == 0.0
