"""Few-shot meta-learning: the functional core against hand computations, the task protocol,
and the CLI end to end."""

from __future__ import annotations

import json
import resource

import pytest
import torch
import torch.nn.functional as F

from genlab.cli import main
from genlab.errors import ConfigError, DataError
from genlab.meta import core, tasks
from genlab.meta.learners import MetaConfig, MetaLearner, ReptileConfig, make_reptile_state
from genlab.meta.nets import FewShotConvNet, NetShape, batch_norm
from genlab.train.config import TrainConfig
from genlab.train.loop import gradient_step, make_state

TINY = NetShape(ways=3, channels=2, layers=2, image_size=8)


def tiny_task(t: int = 1, dtype=torch.float64, seed: int = 0) -> dict:
    """t tasks of 3 ways, 2 shots, 2 queries on random 8x8 images."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(3).repeat_interleave(2).expand(t, 6)
    return {
        "support_x": torch.rand(t, 6, 1, 8, 8, generator=g, dtype=dtype),
        "support_y": y,
        "query_x": torch.rand(t, 6, 1, 8, 8, generator=g, dtype=dtype),
        "query_y": y,
    }


def tiny_net(dtype=torch.float64) -> FewShotConvNet:
    torch.manual_seed(0)
    return FewShotConvNet(TINY).to(dtype)


def test_batch_norm_matches_torch_and_uses_only_the_given_rows():
    x, w, b = torch.randn(6, 3, 4, 4), torch.randn(3), torch.randn(3)
    ref = F.batch_norm(x, None, None, w, b, training=True)
    torch.testing.assert_close(batch_norm(x, w, b), ref, atol=1e-5, rtol=1e-5)
    # the hand-written path (stats_rows given) against torch's kernel when all rows count
    torch.testing.assert_close(batch_norm(x, w, b, stats_rows=6), ref, atol=1e-5, rtol=1e-5)
    head = batch_norm(x, w, b, stats_rows=2)
    torch.testing.assert_close(head[:2], F.batch_norm(x[:2], None, None, w, b, training=True))
    x2 = x.clone()
    x2[2:] += 100.0  # rows past stats_rows do not move the statistics
    torch.testing.assert_close(batch_norm(x2, w, b, stats_rows=2)[:2], head[:2])


def test_second_order_meta_gradient_passes_gradcheck():
    net, b = tiny_net(), tiny_task()
    names = [k for k, _ in net.named_parameters()]
    task = core.maml_task(net, steps=2, lr=0.3, first_order=False, bn="transductive")

    def meta_loss(*flat):
        loss, _ = task(dict(zip(names, flat, strict=True)), *(v[0] for v in b.values()))
        return loss

    params = tuple(p.detach().clone().requires_grad_(True) for p in net.parameters())
    assert torch.autograd.gradcheck(meta_loss, params, eps=1e-6, atol=1e-5)


def test_first_order_equals_the_gradient_at_adapted_weights_with_inner_gradient_detached():
    net, b = tiny_net(), tiny_task()
    sx, sy, qx, qy = (v[0] for v in b.values())
    params = {k: p.detach().clone().requires_grad_(True) for k, p in net.named_parameters()}
    loss, _ = core.maml_task(net, 2, 0.3, True, "transductive")(params, sx, sy, qx, qy)
    fo = torch.autograd.grad(loss, list(params.values()))
    # by hand: two SGD steps with plain autograd, then the query gradient at the result
    w = {k: p.detach().clone() for k, p in params.items()}
    for _ in range(2):
        w = {k: v.requires_grad_(True) for k, v in w.items()}
        g = torch.autograd.grad(core.task_loss(net, w, sx, sy), list(w.values()))
        w = {k: (v - 0.3 * gi).detach() for (k, v), gi in zip(w.items(), g, strict=True)}
    w = {k: v.requires_grad_(True) for k, v in w.items()}
    ref = torch.autograd.grad(F.cross_entropy(core.logits_of(net, w, qx), qy), list(w.values()))
    for a, r in zip(fo, ref, strict=True):
        torch.testing.assert_close(a, r)
    so_loss, _ = core.maml_task(net, 2, 0.3, False, "transductive")(params, sx, sy, qx, qy)
    so = torch.autograd.grad(so_loss, list(params.values()))
    assert max((a - s).abs().max() for a, s in zip(fo, so, strict=True)) > 1e-6  # they differ


def test_adam_without_momentum_steps_as_torch_adam_does():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(5, generator=g, dtype=torch.float64)
    ref = w.clone().requires_grad_(True)
    opt = torch.optim.Adam([ref], lr=0.01, betas=(0.0, 0.999), eps=1e-8)
    p, v = w.clone(), torch.zeros_like(w)
    for t in range(1, 6):
        grad = torch.randn(5, generator=g, dtype=torch.float64)
        ref.grad = grad.clone()
        opt.step()
        p, v = core.adam0_update(p, grad, v, t, lr=0.01)
        torch.testing.assert_close(p, ref.detach())
    with pytest.raises(ValueError, match="inner rule must be one of"):
        core.adapt(tiny_net(), dict(tiny_net().named_parameters()), w, w, 1, 0.1, rule="lbfgs")


def test_adaptation_never_mutates_the_module():
    net, b = tiny_net(), tiny_task()
    before = {k: p.detach().clone() for k, p in net.named_parameters()}
    core.adapt(net, dict(net.named_parameters()), b["support_x"][0], b["support_y"][0], 3, 0.5)
    for k, p in net.named_parameters():
        assert torch.equal(p, before[k])


def test_vmap_over_tasks_equals_a_loop():
    net, b = tiny_net(), tiny_task(t=4)
    params = dict(net.named_parameters())
    for fn in (core.maml_task(net, 2, 0.3, False, "support"), core.reptile_task(net, 3, 0.2, 3),
               core.reptile_task(net, 3, 0.01, 3, "adam", batch=4)):  # fmt: skip
        vec, loop = core.over_tasks(fn, params, b, True), core.over_tasks(fn, params, b, False)
        vec, loop = (vec.values(), loop.values()) if isinstance(vec, dict) else (vec, loop)
        for v, lp in zip(vec, loop, strict=True):
            torch.testing.assert_close(v, lp)


@pytest.mark.parametrize("rule, batch", [("sgd", 0), ("adam", 4)])
def test_reptile_outer_step_equals_its_formula(rule, batch):
    """By hand, per task: its drawings in class-interleaved order, 3 steps of SGD on all of
    them (or of Adam with beta1 = 0 on 4 at a time, as torch.optim.Adam does it), then the
    outer step theta + eps (mean phi - theta)."""
    lr = 0.2 if rule == "sgd" else 0.01
    cfg = ReptileConfig(ways=3, shots=2, queries=2, inner_steps=3, inner_lr=lr, channels=2,
                        inner_optimizer=rule, inner_batch=batch)  # fmt: skip
    model = MetaLearner(cfg).double()
    model.net = tiny_net()
    b = tiny_task(t=3)
    theta = {k: p.detach().clone() for k, p in model.net.named_parameters()}
    phis = []
    for t in range(3):
        order = [0, 2, 4, 1, 3, 5]  # drawing 0 of classes 0, 1, 2, then drawing 1 of each
        x = torch.cat([b["support_x"][t][order], b["query_x"][t][order]])
        y = torch.cat([b["support_y"][t][order], b["query_y"][t][order]])
        w = {k: v.clone().requires_grad_(True) for k, v in theta.items()}
        opt = torch.optim.SGD(w.values(), lr=lr) if rule == "sgd" else (
            torch.optim.Adam(w.values(), lr=lr, betas=(0.0, 0.999), eps=1e-8))  # fmt: skip
        for step in range(3):
            rows = [(step * batch + i) % 12 for i in range(batch)] if batch else list(range(12))
            opt.zero_grad()
            core.task_loss(model.net, w, x[rows], y[rows]).backward()
            opt.step()
        phis.append({k: v.detach() for k, v in w.items()})
    eps = 0.7
    state = make_reptile_state(model, TrainConfig(lr=eps, steps=1))
    gradient_step()(state, b)
    for k, p in model.net.named_parameters():
        phi_mean = torch.stack([w[k] for w in phis]).mean(0)
        torch.testing.assert_close(p.detach(), theta[k] + eps * (phi_mean - theta[k]))


def test_by_drawing_puts_drawing_j_of_class_c_at_row_j_times_ways_plus_c():
    ways, k = 4, 3
    rows = torch.arange(ways * k)  # class-major: row c * k + j is class c's drawing j
    out = core.by_drawing(rows, ways)
    for c in range(ways):
        for j in range(k):
            assert out[j * ways + c] == c * k + j


def test_support_mode_queries_do_not_see_each_other_but_transductive_ones_do():
    net, b = tiny_net(), tiny_task()
    sx, qx = b["support_x"][0], b["query_x"][0]
    params = dict(net.named_parameters())
    qx2 = qx.clone()
    qx2[1:] = torch.rand_like(qx2[1:])  # change every query but the first
    sup = [core.predict(net, params, sx, q, "support")[0] for q in (qx, qx2)]
    tra = [core.predict(net, params, sx, q, "transductive")[0] for q in (qx, qx2)]
    torch.testing.assert_close(sup[0], sup[1])
    assert not torch.allclose(tra[0], tra[1])


def test_named_splits_are_checksummed_disjoint_and_reproducible():
    for name in tasks.SPLITS:
        s = tasks.load_split(name)
        assert not set(s["train"]) & set(s["test"])
        assert len(s["train"]) + len(s["test"]) == tasks.N_CHARACTERS
    random = tasks.load_split("random1200-seed1")
    assert (len(random["train"]), len(random["test"])) == (1200, 423)
    assert tasks.split_bytes(tasks.make_random_split(1200, 1)) == tasks.split_bytes(random)
    with pytest.raises(ConfigError, match="unknown omniglot split"):
        tasks.load_split("nope")


def test_a_tampered_split_file_is_refused(monkeypatch):
    monkeypatch.setitem(tasks.SPLITS, "random1200-seed1", "0" * 64)
    with pytest.raises(DataError, match="sha256"):
        tasks.load_split("random1200-seed1")


def test_each_rotation_is_a_distinct_class():
    chars = torch.randint(0, 256, (3, 20, 28, 28), dtype=torch.uint8)
    rot = tasks.with_rotations(chars)
    assert rot.shape == (12, 20, 28, 28)
    torch.testing.assert_close(rot[4 * 2 + 1], torch.rot90(chars[2], 1, dims=(-2, -1)))
    flat = rot.flatten(1)
    assert len({tuple(r.tolist()) for r in flat}) == 12  # no two classes share their images


def test_task_sampler_builds_valid_tasks_deterministically():
    # every "image" is filled with its own id (class * 20 + drawer), so a batch tells exactly
    # which drawings it holds (int64 instead of uint8 so the ids survive)
    ids = torch.arange(30 * 20).view(30, 20, 1, 1).expand(-1, -1, 28, 28)
    sampler = tasks.TaskSampler(ids, ways=5, shots=2, queries=3, tasks=4, seed=7)
    b = sampler.batch(3)
    assert b["support_x"].shape == (4, 10, 1, 28, 28) and b["query_x"].shape == (4, 15, 1, 28, 28)
    raw = lambda x: (x[..., 0, 0, 0] * 255).round().long()  # noqa: E731
    s_ids, q_ids = raw(b["support_x"]), raw(b["query_x"])
    for t in range(4):
        s_cls, q_cls = s_ids[t] // 20, q_ids[t] // 20
        assert len(set(s_cls.tolist())) == 5 and set(s_cls.tolist()) == set(q_cls.tolist())
        assert not set(s_ids[t].tolist()) & set(q_ids[t].tolist())  # distinct drawings
        # one label per class, the same in support and query
        lab = {int(c): int(y) for c, y in zip(s_cls, b["support_y"][t], strict=True)}
        assert all(lab[int(c)] == int(y) for c, y in zip(q_cls, b["query_y"][t], strict=True))
    again = sampler.batch(3)
    assert all(torch.equal(b[k], again[k]) for k in b)
    assert not torch.equal(sampler.batch(4)["support_x"], b["support_x"])
    with pytest.raises(ConfigError, match="exceed the 20 drawings"):
        tasks.TaskSampler(ids, 5, 10, 11, 1, 0)


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def test_memory_stays_flat_over_100_meta_iterations():
    cfg = MetaConfig(ways=3, shots=2, queries=2, inner_steps=2, channels=8)
    model = MetaLearner(cfg)
    state = make_state(model, TrainConfig(lr=1e-3, steps=100))
    step = gradient_step()
    b = tiny_task(t=4, dtype=torch.float32)
    b["support_x"], b["query_x"] = torch.rand(2, 4, 6, 1, 28, 28)  # 28x28 images
    rss = []
    for i in range(100):
        step(state, b)
        if i in (19, 99):
            rss.append(_rss_mb())
    assert rss[1] - rss[0] < 20, f"resident memory grew {rss[1] - rss[0]:.1f} MB"


def test_maml_train_then_eval_prints_accuracy_and_ci(data_root, tmp_path, capsys):
    out = tmp_path / "maml"
    args = ["train", "fomaml", "--steps", "6", "--batch-size", "4", "--channels", "8", "--quiet"]
    assert main([*args, "--out", str(out)]) == 0
    assert (out / "pictures" / "task_0.png").is_file()
    capsys.readouterr()
    assert main(["eval", str(out), "--tasks", "20", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert 0.0 <= result["accuracy"] <= 1.0 and 0.0 < result["ci95"] < 0.5
    for key, value in (
        ("ways", 5),
        ("shots", 1),
        ("bn", "transductive"),
        ("tasks", 20),
        ("split", "random1200-seed1"),
        ("query_per_class", 15),
        ("inner_steps", 3),
    ):
        assert result[key] == value
    assert main(["runs", str(tmp_path)]) == 0
    header = capsys.readouterr().out.splitlines()[0].split()
    assert {"accuracy", "ci95"} <= set(header)


def test_live_classifier_adapts_to_new_drawings_without_changing_the_model():
    from genlab.meta.live import FewShotClassifier, prepare

    torch.manual_seed(0)
    model = MetaLearner(MetaConfig(ways=3, channels=8, eval_inner_steps=10, inner_lr=0.5))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    g = torch.Generator().manual_seed(1)
    shapes = [(torch.rand(56, 56, generator=g) > 0.7).float().numpy() for _ in range(3)]
    drawn = [255 - (s * 255).astype("uint8") for s in shapes]  # dark ink on white, 56x56
    assert prepare(drawn).shape == (3, 1, 28, 28) and prepare(drawn).mean() < 0.5
    clf = FewShotClassifier(model).fit(drawn, [0, 1, 2])
    probs = clf.predict_proba(drawn[::-1])
    assert probs.shape == (3, 3)
    torch.testing.assert_close(probs.sum(-1), torch.ones(3))
    assert probs.argmax(-1).tolist() == [2, 1, 0]  # it learned the three drawings
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    with pytest.raises(ConfigError, match="labels must be in 0..2"):
        clf.fit(drawn, [0, 1, 3])
