"""A record names its code (deltalab.grid.provenance): the grid refuses uncommitted code under lib/ unless
allowed, and then stores the diff beside the records and its hash in each; status lists the dirty records."""
import subprocess

import pytest

from deltalab.grid import grid_status, plan, provenance, run_variant, status_report
from deltalab.params import load_scale
from deltalab.runtime import lib_changes, lib_diff
from deltalab.store import Store


def _git(root, *args) -> str:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout


@pytest.fixture
def repo(tmp_path):
    """A git checkout with one committed file under lib/ and one outside it."""
    root = tmp_path / "repo"
    (root / "lib" / "pkg").mkdir(parents=True)
    (root / "lib" / "pkg" / "rule.py").write_text("STEP = 1\n")
    (root / "README.md").write_text("text\n")
    _git(root, "init", "-q")
    _git(root, "add", ".")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "start")
    return root


@pytest.fixture
def strict(monkeypatch):
    """The grid as outside the test suite: no DELTALAB_ALLOW_DIRTY."""
    monkeypatch.delenv(provenance.ALLOW_DIRTY_ENV, raising=False)


def test_a_tree_with_uncommitted_code_under_lib_is_refused_in_one_line_naming_the_files(repo, strict):
    assert lib_changes(repo) == [] and provenance.check_code(root=repo) == provenance.Code()
    (repo / "README.md").write_text("edited\n")  # outside lib/: not the code that trains
    assert provenance.check_code(root=repo).hash == ""
    (repo / "lib" / "pkg" / "rule.py").write_text("STEP = 2\n")
    (repo / "lib" / "pkg" / "new_rule.py").write_text("NEW = True\n")  # a new file is uncommitted code too
    assert sorted(lib_changes(repo)) == ["lib/pkg/new_rule.py", "lib/pkg/rule.py"]
    with pytest.raises(provenance.DirtyTree) as e:
        provenance.check_code(root=repo)
    message = str(e.value)
    assert "\n" not in message and "lib/pkg/rule.py" in message and "lib/pkg/new_rule.py" in message
    assert "--allow-dirty" in message and "DELTALAB_ALLOW_DIRTY=1" in message
    assert lib_changes(repo.parent) is None  # no git checkout: nothing to compare with, nothing refused


def test_the_stored_diff_is_the_code_that_ran_head_plus_the_diff(repo, tmp_path, strict, monkeypatch):
    (repo / "lib" / "pkg" / "rule.py").write_text("STEP = 2\n")
    (repo / "lib" / "pkg" / "new_rule.py").write_text("NEW = True\n")
    code = provenance.check_code(allow_dirty=True, root=repo)
    assert code.changed and len(code.hash) == 16 and code.diff == lib_diff(repo)
    monkeypatch.setenv(provenance.ALLOW_DIRTY_ENV, "1")  # the notebooks' and the test suite's way through
    assert provenance.check_code(root=repo) == code
    clone = tmp_path / "clone"
    _git(tmp_path, "clone", "-q", str(repo), str(clone))
    (clone / "the.diff").write_text(code.diff)
    _git(clone, "apply", "the.diff")
    assert (clone / "lib/pkg/rule.py").read_text() == "STEP = 2\n" and (clone / "lib/pkg/new_rule.py").exists()


SMOKE_MEMO = ["grid", "--scale", "smoke", "--variants", "delta_net", "--tasks", "memorization", "--workers", "1",
              "--seeds", "0"]


def test_the_grid_the_cli_and_the_notebooks_refuse_before_training_anything(tmp_path, strict, monkeypatch, capsys):
    from deltalab.__main__ import main
    import deltalab.grid.local as local

    monkeypatch.setattr(provenance, "lib_changes", lambda root=None: ["lib/deltalab/layers.py"])
    monkeypatch.setattr(local, "train_run", lambda *a, **k: pytest.fail("trained from uncommitted code"))
    monkeypatch.setenv("DELTALAB_RESULTS", str(tmp_path))
    assert main(SMOKE_MEMO) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: lib/ has uncommitted changes (lib/deltalab/layers.py)") and "--allow-dirty" in \
        err[-1]
    # run_variant is what run_variant.ipynb and the rounds train through: the same refusal
    with pytest.raises(provenance.DirtyTree, match=r"lib/ has uncommitted changes \(lib/deltalab/layers.py\)"):
        run_variant("delta_net", load_scale("smoke"), ["memorization"], seeds=[0], store=Store(tmp_path),
                    progress=False)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]  # nothing claimed, trained or written


def test_allowed_it_stores_the_diff_once_beside_the_records_and_its_hash_in_each(tmp_path, strict, monkeypatch):
    monkeypatch.setattr(provenance, "lib_changes", lambda root=None: ["lib/deltalab/layers.py"])
    monkeypatch.setattr(provenance, "lib_diff", lambda root=None: "--- a/lib/deltalab/layers.py\n+edited\n")
    store = Store(tmp_path)
    records, summary = run_variant("delta_net", load_scale("smoke"), ["memorization"], seeds=[0, 1], store=store,
                                   progress=False, allow_dirty=True)
    assert summary.trained == 2
    digest = provenance.Code(diff="--- a/lib/deltalab/layers.py\n+edited\n").hash
    assert {r["environment"]["diff"] for r in records} == {digest}
    diffs = list((tmp_path / "smoke" / provenance.DIFFS).iterdir())
    assert diffs == [tmp_path / "smoke" / "_diffs" / f"{digest}.diff"]  # once, no temporary file left
    assert diffs[0].read_text() == "--- a/lib/deltalab/layers.py\n+edited\n"
    smoke = load_scale("smoke")
    assert len(store.records(smoke, variants=["delta_net"], tasks=["memorization"])) == 2  # not a record
    # every run stored: a study re-executed on them trains nothing, and nothing is refused
    monkeypatch.setattr(provenance, "lib_diff", lambda root=None: pytest.fail("read the tree for nothing"))
    _, again = run_variant("delta_net", load_scale("smoke"), ["memorization"], seeds=[0, 1], store=store,
                           progress=False)
    assert again.trained == 0 and again.skipped == 2


def test_status_lists_the_records_whose_commit_is_dirty(tmp_path):
    from test_store import _record

    store = Store(tmp_path)
    runs = plan(["delta_net"], load_scale("smoke"), ["compression", "memorization"], seeds=[0, 1])
    commits = [("abc-dirty", ""), ("abc-dirty", "f00d"), ("abc", ""), ("abc-dirty", "")]
    for (_, spec), (commit, diff) in zip(runs, commits):
        record = _record(spec, 0.5)
        record["environment"] |= {"commit": commit} | ({"diff": diff} if diff else {})
        store.put(spec, record)
    status = grid_status(runs, store)
    assert list(status["commit"][:4]) == ["abc-dirty", "abc-dirty", "abc", "abc-dirty"]
    report = status_report(status, workers=2)
    assert ("from uncommitted code: 3 of 4 stored records name a -dirty commit, 2 of them with no stored diff (the "
            "code that trained them is not known) and 1 with their diff beside them") in report
    lines = report.splitlines()
    first = lines.index(next(l for l in lines if l.startswith("from uncommitted code")))
    assert lines[first + 1] == f"  {store.path(runs[0][1]).relative_to(tmp_path)} (abc-dirty)"
    assert lines[first + 3] == f"  {store.path(runs[1][1]).relative_to(tmp_path)} (abc-dirty, diff f00d)"
    clean = grid_status(runs[2:3], store)
    assert "uncommitted" not in status_report(clean, workers=2)
