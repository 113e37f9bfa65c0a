"""docs/architecture.md's worked example, as written: its model file and its one registry line
make a model that `genlab train`, `eval` and `sample` handle, with no other change."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

from genlab.cli import main
from genlab.tasks import images
from genlab.tasks.registry import MODELS

DOC = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"


def test_the_documented_new_model_trains_evaluates_and_samples(
    data_root, tmp_path, monkeypatch, capsys
):
    model_source, entries_source = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)[:2]
    module = types.ModuleType("genlab_worked_example")
    monkeypatch.setitem(sys.modules, module.__name__, module)  # dataclasses look it up
    exec(compile(model_source, "tiny_gauss.py", "exec"), module.__dict__)
    namespace = {**vars(images), **vars(module)}
    exec(entries_source, namespace)  # ENTRIES = (..., the new entry)
    entry = namespace["ENTRIES"][-1]
    monkeypatch.setitem(MODELS, entry.name, entry)

    run = tmp_path / "run"
    assert main(["train", entry.name, "--steps", "5", "--out", str(run), "--quiet"]) == 0
    assert (run / "pictures" / "samples.png").is_file()
    assert main(["eval", str(run), "--samples", "0", "--json"]) == 0
    assert '"step": 5' in capsys.readouterr().out
    assert main(["sample", str(run), "--n", "4", "--out", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").is_file()
