"""`genlab studio`: the app under uvicorn, bound to loopback unless told otherwise."""

from __future__ import annotations

import sys
from pathlib import Path

import uvicorn

from genlab.studio.app import create_app
from genlab.studio.guard import LOOPBACK_NAMES

WARNING = ("warning: the studio is bound to {host}: anyone who can reach it can start trainings "
           "and read every run under {runs}")  # fmt: skip


def serve(runs: Path, host: str = "127.0.0.1", port: int = 8765, data_dir: str | None = None):
    runs.mkdir(parents=True, exist_ok=True)
    if host not in LOOPBACK_NAMES and host != "::1":
        print(WARNING.format(host=host, runs=runs), file=sys.stderr)
    app = create_app(runs, host, port, data_dir)
    print(f"genlab studio: http://{host}:{port}/  (runs: {runs}; Ctrl-C to stop)", flush=True)
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        app.state.trainer.close()
