"""Every studio endpoint through FastAPI's TestClient, on tiny real runs: what each returns,
and each refusal as a one-line JSON error while the server stays up."""

from __future__ import annotations

import base64
import io
import json
import wave

import numpy as np
import pytest
import torch
from PIL import Image

from genlab.data.images import image_splits
from genlab.envs.paint import from_json
from genlab.meta import bandits
from genlab.meta.live import prepare
from genlab.studio import app as studio_app
from genlab.studio import library as studio_library
from genlab.studio.app import create_app, default_keys
from genlab.studio.jobs import Preset, Trainer
from genlab.tasks import images as image_tasks
from genlab.tasks.runs import load_run
from studio_helpers import VAE, TestClient, studio_client


def decode_png(url: str) -> np.ndarray:
    assert url.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))


@pytest.fixture(scope="module")
def client(runs_root, tiny_run):
    for name in ("vae", "classifier", "glow", "spiral"):
        tiny_run(name)
    (runs_root / ".studio").mkdir(exist_ok=True)  # the trainer's logs: not a run
    broken = runs_root / "broken"
    broken.mkdir(exist_ok=True)
    (broken / "config.json").write_text("{not json")
    with studio_client(create_app(runs_root)) as c:
        yield c


def ok(response) -> dict:
    assert response.status_code == 200, response.text
    return response.json()


def refused(response, status: int, words: str) -> None:
    assert response.status_code == status, response.text
    message = response.json()["error"]
    assert words in message and "\n" not in message


# --- runs -----------------------------------------------------------------------------------------
def test_runs_list_every_run_with_its_pages_and_broken_ones_with_their_problem(client):
    runs = {r["run"]: r for r in ok(client.get("/api/runs"))["runs"]}
    assert {"vae", "classifier", "glow", "spiral", "broken"} <= set(runs)
    assert not any(name.startswith(".") for name in runs)
    assert runs["vae"]["pages"] == ["samples", "latent", "draw"]
    assert runs["classifier"]["pages"] == ["draw"] and runs["spiral"]["pages"] == ["paint"]
    assert runs["vae"]["step"] == 30 and runs["vae"]["training"] is False
    assert runs["broken"]["status"].startswith("broken")


def test_run_detail_metrics_curves_and_files(client):
    detail = ok(client.get("/api/run", params={"run": "vae"}))
    assert detail["config"]["model"] == "vae" and "pictures/samples.png" in detail["pictures"]
    picture = client.get("/api/file", params={"run": "vae", "path": "pictures/samples.png"})
    assert picture.status_code == 200 and picture.headers["content-type"] == "image/png"
    rows = ok(client.get("/api/metrics", params={"run": "vae"}))
    assert rows["next"] == len(rows["rows"]) >= 1 and rows["rows"][-1]["step"] == 30
    later = ok(client.get("/api/metrics", params={"run": "vae", "since": rows["next"]}))
    assert later == {"rows": [], "next": rows["next"]}
    svg = client.get("/api/curves.svg", params={"run": "vae"})
    assert svg.headers["content-type"].startswith("image/svg+xml") and "<svg" in svg.text
    assert default_keys(rows["rows"]) == ["loss", "kl", "neg_elbo", "rec"]
    assert 'id="axes_4"' in svg.text and 'id="axes_5"' not in svg.text  # a panel per key
    one = client.get("/api/curves.svg", params={"run": "vae", "keys": "kl"}).text
    assert 'id="axes_1"' in one and 'id="axes_2"' not in one
    assert ok(client.get("/api/runs/names"))["runs"] == sorted(
        r["run"] for r in ok(client.get("/api/runs"))["runs"])  # fmt: skip
    assert ok(client.get("/api/pictures", params={"run": "vae"}))["pictures"] == detail["pictures"]


@pytest.mark.parametrize(
    "params, status, words",
    [
        ({"run": "nosuch"}, 404, "no run 'nosuch'"),
        ({"run": "../vae"}, 403, "leaves its folder"),
        ({"run": "/etc"}, 403, "absolute"),
        ({"run": "vae", "path": "checkpoint.pt"}, 403, "only pictures"),
        ({"run": "vae", "path": "../classifier/config.json"}, 403, "leaves its folder"),
        ({"run": "vae", "path": "%2e%2e/classifier/config.json"}, 403, "not a plain"),
        ({"run": "vae", "path": "pictures/none.png"}, 404, "has no file"),
    ],
)
def test_run_and_file_refusals(client, params, status, words):
    endpoint = "/api/file" if "path" in params else "/api/run"
    refused(client.get(endpoint, params=params), status, words)


def test_encoded_traversal_in_the_raw_url_is_refused(client):
    refused(client.get("/api/file?run=vae&path=..%2F..%2Fetc%2Fpasswd"), 403, "leaves its folder")
    refused(client.get("/api/file?run=vae&path=%252e%252e%252fx"), 403, "not a plain")


def test_foreign_host_and_cross_origin_changes_are_refused(client, runs_root):
    with studio_client(create_app(runs_root), host="evil.example:8765") as rebinding:
        refused(rebinding.get("/api/runs"), 403, "host 'evil.example:8765'")
    refused(client.post("/api/train", json={"preset": "vae-1min"},
                        headers={"Origin": "http://evil.example"}), 403, "cross-origin")  # fmt: skip
    assert client.get("/api/runs", headers={"Origin": "http://evil.example"}).status_code == 200


def test_oversized_and_malformed_bodies_are_one_line_errors(client):
    big = {"run": "classifier", "drawing": [[0.5] * 700] * 700}
    refused(client.post("/api/draw", json=big), 413, "over 1,000,000 bytes")
    chunks = (part for part in (b'{"run": "classifier", ', b'"drawing": []}'))
    refused(client.post("/api/draw", content=chunks, headers={"Content-Type": "application/json"}),
            411, "Content-Length")  # fmt: skip
    refused(client.post("/api/draw", content=b"{nope", headers={"Content-Type": "application/json"}),
            400, "JSON")  # fmt: skip
    refused(client.post("/api/sample", json={"run": "vae", "n": "many"}), 400, "n: ")
    refused(client.post("/api/sample", json={"n": 2}), 400, "run: Field required")


def test_training_endpoints_start_refuse_a_second_and_stop(runs_root, tmp_path, data_root):
    trainer = Trainer(tmp_path, {"tiny": Preset("tiny", "vae", 1.0, ("--steps", "100000", *VAE))})
    with studio_client(create_app(runs_root, trainer=trainer)) as client:
        idle = ok(client.get("/api/train"))
        assert idle["state"] == "idle" and idle["presets"] == {"tiny": "tiny"}
        refused(client.post("/api/train/stop"), 400, "no training is running")
        refused(client.post("/api/train", json={"preset": "nosuch"}), 400, "unknown preset")
        try:
            assert ok(client.post("/api/train", json={"preset": "tiny"}))["state"] == "running"
            refused(
                client.post("/api/train", json={"preset": "tiny"}), 409, "a training is running"
            )
            assert ok(client.post("/api/train/stop"))["state"] == "stopping"
        finally:
            trainer.close()
        assert ok(client.get("/api/train"))["state"] == "stopped"  # even before it had begun


# --- samples --------------------------------------------------------------------------------------
def test_a_sample_grid_is_seeded_and_bounded(client):
    first = ok(client.post("/api/sample", json={"run": "vae", "n": 4, "seed": 3}))
    again = ok(client.post("/api/sample", json={"run": "vae", "n": 4, "seed": 3}))
    other = ok(client.post("/api/sample", json={"run": "vae", "n": 4, "seed": 4}))
    assert first["image"] == again["image"] != other["image"] and first["ms"] >= 0
    assert decode_png(first["image"]).shape == (2 * (2 + 2 * 30), 2 * (2 + 2 * 30))  # 2x2 cells
    refused(client.post("/api/sample", json={"run": "vae", "n": 0}), 400, "n must be between 1")
    refused(client.post("/api/sample", json={"run": "vae", "n": 65}), 400, "n must be between 1")
    refused(client.post("/api/sample", json={"run": "vae", "n": 2, "temperature": 0.5}), 400,
            "no sampling temperature")  # fmt: skip
    refused(client.post("/api/sample", json={"run": "vae", "n": 2, "label": 3}), 400,
            "not class-conditional")  # fmt: skip
    refused(client.post("/api/sample", json={"run": "classifier", "n": 2}), 400, "does not sample")


def test_a_flow_samples_at_the_temperature_asked(client):
    cold = ok(client.post("/api/sample", json={"run": "glow", "n": 4, "temperature": 0.0}))
    warm = ok(client.post("/api/sample", json={"run": "glow", "n": 4, "temperature": 1.0}))
    cells = decode_png(cold["image"]).astype(float)
    assert cold["image"] != warm["image"]
    assert np.allclose(cells[4:60, 4:60], cells[4:60, 64:120])  # T = 0: every sample the mode
    refused(client.post("/api/sample", json={"run": "glow", "n": 2, "temperature": 5}), 400,
            "temperature must be between")  # fmt: skip


def test_speech_samples_are_wav_clips_of_the_length_asked(runs_root, tiny_run):
    tiny_run("wavenet")
    with studio_client(create_app(runs_root)) as c:
        r = ok(c.post("/api/sample", json={"run": "wavenet", "n": 2, "seconds": 0.1}))
        assert len(r["clips"]) == 2 and r["image"].startswith("data:image/png")
        raw = base64.b64decode(r["clips"][0]["src"].split(",", 1)[1])
        with wave.open(io.BytesIO(raw)) as w:
            assert w.getnframes() == int(0.1 * w.getframerate()) and w.getnchannels() == 1
        refused(c.post("/api/sample", json={"run": "wavenet", "n": 2, "seconds": 30}), 400,
                "seconds must be between")  # fmt: skip


# --- latent explorer ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def vae(runs_root):
    _, options, model, _ = load_run(runs_root / "vae")
    return options, model


def test_latent_walk_ends_at_the_two_images_reconstructions(client, vae):
    options, vae = vae
    images = ok(client.get("/api/latent/images", params={"run": "vae"}))
    assert images["count"] == 24 and len(images["labels"]) == 24 and images["classes"][7] == "7"
    assert decode_png(images["image"]).shape == (2 * (2 + 30), 2 * (2 + 24 * 30))
    ends = []
    for t in (0.0, 1.0):
        r = ok(client.post("/api/latent/between", json={"run": "vae", "a": 0, "b": 1, "t": t,
                                                         "path": "spherical"}))  # fmt: skip
        ends.append(decode_png(r["image"])[::6, ::6] / 255.0)  # 6x nearest -> 28x28
    x, _ = image_tasks.test_images(options, image_splits("mnist"))  # as the model reads them
    expected = vae.mean_image(vae.embed(x[:2])).detach().numpy()[:, 0]
    for got, want in zip(ends, expected, strict=True):
        assert np.abs(got - want).max() < 0.01
    refused(client.post("/api/latent/between", json={"run": "vae", "a": 0, "b": 99999, "t": 0.5}),
            400, "image index must be between")  # fmt: skip
    refused(client.post("/api/latent/between", json={"run": "vae", "a": 0, "b": 1, "t": 2}), 400,
            "t must be between")  # fmt: skip
    refused(client.post("/api/latent/between", json={"run": "vae", "a": 0, "b": 1, "t": 0.5,
                                                      "path": "zigzag"}), 400, "path must be")  # fmt: skip
    refused(client.get("/api/latent/images", params={"run": "classifier"}), 400, "no latent space")


def test_latent_plane_and_attribute_vector(client):
    grid = ok(client.post("/api/latent/grid", json={"run": "vae", "center": 0, "size": 3}))
    assert decode_png(grid["image"]).shape == (2 * (2 + 3 * 30), 2 * (2 + 3 * 30))
    panned = ok(
        client.post("/api/latent/grid", json={"run": "vae", "center": 0, "size": 3, "x": 2})
    )
    assert panned["image"] != grid["image"]
    refused(client.post("/api/latent/grid", json={"run": "vae", "size": 99}), 400, "size must be")
    still = ok(client.post("/api/latent/attribute", json={"run": "vae", "image": 0, "src": 7,
                                                           "dst": 2, "strength": 0}))  # fmt: skip
    start = ok(client.post("/api/latent/between", json={"run": "vae", "a": 0, "b": 1, "t": 0}))
    assert still["image"] == start["image"]  # strength 0 is image 0's own reconstruction
    moved = ok(client.post("/api/latent/attribute", json={"run": "vae", "image": 0, "src": 7,
                                                           "dst": 2, "strength": 2}))  # fmt: skip
    assert moved["image"] != still["image"]
    refused(client.post("/api/latent/attribute", json={"run": "vae", "image": 0, "src": 7,
                                                        "dst": 42, "strength": 1}), 400,
            "no example of class 42")  # fmt: skip


# --- drawing, few-shot, painting ------------------------------------------------------------------
def stroke() -> list[list[float]]:
    d = np.zeros((28, 28))
    d[5:23, 13:16] = 1.0
    return d.tolist()


def test_a_drawing_is_classified_as_the_classifier_itself_would(client, runs_root):
    r = ok(client.post("/api/draw", json={"run": "classifier", "drawing": stroke()}))
    _, _, model, _ = load_run(runs_root / "classifier")
    want = model(prepare([np.array(stroke())])).softmax(-1)[0]
    assert np.allclose(r["probabilities"], want.detach().numpy(), atol=1e-3)
    assert r["label"] == int(want.argmax()) and abs(sum(r["probabilities"]) - 1) < 1e-3


def test_a_latent_model_reconstructs_a_drawing_and_finds_neighbours(client):
    r = ok(client.post("/api/draw", json={"run": "vae", "drawing": stroke()}))
    assert decode_png(r["reconstruction"]).shape == (112, 112)
    nearest = decode_png(r["nearest"])
    assert nearest.shape[1] == 2 * (2 + 8 * 30)
    _, options, model, _ = load_run(client.app.state.library.root / "vae")
    train, _ = image_tasks.model_input(options, image_splits("mnist").train_x[:10_000], 0)
    z = model.embed(prepare([np.array(stroke())]))  # (1, Z)
    first = (model.embed(train) - z).square().sum(1).argmin()  # the nearest training image
    want = np.kron(train[first, 0].numpy() * 255, np.ones((2, 2)))  # shown at 2x
    assert np.array_equal(nearest[4:60, 4:60], want.round())


@pytest.mark.parametrize(
    "drawing, words",
    [
        ([[0.0] * 28] * 27, "must be square"),
        ([[0.0] * 4] * 4, "8 to 112 pixels"),
        ([[2.0] * 28] * 28, "in [0, 1]"),
        ([["ink"] * 28] * 28, "drawing"),
        ("a picture", "drawing"),
    ],
)
def test_malformed_drawings_are_refused(client, drawing, words):
    refused(client.post("/api/draw", json={"run": "classifier", "drawing": drawing}), 400, words)


def test_few_shot_adapts_to_drawn_symbols(runs_root, tiny_run):
    tiny_run("maml")
    a, b = np.array(stroke()), np.array(stroke()).T
    c = np.eye(28)
    with studio_client(create_app(runs_root)) as client:
        body = {"run": "maml", "support": [a.tolist(), b.tolist(), c.tolist()],
                "labels": [0, 1, 2], "query": [a.tolist(), c.tolist()]}  # fmt: skip
        r = ok(client.post("/api/fewshot", json=body))
        assert r["ways"] == 3 and len(r["labels"]) == 2 and r["adapt_ms"] > 0
        assert all(abs(sum(p) - 1) < 1e-3 for p in r["probabilities"])
        refused(client.post("/api/fewshot", json={**body, "labels": [0, 1, 5]}), 400,
                "labels must be in 0..2")  # fmt: skip
        refused(client.post("/api/fewshot", json={**body, "run": "vae"}), 400,
                "not a few-shot learner")  # fmt: skip


def test_a_painting_is_replayed_stroke_by_stroke_with_its_program(client):
    r = ok(client.post("/api/paint", json={"run": "spiral", "target": stroke(), "seed": 1}))
    program, canvas = from_json(r["json"])
    assert len(r["frames"]) == r["strokes"] + 1 == len(program) + 1 and canvas == 64
    assert r["svg"].startswith("<svg") and r["gcode"].startswith("G21")
    assert decode_png(r["frames"][0]).min() == 255  # a blank canvas first
    again = ok(client.post("/api/paint", json={"run": "spiral", "target": stroke(), "seed": 1}))
    assert again["json"] == r["json"]  # sampled from the seed: the same program again
    other = ok(client.post("/api/paint", json={"run": "spiral", "target": stroke(), "seed": 2}))
    assert other["json"] != r["json"]
    greedy = [
        ok(
            client.post(
                "/api/paint", json={"run": "spiral", "seed": s, "greedy": True, "target": stroke()}
            )
        )
        for s in (1, 2)
    ]
    assert greedy[0]["json"] == greedy[1]["json"]  # the likeliest choices, whatever the seed
    refused(client.post("/api/paint", json={"run": "vae"}), 400, "is not a painter")
    chosen = ok(client.post("/api/paint", json={"run": "spiral", "test_image": 3}))
    want = image_splits("mnist").test_x[3, 0].numpy()  # (28, 28) ink
    want = np.asarray(Image.fromarray(want).resize((64, 64), Image.Resampling.BILINEAR))
    seen = 255 - decode_png(chosen["target"])[::2, ::2].mean(-1)  # the canvas' 64x64 ink
    assert np.corrcoef(seen.ravel(), want.ravel().astype(float))[0, 1] > 0.95
    assert 0 <= chosen["mse"] <= 1
    refused(client.post("/api/paint", json={"run": "spiral", "test_image": -1}), 400,
            "test image must be between")  # fmt: skip


def test_a_bandit_episode_is_played_on_the_same_draws_by_user_agent_and_gittins(
    runs_root, tiny_run
):
    tiny_run("rl2"), tiny_run("vae")
    _, options, model, _ = load_run(runs_root / "rl2")
    fam = options.family()
    batch = fam.sample(1, torch.Generator().manual_seed(5))
    pulls = [t % 3 for t in range(10)]
    paid = [int(batch["u"][0, t] < batch["probs"][0, a]) for t, a in enumerate(pulls)]
    with studio_client(create_app(runs_root)) as client:
        half = ok(client.post("/api/bandit", json={"run": "rl2", "seed": 5, "pulls": pulls[:4]}))
        assert half["rewards"] == paid[:4] and "agent" not in half and "probs" not in half
        done = ok(client.post("/api/bandit", json={"run": "rl2", "seed": 5, "pulls": pulls}))
        assert done["rewards"] == paid and done["total"] == sum(paid)
        greedy = model.rollout(batch, greedy=True)
        assert done["agent"]["arms"] == greedy["actions"][:, 0].tolist()
        assert done["agent"]["total"] == int(greedy["rewards"].sum())
        want = bandits.run_policy(bandits.gittins(10), fam, batch, torch.Generator().manual_seed(0))
        assert done["gittins"]["total"] == int(want.item()) == sum(done["gittins"]["rewards"])
        refused(client.post("/api/bandit", json={"run": "rl2", "pulls": [3]}), 400, "each in 0..2")
        refused(client.post("/api/bandit", json={"run": "rl2", "pulls": [0] * 11}), 400,
                "up to 10 arms")  # fmt: skip
        refused(client.post("/api/bandit", json={"run": "vae"}), 400, "is not an RL² bandit player")


def test_an_agent_plays_an_episode_as_an_animated_gif(runs_root, tiny_run):
    tiny_run("a2c")
    with studio_client(create_app(runs_root)) as client:
        r = ok(client.post("/api/episode", json={"run": "a2c", "seed": 2}))
        assert r["env"] == "minatar:breakout" and r["frames"] >= 2
        gif = Image.open(io.BytesIO(base64.b64decode(r["gif"].split(",", 1)[1])))
        assert gif.format == "GIF" and gif.n_frames == r["frames"]
        again = ok(client.post("/api/episode", json={"run": "a2c", "seed": 2}))
        assert (again["return"], again["gif"]) == (r["return"], r["gif"])  # seeded
        refused(client.post("/api/episode", json={"run": "a2c", "task": 1}), 400, "task must be")


def test_driving_in_the_dream_is_seeded_ends_and_forgets(runs_root, tiny_run):
    m = tiny_run("worldmodel")
    with studio_client(create_app(runs_root)) as client:
        runs = {r["run"]: r for r in ok(client.get("/api/runs"))["runs"]}
        assert runs[m]["pages"] == ["agents"]

        def drive(seed, tau, steps=5):
            start = ok(client.post("/api/dream/start", json={"run": m, "seed": seed, "tau": tau}))
            frames = [start["frame"]]
            for _ in range(steps):
                r = ok(client.post("/api/dream/step", json={"dream": start["dream"], "tau": tau,
                                                             "action": [0.5, 1.0, 0.0]}))  # fmt: skip
                frames.append(r["frame"])
                if r["done"]:
                    refused(client.post("/api/dream/step", json={"dream": start["dream"],
                                                                  "action": [0, 0, 0]}), 404,
                            "no dream")  # fmt: skip
                    break
            return frames

        assert decode_png(drive(1, 1.0)[0]).shape == (256, 256, 3)
        assert drive(1, 1.0) == drive(1, 1.0) != drive(2, 1.0)
        refused(client.post("/api/dream/step", json={"dream": "nosuch", "action": [0, 0, 0]}),
                404, "no dream 'nosuch'")  # fmt: skip
        start = ok(client.post("/api/dream/start", json={"run": m}))
        refused(client.post("/api/dream/step", json={"dream": start["dream"], "action": [1, 2]}),
                400, "an action is")  # fmt: skip
        refused(client.post("/api/dream/start", json={"run": m, "tau": 9}), 400, "tau must be")
        refused(client.post("/api/dream/start", json={"run": "wm/vae"}), 400, "not a world model")
        strip = ok(client.post("/api/worldmodel", json={"run": m, "seed": 3, "steps": 5}))
        gif = Image.open(io.BytesIO(base64.b64decode(strip["gif"].split(",", 1)[1])))
        assert gif.size[0] == 3 * gif.size[1] and gif.n_frames == strip["steps"] + 1 <= 6
        refused(client.post("/api/worldmodel", json={"run": m, "steps": 5000}), 400,
                "steps must be between")  # fmt: skip


# --- robustness -----------------------------------------------------------------------------------
def test_a_busy_run_refuses_a_request_that_waited_too_long(client, monkeypatch):
    monkeypatch.setattr(studio_library, "BUSY_WAIT", 0.05)
    library = client.app.state.library
    with library.busy("vae", wait=0):
        refused(client.post("/api/sample", json={"run": "vae", "n": 1}), 409, "busy")
    ok(client.post("/api/sample", json={"run": "vae", "n": 1}))  # free again


def test_a_fault_is_a_500_line_and_the_server_stays_up(client, monkeypatch):
    def broken(*args, **kw):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied\nsecond line")

    monkeypatch.setattr(studio_app.work, "sample_images", broken)
    as_served = TestClient(client.app, base_url=str(client.base_url), raise_server_exceptions=False)
    refused(as_served.post("/api/sample", json={"run": "vae", "n": 1}), 500, "RuntimeError: mat1")
    assert json.loads(as_served.get("/api/runs").text)["runs"]


def test_the_page_and_its_modules_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and '<script type="module" src="/static/app.js">' in page.text
    for module in ("app.js", "api.js", "pages/runs.js", "pages/latent.js", "pages/sketch.js"):
        r = client.get(f"/static/{module}")
        assert r.status_code == 200 and "javascript" in r.headers["content-type"]
    refused(client.get("/static/nosuch.js"), 404, "Not Found")
    refused(client.get("/api/nosuch"), 404, "Not Found")
