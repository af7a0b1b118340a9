"""tools/archive_scale.py: a scale renamed everywhere it lives, or nothing moved."""
import json
import shutil
import sys
from pathlib import Path

import pytest

from deltalab.runtime import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "tools"))
import archive_scale  # noqa: E402


def _repo(root: Path, scale: str = "old") -> Path:
    (root / "params" / "scales").mkdir(parents=True)
    text = (REPO_ROOT / "params" / "scales" / "smoke.yaml").read_text().replace("name: smoke", f"name: {scale}", 1)
    (root / "params" / "scales" / f"{scale}.yaml").write_text(text)
    record = json.loads(next((REPO_ROOT / "outputs" / "results" / "cpu").rglob("*.json")).read_text())
    record["spec"]["scale"] = scale
    run = root / "outputs" / "results" / scale / "delta_net" / "memorization" / "baseline" / "r.json"
    run.parent.mkdir(parents=True)
    run.write_text(json.dumps(record, indent=1, sort_keys=True))
    (root / "outputs" / scale).mkdir()
    (root / "outputs" / scale / "round_1.ipynb").write_text("{}")
    return run


def test_a_scale_is_renamed_in_its_file_its_runs_and_its_study(tmp_path):
    original = json.loads(_repo(tmp_path).read_text())
    archive_scale.main(["old", "new", "--root", str(tmp_path)])
    assert not (tmp_path / "params" / "scales" / "old.yaml").exists()
    assert "name: new\n" in (tmp_path / "params" / "scales" / "new.yaml").read_text()
    moved = json.loads((tmp_path / "outputs" / "results" / "new" / "delta_net" / "memorization" / "baseline"
                        / "r.json").read_text())
    assert moved["spec"]["scale"] == "new"
    assert {k: v for k, v in moved.items() if k != "spec"} == {k: v for k, v in original.items() if k != "spec"}
    assert (tmp_path / "outputs" / "new" / "round_1.ipynb").exists() and not (tmp_path / "outputs" / "old").exists()


def test_nothing_moves_when_a_target_exists_or_a_record_names_another_scale(tmp_path):
    run = _repo(tmp_path)
    (tmp_path / "outputs" / "new").mkdir()
    with pytest.raises(SystemExit, match="already there"):
        archive_scale.main(["old", "new", "--root", str(tmp_path)])
    shutil.rmtree(tmp_path / "outputs" / "new")
    record = json.loads(run.read_text())
    record["spec"]["scale"] = "elsewhere"
    run.write_text(json.dumps(record))
    with pytest.raises(SystemExit, match="spec.scale is 'elsewhere'"):
        archive_scale.main(["old", "new", "--root", str(tmp_path)])
    assert (tmp_path / "params" / "scales" / "old.yaml").exists() and run.exists()
