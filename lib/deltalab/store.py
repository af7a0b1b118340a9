"""The results store: one JSON record per finished run under ``outputs/results/<scale>/``.

    <root>/<scale>/<variant>/<task>/<setting id>/lr<lr>_wd<wd>_seed<seed>_b<budget>.json

The budget fingerprint (``train.budget_id``) makes a run trained under an earlier budget of the scale a
different run, so editing a scale file never silently reuses results it no longer describes.

- A record is written atomically (temporary file in the same folder, then rename): a reader sees a whole
  record or none.
- A run in progress holds ``<record>.lock``, created with O_EXCL and holding the owner's host and pid. A
  second process skips a locked run; a lock whose process is gone (a killed run) is stale and is taken over.
  So two grids at once neither corrupt nor duplicate anything, and killing a run loses only that run.
- Re-running skips finished runs: ``get`` finds the record.
"""
from __future__ import annotations

import json
import os
import socket
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from . import tasks as T
from .runtime import REPO_ROOT
from .train import RunSpec

DEFAULT_ROOT = REPO_ROOT / "outputs" / "results"


def _fmt(x: float) -> str:
    return f"{x:g}".replace("+", "")


class Store:
    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root or os.environ.get("DELTALAB_RESULTS") or DEFAULT_ROOT)

    def path(self, spec: RunSpec) -> Path:
        sid = T.setting_id(spec.task, spec.setting_dict) if spec.setting else "baseline"
        budget = f"_b{spec.budget_id}" if spec.budget_id else ""
        name = f"lr{_fmt(spec.lr)}_wd{_fmt(spec.wd)}_seed{spec.seed}{budget}.json"
        return self.root / spec.scale / spec.variant / spec.task / sid / name

    def get(self, spec: RunSpec) -> dict | None:
        path = self.path(spec)
        if not path.exists():
            return None
        return json.loads(path.read_text())

    def put(self, spec: RunSpec, record: dict) -> Path:
        path = self.path(spec)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(record, f, indent=1, sort_keys=True, allow_nan=True)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    @contextmanager
    def claim(self, spec: RunSpec) -> Iterator[bool]:
        """Yield True if this process now owns the run (and release it after), False if another live process
        does. A lock left by a dead process is taken over."""
        lock = self.path(spec).with_suffix(".lock")
        lock.parent.mkdir(parents=True, exist_ok=True)
        owned = _try_lock(lock)
        if not owned and _is_stale(lock):
            lock.unlink(missing_ok=True)
            owned = _try_lock(lock)
        try:
            yield owned
        finally:
            if owned:
                lock.unlink(missing_ok=True)

    def records(self, scale: str, variants: list[str] | None = None, tasks: list[str] | None = None) -> list[dict]:
        """Every finished record of a scale trained under the scale's current budget (optionally only some
        variants / tasks). Records of an earlier budget of the scale file are left out."""
        from .params import load_scale
        from .train import budget_id

        base = self.root / scale
        out = []
        if not base.exists():
            return out
        sc = load_scale(scale)
        for path in sorted(base.glob("*/*/*/*.json")):
            variant, task = path.parts[-4], path.parts[-3]
            if (variants is None or variant in variants) and (tasks is None or task in tasks):
                record = json.loads(path.read_text())
                if task in sc.tasks and record["spec"].get("budget_id") == budget_id(sc, task):
                    out.append(record)
        return out


def _try_lock(lock: Path) -> bool:
    """Create ``lock`` holding "<host> <pid>" atomically: write a private file, then hard-link it into place
    (``link`` fails if the lock exists), so no other process ever sees a lock without its owner."""
    fd, tmp = tempfile.mkstemp(dir=lock.parent, prefix=f".{lock.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(f"{socket.gethostname()} {os.getpid()}\n")
        os.link(tmp, lock)
        return True
    except FileExistsError:
        return False
    finally:
        Path(tmp).unlink(missing_ok=True)


def _is_stale(lock: Path) -> bool:
    """A lock is stale when it was written on this host by a process that no longer exists."""
    try:
        host, pid = lock.read_text().split()
    except (OSError, ValueError):
        return True  # unreadable: not a lock this module wrote
    if host != socket.gethostname():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
