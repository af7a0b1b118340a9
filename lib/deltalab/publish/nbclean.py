"""Normalise an executed notebook so that two executions diff only where results differ.

Removed or rewritten, in place:
- execution timestamps and durations: papermill's ``start_time``/``end_time``/``duration`` (notebook and
  cells) and Jupyter's per-cell ``execution`` metadata;
- ``text/plain`` object reprs (``<IPython.core.display.Image object>``, ``<Figure size ...>``) beside an image;
- tqdm widget outputs and the notebook's ``widgets`` metadata;
- progress-bar residue: in stream text only what follows the last carriage return of each line is kept;
- the repository's absolute path (and the user's home) in outputs and papermill metadata, replaced by
  ``.`` (and ``~``);
- the random id papermill gives its injected-parameters cell, replaced by ``injected-parameters``.

    python -m deltalab.publish.nbclean executed/round_1.ipynb executed/run_variant.ipynb
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat

from ..runtime import REPO_ROOT

TIMING_KEYS = ("start_time", "end_time", "duration")
OBJECT_REPR = re.compile(r"^<(IPython\.core\.display\.\w+|matplotlib\.\w+.*|Figure size .*) object>$|^<Figure size [^>]*>$")
WIDGET = "application/vnd.jupyter.widget-view+json"


def _paths(text: str, root: str) -> str:
    text = text.replace(root, ".")
    home = str(Path.home())
    return text.replace(home + "/", "~/") if len(home) > 1 else text


def _progress(text: str) -> str:
    """Keep, per line, what a terminal would show: the text after the line's last carriage return."""
    lines = [line.rsplit("\r", 1)[-1] for line in text.split("\n")]
    return "\n".join(lines)


def _walk(obj, fn):
    """Apply ``fn`` to every string inside nested dicts/lists."""
    if isinstance(obj, str):
        return fn(obj)
    if isinstance(obj, list):
        return [_walk(x, fn) for x in obj]
    if isinstance(obj, dict):
        for k in list(obj):
            obj[k] = _walk(obj[k], fn)
        return obj
    return obj


def _clean_output(out, root: str):
    if out.get("output_type") == "stream":
        out["text"] = _paths(_progress(out["text"]), root)
        return out if out["text"].strip() else None
    data = out.get("data")
    if data is not None:
        data.pop(WIDGET, None)
        if any(k.startswith("image/") for k in data) and OBJECT_REPR.match(str(data.get("text/plain", "")).strip()):
            del data["text/plain"]
        for k in list(data):
            if k.startswith("text/") or k == "application/json":
                data[k] = _walk(data[k], lambda s: _paths(s, root))
        if not data:
            return None
    if out.get("output_type") == "error":
        out["traceback"] = [_paths(t, root) for t in out.get("traceback", [])]
        out["evalue"] = _paths(out.get("evalue", ""), root)
    return out


def clean_notebook(nb, root: str | Path = REPO_ROOT):
    """Clean a notebook object in place and return it."""
    root = str(root)
    pm = nb.metadata.get("papermill")
    if pm is not None:
        for k in TIMING_KEYS:
            pm.pop(k, None)
        _walk(pm, lambda s: _paths(s, root))
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        cpm = cell.metadata.get("papermill")
        if cpm is not None:
            for k in TIMING_KEYS:
                cpm.pop(k, None)
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell.source = _paths(cell.source, root)
            if "id" in cell:
                cell.id = "injected-parameters"
        if cell.cell_type == "code":
            cell.outputs = [o for o in (_clean_output(o, root) for o in cell.outputs) if o is not None]
    return nb


def clean(path: str | Path, root: str | Path = REPO_ROOT) -> Path:
    """Clean the notebook file at ``path`` in place."""
    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    clean_notebook(nb, root)
    nbformat.write(nb, path)
    return path


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m deltalab.publish.nbclean NOTEBOOK.ipynb ...", file=sys.stderr)
        return 2
    for p in argv:
        clean(p)
        print(f"cleaned {p}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
