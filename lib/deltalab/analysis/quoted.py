"""Figures that the docs quote from the results, each tied to the query that measures it.

README.md, docs/*.md and the scale files (params/scales/*.yaml) quote figures measured elsewhere: a cell of an
executed study's csv, an agreement with the seed table, an accuracy on a stored learning curve. Each such figure
carries a **marker** right after the paragraph (or comment block) that quotes it, naming where it comes from:

    in Markdown (invisible once rendered):
        <!-- figure 0.983: csv outputs/cpu-v2/accuracies_summary.csv mean variant=delta_net column="Context Recall" -->
    in a scale file (a comment):
        # figure 0.10: agreement cpu "Selective Copy" calibration

``figure <as quoted>: <source> <arguments>``; arguments are split as a shell splits them (quote those with
spaces). The quoted text must appear as written in the paragraph the marker closes (the lines above it back to a
blank line or to the markers of the paragraph before, in a scale file also to a key: the comment block or the
text of a key above the marker), and the source must give it at the
precision it is written at: ``0.983`` is the source's value rounded to 3 decimals, ``93%`` its share in percent
rounded to whole percents, ``9 of 10`` a share that is 9 rows of 10, ``3,200`` a whole number, ``3e-3`` to its
mantissa's digits, ``+0.051`` and ``−0.062`` signed values. Sources (``SOURCES``):

* ``csv PATH FIELD KEY=VALUE…``: the one row of the csv (a path from the repository root) whose columns have
  those values; its ``FIELD``.
* ``agreement SCALE TASK ROWS [calibration-of=SCALE] [setting=S] [field=FIELD]``: ``agreement.scale_agreement``
  of a scale's stored runs (held out from another scale's calibration rows; each setting judged alone), the row
  of that task (a table column, e.g. "Selective Copy"), row set ("all", "held-out", "calibration") and setting
  (e.g. ``baseline``, ``vs64``); its ``value`` unless another field is named (e.g. ``kappa``, ``constant``).
  ``best-of=OTHER``: the two-point learning-rate sweep of the scale and ``OTHER`` (``agreement.best_of``: on the
  rows, tasks and seeds both have), or with ``sweep=NAME`` one of the two scales alone there.
* ``curve SCALE VARIANT TASK SEED EPOCH [lr=LR] [setting=DIR]``: the test accuracy after that epoch of the one
  stored run (the task by its file name, e.g. ``in-context-recall``; ``setting``: the folder of a setting other
  than the only one stored); ``EPOCH`` ``min`` or ``max``: the lowest or highest over its curve, ``gain``: what its
  last epoch gained.
* ``score SCALE VARIANT COLUMN [seed=S] [setting=S]``: a row's score on a task column as the study's tables read
  it (``study.seed_scores``: the best epoch of each run, the task's settings averaged), the mean over its seeds.
* ``wall SCALE sum|mean|median|min|max|count [task=T] [per=FIELD,…] [unit=s|min|h]``: the recorded wall time of a
  scale's stored runs (of one task), each run's or summed per group of runs (``per=variant,seed``: per row and
  seed), then aggregated; ``count``: how many runs (or groups) there are.
* ``scale NAME KEY``: a value of a scale file (``KEY`` dotted, e.g. ``tasks.selective-copying.epochs`` or
  ``tasks.memorization.settings.0.vocab_size``; a list of one value gives that value): for a doc that describes a
  scale's settings, so that it cannot go on describing an earlier version's.

``check`` reads every marker of the files and returns the figures that no longer hold, each naming its file and
line; ``tests/test_quoted_figures.py`` runs it on the committed docs and store, so a figure that drifts from the
store fails a test instead of going stale.
"""
from __future__ import annotations

import math
import re
import shlex
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

MARKER = {"md": re.compile(r"^\s*<!--\s*figure\s+(?P<quoted>[^:]+?)\s*:\s*(?P<query>.+?)\s*-->\s*$"),
          "yaml": re.compile(r"^\s*#\s*figure\s+(?P<quoted>[^:]+?)\s*:\s*(?P<query>.+?)\s*$")}
FILES = ("README.md", "docs/*.md", "params/scales/*.yaml")
YAML_KEY = re.compile(r"^\s*[\w-]+:")  # a scale file's key: a paragraph above a marker stops there


@dataclass(frozen=True)
class Figure:
    """One marker: the figure as quoted, its source's query, and where it is (file, line, the paragraph above)."""

    quoted: str
    query: str
    path: Path
    line: int
    paragraph: str

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


def figures(path: Path) -> list[Figure]:
    """Every marker of one file, each with the paragraph it closes (consecutive markers close the same one)."""
    lines = Path(path).read_text().splitlines()
    comments_only = Path(path).suffix in (".yaml", ".yml")
    marker = MARKER["yaml" if comments_only else "md"]
    out = []
    for i, line in enumerate(lines):
        m = marker.match(line)
        if not m:
            continue
        above = []
        for previous in reversed(lines[:i]):
            if marker.match(previous):
                if above:
                    break  # the markers of the paragraph before
                continue  # this marker's own group
            if not previous.strip() or (comments_only and YAML_KEY.match(previous)):
                break
            above.append(previous)
        out.append(Figure(m["quoted"], m["query"], Path(path), i + 1, "\n".join(reversed(above))))
    return out


def parse_quoted(quoted: str) -> tuple[float, float]:
    """(value, tolerance) of a figure as written: the value it states and half a unit of its last digit."""
    text = quoted.replace("−", "-").replace(",", "").strip()
    share = re.fullmatch(r"(\d+) of (\d+)", text)
    if share:
        return int(share[1]) / int(share[2]), 0.5 / int(share[2])
    power = re.fullmatch(r"(\d+(?:\.(\d+))?)e(-?\d+)", text)
    if power:
        return float(text), 0.5 * 10 ** (int(power[3]) - len(power[2] or ""))
    percent = text.endswith("%")
    number = text.rstrip("%").lstrip("+")
    if not re.fullmatch(r"-?\d+(\.\d+)?", number):
        raise ValueError(f"{quoted!r}: not a figure (a number such as 0.983, +0.051, 93%, 3,200 or 9 of 10)")
    decimals = len(number.split(".")[1]) if "." in number else 0
    scale = 100 if percent else 1
    return float(number) / scale, 0.5 * 10 ** -decimals / scale


def _split(args: list[str], n: int, where: str, usage: str) -> tuple[list[str], dict[str, str]]:
    plain = [a for a in args if "=" not in a]
    named = dict(a.split("=", 1) for a in args if "=" in a)
    if len(plain) != n:
        raise ValueError(f"{where}: expected {usage}, got {' '.join(args)!r}")
    return plain, named


def _csv(args: list[str], root: Path, where: str) -> float:
    import pandas as pd

    (path, field), keys = _split(args, 2, where, "csv PATH FIELD KEY=VALUE…")
    frame = pd.read_csv(root / path)
    for k, v in keys.items():
        if k not in frame.columns:
            raise ValueError(f"{where}: {path} has no column {k!r} (columns: {', '.join(frame.columns)})")
        frame = frame[frame[k].astype(str) == v]
    if len(frame) != 1:
        raise ValueError(f"{where}: {path} has {len(frame)} rows where {keys}, not one")
    if field not in frame.columns:
        raise ValueError(f"{where}: {path} has no column {field!r}")
    return float(frame[field].iloc[0])


@lru_cache(maxsize=None)
def _stored(scale: str, results: str):
    from ..store import Store
    from . import agreement

    return agreement.stored_runs(scale, store=Store(results))


@lru_cache(maxsize=None)
def _agreement_frame(scale: str, calibration_of: str | None, per_setting: bool, best_of: str | None, sweep: str,
                     results: str):
    from ..params import load_scale
    from . import agreement

    held_by = load_scale(calibration_of) if calibration_of else None  # its held-out rows and their targets
    calibration, targets = (held_by.calibration_rows, held_by.agreement_targets) if held_by else (None, None)
    runs = _stored(scale, results)
    if best_of:
        runs = agreement.best_of(runs, _stored(best_of, results))[0][sweep]
    return agreement.scale_agreement(runs, per_setting=per_setting, calibration=calibration, targets=targets)


def _agreement(args: list[str], root: Path, where: str) -> float:
    (scale, task, rows), named = _split(args, 3, where, "agreement SCALE TASK ROWS [calibration-of=S] [setting=S] "
                                                        "[best-of=S [sweep=S]] [field=F]")
    frame = _agreement_frame(scale, named.get("calibration-of"), "setting" in named, named.get("best-of"),
                             named.get("sweep", "best of both"), str(root / "outputs" / "results"))
    hit = frame[(frame["task"] == task) & (frame["rows"] == rows)]
    if "setting" in named:
        hit = hit[hit["setting"] == named["setting"]]
    if len(hit) != 1:
        raise ValueError(f"{where}: the agreement of {scale} has no row for task {task!r}, rows {rows!r}"
                         + (f", setting {named['setting']!r}" if "setting" in named else ""))
    return float(hit[named.get("field", "value")].iloc[0])


def _curve(args: list[str], root: Path, where: str) -> float:
    from ..params import load_scale
    from ..store import Store

    (scale, variant, task, seed, epoch), named = _split(args, 5, where,
                                                        "curve SCALE VARIANT TASK SEED EPOCH [lr=LR] [setting=DIR]")
    stored = Store(root / "outputs" / "results").records(load_scale(scale), variants=[variant], tasks=[task])
    runs = [r for r in stored
            if r["spec"]["seed"] == int(seed) and ("lr" not in named or r["spec"]["lr"] == float(named["lr"]))]
    if "setting" in named:
        from ..tasks import setting_id

        runs = [r for r in runs if (setting_id(task, r["spec"]["setting"]) if r["spec"]["setting"] else "baseline")
                == named["setting"]]
    if len(runs) != 1:
        raise ValueError(f"{where}: {len(runs)} stored runs of {variant} on {task} at {scale}, seed {seed} "
                         f"({named or 'no lr or setting named'}), not one")
    curve = [e["test_acc"] for e in runs[0]["curve"] if "test_acc" in e]
    if epoch in ("min", "max"):
        return float(min(curve) if epoch == "min" else max(curve))
    if epoch == "gain":
        return float(curve[-1] - curve[-2])
    at = [e["test_acc"] for e in runs[0]["curve"] if e["epoch"] == int(epoch)]
    if not at:
        raise ValueError(f"{where}: the run has no epoch {epoch} (it ran {runs[0]['epochs_run']})")
    return float(at[0])


UNITS = {"s": 1, "min": 60, "h": 3600}


AGGREGATES = ("sum", "mean", "median", "min", "max", "count")


def _wall(args: list[str], root: Path, where: str) -> float:
    import pandas as pd

    from ..params import load_scale
    from ..store import Store

    (scale, agg), named = _split(args, 2, where, f"wall SCALE {'|'.join(AGGREGATES)} [task=T] [per=FIELD,…] "
                                                 f"[unit={'|'.join(UNITS)}]")
    if agg not in AGGREGATES or named.get("unit", "s") not in UNITS:
        raise ValueError(f"{where}: wall takes one of {', '.join(AGGREGATES)} and a unit among {', '.join(UNITS)}")
    runs = pd.DataFrame([dict(r["spec"], wall=float(r["wall_time_s"]))
                         for r in Store(root / "outputs" / "results").records(load_scale(scale))
                         if "task" not in named or r["spec"]["task"] == named["task"]])
    if runs.empty:
        raise ValueError(f"{where}: no stored run of {scale}" + (f" on {named['task']}" if "task" in named else ""))
    walls = runs.groupby(named["per"].split(","))["wall"].sum() if "per" in named else runs["wall"]
    return float(getattr(walls, agg)()) / (1 if agg == "count" else UNITS[named.get("unit", "s")])


def _score(args: list[str], root: Path, where: str) -> float:
    (scale, variant, column), named = _split(args, 3, where, "score SCALE VARIANT COLUMN [seed=S] [setting=S]")
    scores = _stored(scale, str(root / "outputs" / "results")).scores
    hit = scores[(scores["variant"] == variant) & (scores["column"] == column)
                 & (scores["setting"] == named.get("setting", "all"))]
    if "seed" in named:
        hit = hit[hit["seed"] == int(named["seed"])]
    if hit.empty:
        raise ValueError(f"{where}: no score of {variant} on {column} at {scale} ({named or 'every seed'})")
    return float(hit["acc"].mean())


def _scale(args: list[str], root: Path, where: str) -> float:
    import yaml

    (name, key), _ = _split(args, 2, where, "scale NAME KEY")
    value = yaml.safe_load((root / "params" / "scales" / f"{name}.yaml").read_text())
    for part in key.split("."):
        if isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        elif isinstance(value, dict) and part in value:
            value = value[part]
        else:
            raise ValueError(f"{where}: params/scales/{name}.yaml has no {key!r}")
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    return float(value)


SOURCES = {"csv": _csv, "agreement": _agreement, "curve": _curve, "score": _score, "wall": _wall, "scale": _scale}


def measure(figure: Figure, root: Path) -> float:
    """What the figure's source gives now; ValueError naming the marker for a query it cannot answer."""
    source, *args = shlex.split(figure.query)
    if source not in SOURCES:
        raise ValueError(f"{figure.where}: unknown source {source!r} (sources: {', '.join(SOURCES)})")
    return SOURCES[source](args, root, figure.where)


def problems(figure: Figure, root: Path) -> str | None:
    """Why a figure does not hold (its text is not where the marker is, or its source gives another value);
    None when it holds."""
    if figure.quoted not in figure.paragraph:
        return f"{figure.where}: {figure.quoted!r} is not in the paragraph the marker closes"
    try:
        value, tolerance = parse_quoted(figure.quoted)
        got = measure(figure, root)
    except (ValueError, OSError) as e:
        return str(e) if str(e).startswith(figure.where) else f"{figure.where}: {e}"
    if math.isnan(got) or abs(got - value) > tolerance + 1e-12:
        return f"{figure.where}: quotes {figure.quoted}, but {figure.query} gives {got:.6g} now"
    return None


def check(root: Path, files: tuple[str, ...] = FILES) -> tuple[list[Figure], list[str]]:
    """Every marker of ``files`` (globs under ``root``) and the problems of those that do not hold."""
    found = [f for pattern in files for path in sorted(Path(root).glob(pattern)) for f in figures(path)]
    return found, [p for f in found if (p := problems(f, Path(root)))]
