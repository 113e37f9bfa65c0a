"""The studio's refusals: paths that leave a run, foreign Host headers, cross-origin changes."""

from __future__ import annotations

import pytest

from genlab.studio.guard import (
    Refused,
    allowed_hosts,
    host_allowed,
    inside,
    origin_allowed,
)


@pytest.fixture
def tree(tmp_path):
    run = tmp_path / "runs" / "vae"
    (run / "pictures").mkdir(parents=True)
    (run / "pictures" / "a.png").write_bytes(b"png")
    (tmp_path / "secret.txt").write_text("secret")
    (run / "pictures" / "out.png").symlink_to(tmp_path / "secret.txt")
    (run / "pictures" / "in.png").symlink_to(run / "pictures" / "a.png")
    return run


@pytest.mark.parametrize("rel", ["pictures/a.png", "./pictures/a.png", "pictures//a.png",
                                 "pictures/in.png"])  # fmt: skip
def test_paths_inside_the_run_are_served(tree, rel):
    assert inside(tree, rel) == (tree / "pictures" / "a.png").resolve()


@pytest.mark.parametrize(
    "rel",
    [
        "../secret.txt", "../../secret.txt", "pictures/../../secret.txt", "..",
        "/etc/passwd", "//etc/passwd", "~/secret.txt",
        "%2e%2e/secret.txt", "..%2fsecret.txt", "%252e%252e%252fsecret.txt",
        "pictures\\..\\..\\secret.txt", "pictures/a.png\x00.txt", "",
        "pictures/out.png",  # a symlink that points out of the tree
    ],
)  # fmt: skip
def test_paths_that_leave_the_run_are_refused(tree, rel):
    with pytest.raises(Refused):
        inside(tree, rel)


def test_loopback_hosts_and_only_they_are_allowed():
    allowed = allowed_hosts("127.0.0.1", 8765)
    for ok in ("127.0.0.1:8765", "localhost:8765", "LOCALHOST:8765", "127.0.0.1"):
        assert host_allowed(ok, allowed)
    for bad in ("evil.example:8765", "127.0.0.1.evil.example:8765", "127.0.0.1:9999", None, ""):
        assert not host_allowed(bad, allowed)
    lan = allowed_hosts("192.168.1.5", 80)
    assert host_allowed("192.168.1.5:80", lan) and not host_allowed("localhost:80", lan)


@pytest.mark.parametrize(
    "method, origin, ok",
    [
        ("GET", "http://evil.example", True),  # reading is not changing (and CORS hides it)
        ("POST", None, True),  # curl and scripts send no Origin
        ("POST", "http://127.0.0.1:8765", True),
        ("POST", "http://localhost:8765", True),
        ("POST", "http://evil.example", False),
        ("POST", "http://127.0.0.1:9999", False),
        ("POST", "null", False),  # a sandboxed frame or a file:// page
        ("DELETE", "http://evil.example", False),
    ],
)
def test_cross_origin_changes_are_refused(method, origin, ok):
    assert origin_allowed(method, origin, allowed_hosts("127.0.0.1", 8765)) is ok
