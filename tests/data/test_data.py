"""Dataset readers against known facts, the resolver's search order, checksums and downloads."""

from __future__ import annotations

import functools
import gzip
import http.server
import shutil
import threading

import pytest
import torch

from genlab.data import cache, fsdd, mnist, omniglot
from genlab.data.batches import InMemoryBatches
from genlab.data.images import image_splits, representation
from genlab.data.resolve import RemoteFile, Source, cache_dir, resolve
from genlab.errors import DataError

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_mnist_matches_published_facts(data_root):
    x, y = mnist.load("train")
    tx, ty = mnist.load("test")
    assert x.shape == (60_000, 1, 28, 28) and tx.shape == (10_000, 1, 28, 28)
    assert x.dtype == torch.uint8 and y.dtype == torch.int64
    assert int(x.min()) == 0 and int(x.max()) == 255
    assert torch.bincount(y).tolist() == MNIST_TRAIN_COUNTS
    assert torch.bincount(ty).tolist() == MNIST_TEST_COUNTS
    assert x[:, :, 0, :].float().mean() < 1.0  # the top row is background (0), ink is 255


def test_binarization_static_is_fixed_and_dynamic_varies(data_root):
    x, _ = mnist.load("test")
    a = mnist.binarize(x[:100], torch.Generator().manual_seed(1))
    b = mnist.binarize(x[:100], torch.Generator().manual_seed(1))
    c = mnist.binarize(x[:100], torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert set(a.unique().tolist()) == {0.0, 1.0}
    assert abs(a.mean().item() - x[:100].float().mean().item() / 255) < 0.01  # E[bernoulli] = x/255
    batches = InMemoryBatches({"x": x}, 50, seed=3, transform=representation("binary_dynamic"))
    assert torch.equal(batches.batch(7)["x"], batches.batch(7)["x"])
    first_epoch = batches.batch(0)["x"]
    second_epoch_same_images = batches.batch(batches.steps_per_epoch)["x"]
    assert not torch.equal(first_epoch, second_epoch_same_images)


def test_omniglot_counts_and_conventions(data_root):
    d = omniglot.load()
    assert d["images"].shape == (32_460, 28, 28) and d["images"].dtype == torch.uint8
    assert len(set(d["character"].tolist())) == 1623
    assert d["character"].min() == 0 and d["character"].max() == 1622
    assert len(d["alphabet_names"]) == 50 and d["drawer"].unique().tolist() == list(range(20))
    assert int(d["background"].sum()) == 19_280
    assert d["images"].float().mean() < 60  # mostly background = 0, ink = 255 as in MNIST
    splits = image_splits("omniglot")
    assert set(splits.train_y.tolist()).isdisjoint(set(splits.test_y.tolist()))


def test_fsdd_counts_and_upstream_split(data_root):
    test, train = fsdd.load("test"), fsdd.load("train")
    assert len(test["clips"]) == 300 and len(train["clips"]) == 2700
    assert test["index"].max() == 4 and train["index"].min() == 5
    assert torch.bincount(train["digit"]).tolist() == [270] * 10
    assert torch.bincount(test["speaker"]).tolist() == [50] * 6
    assert all(c.dtype == torch.int16 for c in test["clips"][:10])
    lengths = torch.tensor([len(c) for c in train["clips"]], dtype=torch.float)
    assert 1000 < lengths.median() < 8000  # a spoken digit lasts a fraction of a second at 8 kHz


def test_decoded_cache_is_reused_and_rebuilt_when_a_source_changes(
    data_root, tmp_path, monkeypatch
):
    folder = tmp_path / "mnist"
    shutil.copytree(data_root / "mnist", folder)
    first = mnist.load("test", tmp_path)  # decodes and caches
    monkeypatch.setattr(mnist, "_decode", lambda f: pytest.fail("cache hit expected"))
    again = mnist.load("test", tmp_path)  # read from the cache: no decoding
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    mnist.load("train", tmp_path)
    # Corrupt a file after caching: the fingerprint changes, the rebuild verifies and refuses.
    path = folder / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DataError) as err:
        mnist.load("test", tmp_path)
    assert "t10k-labels-idx1-ubyte.gz" in str(err.value)
    assert mnist.SOURCE.files[3].checksums[0].split(":")[1] in str(err.value)


def test_search_order_data_dir_then_env_then_cache(data_root, tmp_path, monkeypatch):
    explicit, env = tmp_path / "explicit", tmp_path / "env"
    for root in (explicit, env):
        shutil.copytree(data_root / "mnist", root / "mnist")
    monkeypatch.setenv("GENLAB_DATA", str(env))
    assert resolve(mnist.SOURCE, explicit) == explicit / "mnist"
    assert resolve(mnist.SOURCE) == env / "mnist"
    # A partial folder is never used: the search moves on to a complete one.
    (explicit / "mnist" / "train-images-idx3-ubyte.gz").unlink()
    assert resolve(mnist.SOURCE, explicit) == env / "mnist"


def test_missing_data_offline_names_files_and_where_to_put_them(tmp_path, monkeypatch):
    monkeypatch.setenv("GENLAB_DATA", str(tmp_path / "nowhere"))
    monkeypatch.setenv("GENLAB_OFFLINE", "1")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError) as err:
        resolve(mnist.SOURCE, tmp_path / "empty")
    msg = str(err.value)
    assert "train-images-idx3-ubyte.gz" in msg and "t10k-labels-idx1-ubyte.gz" in msg
    assert "--data-dir" in msg and "GENLAB_DATA" in msg
    assert str(cache_dir() / "data" / "mnist") in msg  # where to put them


def test_a_data_dir_that_is_not_a_folder_is_named_not_skipped(tmp_path):
    with pytest.raises(DataError, match="--data-dir .*nowhere is not a folder"):
        resolve(mnist.SOURCE, tmp_path / "nowhere")  # not quietly another root's copy


def test_idx_reader_rejects_wrong_magic(tmp_path):
    bad = tmp_path / "bad.gz"
    bad.write_bytes(gzip.compress(b"\x00\x00\x08\x99" + b"\x00" * 20))
    with pytest.raises(DataError, match="bad.gz.*magic"):
        mnist.read_idx(bad)


def test_wav_reader_names_a_corrupt_file(tmp_path):
    bad = tmp_path / "0_george_0.wav"
    bad.write_bytes(b"RIFF\x00\x00")
    with pytest.raises(DataError, match="0_george_0.wav"):
        fsdd.read_wav(bad)


@pytest.fixture
def local_server(data_root):
    """An HTTP server on 127.0.0.1 serving ../shared/data, stopped after the test."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(data_root))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_download_verifies_checksums_into_the_cache(local_server, tmp_path, monkeypatch):
    monkeypatch.setenv("GENLAB_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("GENLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("GENLAB_MIRROR", local_server)
    source = Source("mnist", mnist.SOURCE.files, base_urls=())
    folder = resolve(source, download=True)
    assert folder == tmp_path / "cache" / "data" / "mnist"
    cache.verify_all(folder, source)
    x, y = mnist.load("test")
    assert x.shape == (10_000, 1, 28, 28)


def test_download_with_wrong_checksum_leaves_no_file(local_server, tmp_path, monkeypatch):
    monkeypatch.setenv("GENLAB_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("GENLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("GENLAB_MIRROR", local_server)
    wrong = RemoteFile("t10k-labels-idx1-ubyte.gz", ("sha256:" + "0" * 64,))
    with pytest.raises(DataError) as err:
        resolve(Source("mnist", (wrong,), base_urls=()), download=True)
    assert "t10k-labels-idx1-ubyte.gz" in str(err.value) and "0" * 64 in str(err.value)
    folder = tmp_path / "cache" / "data" / "mnist"
    assert not folder.exists() or not any(folder.iterdir())


def test_unreachable_source_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("GENLAB_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("GENLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("GENLAB_MIRROR", raising=False)
    closed = Source("mnist", mnist.SOURCE.files[:1], base_urls=("http://127.0.0.1:9/",))
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz.*Download failed"):
        resolve(closed, download=True)


def test_random_shift_matches_a_per_image_loop():
    from genlab.data.images import random_shift

    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (5, 2, 6, 7), generator=g, dtype=torch.uint8)
    shifted = random_shift(x, 2, torch.Generator().manual_seed(1))
    dy, dx = torch.randint(0, 5, (2, 5, 1), generator=torch.Generator().manual_seed(1))
    for i in range(5):
        padded = torch.nn.functional.pad(x[i], (2, 2, 2, 2))
        oy, ox = int(dy[i]), int(dx[i])
        assert torch.equal(shifted[i], padded[:, oy : oy + 6, ox : ox + 7])
    assert torch.equal(random_shift(x, 0, g), x)
