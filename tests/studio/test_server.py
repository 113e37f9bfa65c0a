"""`genlab studio`: the command binds where it is told, warns off loopback, and says what to
install when the studio extra is missing."""

from __future__ import annotations

import builtins
import sys

import pytest

from genlab.cli import main
from genlab.studio import server


@pytest.fixture
def served(monkeypatch):
    calls = []
    monkeypatch.setattr(server.uvicorn, "run", lambda app, **kw: calls.append((app, kw)))
    return calls


def test_loopback_by_default_and_a_warning_elsewhere(served, tmp_path, capsys):
    assert main(["studio", "--runs", str(tmp_path / "runs"), "--port", "9001"]) == 0
    app, kw = served[0]
    assert kw["host"] == "127.0.0.1" and kw["port"] == 9001 and (tmp_path / "runs").is_dir()
    out = capsys.readouterr()
    assert "http://127.0.0.1:9001/" in out.out and "warning" not in out.err
    assert main(["studio", "--runs", str(tmp_path), "--host", "0.0.0.0"]) == 0
    assert "warning: the studio is bound to 0.0.0.0" in capsys.readouterr().err
    assert served[1][1]["host"] == "0.0.0.0"


def test_without_the_studio_extra_the_error_names_the_install(monkeypatch, capsys):
    real_import = builtins.__import__

    def no_uvicorn(name, *args, **kw):
        if name == "uvicorn":
            raise ModuleNotFoundError("No module named 'uvicorn'", name="uvicorn")
        return real_import(name, *args, **kw)

    monkeypatch.delitem(sys.modules, "genlab.studio.server")
    monkeypatch.setattr(builtins, "__import__", no_uvicorn)
    assert main(["studio"]) == 2
    assert "genlab studio needs uvicorn: pip install -e '.[studio]'" in capsys.readouterr().err
