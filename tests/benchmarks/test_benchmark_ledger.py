"""The benchmarks' stage ledger: resumed multi-stage benchmarks skip finished stages and add up
each stage's wall-clock honestly, even across a kill."""

import json
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from common import StageLedger  # noqa: E402


def test_a_finished_stage_is_skipped_with_its_result(tmp_path):
    path = tmp_path / "bench.json"
    assert StageLedger(path, {"n": 1}).run("collect", lambda spent: {"spent": spent}) == {
        "spent": 0.0
    }

    def must_not_run(spent):
        raise AssertionError("a finished stage ran again")

    assert StageLedger(path, {"n": 1}).run("collect", must_not_run) == {"spent": 0.0}


def test_minutes_survive_a_stage_cut_short_and_are_handed_to_its_resumption(tmp_path):
    path = tmp_path / "bench.json"
    ledger = StageLedger(path, {}, flush_s=0.02)
    seen = []

    def killed(spent):
        time.sleep(0.1)
        seen.append(json.loads(path.read_text())["minutes"]["train"])  # flushed while running
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ledger.run("train", killed)
    assert seen[0] > 0
    cut_short = StageLedger(path, {}).minutes("train")
    assert 0.1 / 60 <= cut_short < 1.0 / 60
    assert "train" not in json.loads(path.read_text())["results"]
    handed = StageLedger(path, {}).run("train", lambda spent: spent)
    assert handed == pytest.approx(cut_short)
    assert StageLedger(path, {}).minutes("train") > cut_short


def test_other_options_are_refused_by_name(tmp_path):
    path = tmp_path / "bench.json"
    StageLedger(path, {"episodes": 100, "workers": 2})
    with pytest.raises(SystemExit, match="episodes: 100 then, 40 now"):
        StageLedger(path, {"episodes": 40, "workers": 2})


def test_an_option_of_stages_not_begun_may_change_and_is_recorded(tmp_path):
    path = tmp_path / "bench.json"
    later = {"vc_minutes": ("train-vc",), "c_minutes": ("train-c",)}
    ledger = StageLedger(path, {"c_minutes": 100, "vc_minutes": 0}, stage_options=later)
    ledger.run("train-c", lambda spent: 1)
    again = StageLedger(path, {"c_minutes": 100, "vc_minutes": 30}, stage_options=later)
    assert again.data["options"]["vc_minutes"] == 30
    assert json.loads(path.read_text())["options"]["vc_minutes"] == 30
    again.run("train-vc", lambda spent: 2)
    with pytest.raises(SystemExit, match="vc_minutes: 30 then, 10 now"):
        StageLedger(path, {"c_minutes": 100, "vc_minutes": 10}, stage_options=later)
    with pytest.raises(SystemExit, match="c_minutes: 100 then, 50 now"):
        StageLedger(path, {"c_minutes": 50, "vc_minutes": 30}, stage_options=later)
