"""The notebooks execute end to end at smoke scale (papermill) into a temporary folder and a temporary
results store, with no error output; the executed copies clean up (deltalab.publish.nbclean).

Kept small: two tasks (the quickest at smoke), and both notebooks share one store, so the round reuses the
baselines that run_variant trained. The strict determinism check of the tagged cells is nbval's job in CI
(see tools/build_notebooks.py's docstring and the project README).
"""
import os
import re
from pathlib import Path

import nbformat
import papermill
import pytest

from deltalab.publish import nbclean
from deltalab.analysis.claims import is_verdict
from deltalab.runtime import REPO_ROOT

TASKS = "memorization,noisy-in-context-recall"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """One results store for the module (DELTALAB_RESULTS, inherited by the kernels), restored afterwards."""
    root = tmp_path_factory.mktemp("notebooks")
    old = os.environ.get("DELTALAB_RESULTS")
    os.environ["DELTALAB_RESULTS"] = str(root / "results")
    yield root
    if old is None:
        os.environ.pop("DELTALAB_RESULTS", None)
    else:
        os.environ["DELTALAB_RESULTS"] = old


def _execute(name: str, out: Path, parameters: dict) -> nbformat.NotebookNode:
    papermill.execute_notebook(str(REPO_ROOT / "notebooks" / name), str(out), parameters=parameters,
                               cwd=str(out.parent), kernel_name="python3", progress_bar=False)
    nbclean.clean(out)
    nb = nbformat.read(out, as_version=4)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors, [f"{e.ename}: {e.evalue}" for e in errors]
    text = out.read_text()
    assert str(REPO_ROOT) not in text and "<IPython.core.display.Image object>" not in text
    assert "start_time" not in text
    return nb


def _markdown(nb) -> str:
    return "\n".join(o.get("data", {}).get("text/markdown", "") for c in nb.cells if c.cell_type == "code"
                     for o in c.outputs)


def test_run_variant_notebook(workdir):
    nb = _execute("run_variant.ipynb", workdir / "run_variant.ipynb",
                  {"variant": "l2_norm_error", "scale": "smoke", "tasks": TASKS,
                   "figures_dir": str(workdir / "figures")})
    assert any(p.suffix == ".png" for p in (workdir / "figures").iterdir())
    text = _markdown(nb)
    assert "**Memorize**: l2_norm_error scores" in text  # the row's one display name, its short name
    assert "l2_normalized_error_update" not in text


def test_round_notebook(workdir):
    figures = workdir / "figures_round_1"
    nb = _execute("round.ipynb", workdir / "round_1.ipynb",
                  {"round_file": "params/rounds/round_1.yaml", "scale": "smoke", "tasks": TASKS,
                   "figures_dir": str(figures)})
    names = sorted(p.name for p in figures.iterdir())
    assert {f"round_1_{k}.png" for k in ("heatmap", "settings", "reproduced", "curves")} <= set(names)
    assert not any("cost" in n for n in names)  # no bench report given: no cost figure
    text = _markdown(nb)
    assert "at scale `smoke`, 2 of 6 tasks" in text.lower()  # a sentence may open with it
    assert "success criteria of `rmsprop_state`" in text
    verdicts = re.findall(r"^- \*\*(.+?)\*\*:", text, re.M)
    assert verdicts and all(is_verdict(v) for v in verdicts), verdicts
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(images) == len(names)


def _readme_papermill_line() -> str:
    """README's command that runs one variant at smoke through papermill, exactly as printed there."""
    readme = (REPO_ROOT / "README.md").read_text()
    lines = [line.split("#")[0].strip() for line in readme.splitlines()
             if "papermill notebooks/run_variant.ipynb" in line and "-p scale smoke" in line]
    assert lines, "README.md has no papermill line that runs run_variant.ipynb at smoke"
    return lines[0]


def test_readmes_papermill_line_runs_as_printed_in_a_fresh_shell(workdir):
    """The line as README prints it (its executable a path from the repository root, so it works after setup.sh
    without activating .venv), its output sent into the temporary folder and one task added to keep it quick."""
    import shlex
    import subprocess

    argv = shlex.split(_readme_papermill_line())
    assert argv[0] == ".venv/bin/papermill" and "out.ipynb" in argv
    out = workdir / "readme_run_variant.ipynb"
    argv = [str(out) if a == "out.ipynb" else a for a in argv] + ["-p", "tasks", "memorization",
                                                                   "-p", "figures_dir", str(workdir / "figures")]
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONHOME")}
    done = subprocess.run(argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    nb = nbformat.read(out, as_version=4)
    assert not [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert "**Memorize**: l2_norm_error scores" in _markdown(nb)


def test_a_bad_variant_file_through_papermill_ends_with_the_checks_one_line(workdir):
    """A file that fails its checks stops the notebook at its first cell, whose error is the check's one line (the
    CLI's message), not a traceback through the library."""
    import subprocess

    bad = workdir / "peeks_ahead.py"
    bad.write_text("from deltalab.core import delta_rule_chunkwise as f\n\n\n"
                   "def delta_rule_chunkwise(q, k, v, beta, chunk_size=32):\n"
                   "    o, S = f(q, k, v, beta, chunk_size)\n    return o + o.flip(2), S\n")
    out = workdir / "bad_variant.ipynb"
    done = subprocess.run([str(REPO_ROOT / ".venv" / "bin" / "papermill"), "--no-progress-bar", "--log-level",
                           "WARNING", "notebooks/run_variant.ipynb", str(out), "-p", "variant", str(bad),
                           "-p", "scale", "smoke"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert re.fullmatch(rf"ParameterError: variant file {re.escape(str(bad))}: failed the 'causal' check: .*"
                        r"the output sees future tokens", lines[-1]), lines[-5:]
    assert lines[-2].startswith("Exception encountered at"), lines[-5:]  # the kernel's part is that one line
    nb = nbformat.read(out, as_version=4)
    failed = [c for c in nb.cells if c.cell_type == "code" and any(o.output_type == "error" for o in c.outputs)]
    assert len(failed) == 1 and "report.check_parameters(" in failed[0].source
