"""Rename a scale everywhere it lives: its parameter file, its stored runs and its executed study.

    python tools/archive_scale.py cpu cpu-v2        # today's cpu becomes the archived cpu-v2
    python tools/archive_scale.py cpu-next cpu      # then the recalibrated scale becomes the default

What moves (relative to the repository, or ``--root``):

    params/scales/<old>.yaml    → params/scales/<new>.yaml, its ``name:`` line rewritten
    outputs/results/<old>/      → outputs/results/<new>/, every record's ``spec.scale`` rewritten
    outputs/<old>/              → outputs/<new>/ (the executed study; re-execute it under the new name after)

A run's id is its spec without the scale's name (the file name carries the budget fingerprint, which does not
depend on the name), so the records stay valid under the new name. Nothing is overwritten: if any target exists,
or a record names another scale, the command stops before moving anything. Afterwards, edit the new scale's
``description`` (say it is archived, or what it now is) and re-execute the study under the new name
(``SCALE=<new> bash scripts/study.sh``).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def plan(root: Path, old: str, new: str) -> list[tuple[Path, Path]]:
    """The moves, checked: the old scale's file exists, no target exists, every record names ``old``."""
    moves = [(root / "params" / "scales" / f"{old}.yaml", root / "params" / "scales" / f"{new}.yaml"),
             (root / "outputs" / "results" / old, root / "outputs" / "results" / new),
             (root / "outputs" / old, root / "outputs" / new)]
    if not moves[0][0].exists():
        raise SystemExit(f"error: no scale file {moves[0][0]}")
    taken = [str(dst) for src, dst in moves if src.exists() and dst.exists()]
    if taken:
        raise SystemExit(f"error: already there, nothing moved: {', '.join(taken)}")
    for path in sorted(moves[1][0].rglob("*.json")) if moves[1][0].exists() else []:
        scale = json.loads(path.read_text()).get("spec", {}).get("scale")
        if scale != old:
            raise SystemExit(f"error: {path}: spec.scale is {scale!r}, not {old!r}; nothing moved")
    return [(src, dst) for src, dst in moves if src.exists()]


def archive(root: Path, old: str, new: str) -> list[tuple[Path, Path]]:
    moves = plan(root, old, new)
    for src, dst in moves:
        os.replace(src, dst)
    params = root / "params" / "scales" / f"{new}.yaml"
    text = params.read_text()
    params.write_text(re.sub(rf"(?m)^name: {re.escape(old)}\s*$", f"name: {new}", text, count=1))
    for path in sorted((root / "outputs" / "results" / new).rglob("*.json")):
        record = json.loads(path.read_text())
        record["spec"]["scale"] = new
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(record, indent=1, sort_keys=True))
        os.replace(tmp, path)
    return moves


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--root", type=Path, default=ROOT, help="the repository (default: this one)")
    args = parser.parse_args(argv)
    for src, dst in archive(args.root, args.old, args.new):
        print(f"{src.relative_to(args.root)} → {dst.relative_to(args.root)}")
    print(f"now edit params/scales/{args.new}.yaml's description and re-execute: SCALE={args.new} bash scripts/study.sh")
    return 0


if __name__ == "__main__":
    sys.exit(main())
