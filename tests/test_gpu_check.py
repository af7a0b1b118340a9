"""scripts/gpu_check.sh --dry-run: the GPU window's script end to end on the CPU at smoke (its CUDA-only steps skipped
with their reason), and its archive brought into a store by `python -m deltalab import-records`."""
from __future__ import annotations

import json
import os
import subprocess
import tarfile

import pytest

from deltalab.runtime import REPO_ROOT

pytestmark = pytest.mark.slow  # about a minute: two stacked smoke grids, a train-step timing


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu-check")
    env = os.environ | {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    env.pop("OUT", None)
    proc = subprocess.run(["bash", str(REPO_ROOT / "scripts" / "gpu_check.sh"), "--dry-run", "--out", str(out),
                           "--deadline", "300", "--lr", "0.001", "--wd", "0.1"], capture_output=True, text=True, env=env, timeout=400)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out, proc.stdout


def test_the_dry_run_goes_end_to_end_and_says_what_it_skipped(dry_run):
    out, stdout = dry_run
    summary = (out / "summary.txt").read_text()
    assert "tests_triton: skipped (CUDA only" in summary and "bench_triton: skipped (CUDA only" in summary
    assert "trainstep: ok" in summary and "grid: ok" in summary
    assert "grid: at one sweep point (lr 0.001, wd 0.1)" in summary
    timing = json.loads((out / "trainstep.json").read_text())
    assert timing["kind"] == "CPU" and timing["timings"][0]["stacked_step_s"] > 0
    assert timing["projections"][0]["runs"] == 6
    with tarfile.open(out / "records-smoke.tar.gz") as tar:
        names = sorted(m.name for m in tar.getmembers() if m.isfile())
    assert len(names) == 4 and all(n.startswith("smoke/delta_net/") and n.endswith(".json") for n in names)
    assert "4 new record(s)" in stdout


def test_import_records_adds_then_skips_then_refuses_a_conflict(dry_run, tmp_path, monkeypatch, capsys):
    from deltalab.__main__ import main

    out, _ = dry_run
    archive = str(out / "records-smoke.tar.gz")
    monkeypatch.setenv("DELTALAB_RESULTS", str(tmp_path / "home"))
    assert main(["import-records", archive]) == 0
    assert "added 4 record(s)" in capsys.readouterr().out
    stored = sorted((tmp_path / "home").rglob("*.json"))
    assert [p.read_bytes() for p in stored] == [p.read_bytes() for p in sorted((out / "store").rglob("*.json"))]
    assert main(["import-records", archive]) == 0
    again = capsys.readouterr().out
    assert "added 0 record(s)" in again and "4 already there, identical" in again
    record = json.loads(stored[0].read_text())
    record["metrics"]["test_acc"] = 0.5  # another result of the same run
    stored[0].write_text(json.dumps(record))
    before = {p: p.read_bytes() for p in stored}
    assert main(["import-records", archive]) == 2
    err = capsys.readouterr().err
    assert "1 conflicting record(s)" in err and str(stored[0].relative_to(tmp_path / "home")) in err
    assert {p: p.read_bytes() for p in stored} == before  # nothing written


def test_import_records_refuses_what_is_not_a_record(tmp_path, monkeypatch, capsys):
    from deltalab.__main__ import main

    bad = tmp_path / "bad.tar.gz"
    (tmp_path / "x.json").write_text("{}")
    with tarfile.open(bad, "w:gz") as tar:
        tar.add(tmp_path / "x.json", arcname="../escape.json")
    monkeypatch.setenv("DELTALAB_RESULTS", str(tmp_path / "home"))
    assert main(["import-records", str(bad)]) == 2
    assert "not a record file" in capsys.readouterr().err
    assert not (tmp_path / "escape.json").exists() and not (tmp_path / "home").exists()
