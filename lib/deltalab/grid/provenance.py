"""A record names its code: the grid trains only from committed code under ``lib/``, or stores the diff.

A run's record names the commit that trained it (``environment.commit``). When ``lib/`` has uncommitted changes
that commit does not say what ran, so ``execute`` (and everything that trains through it: ``python -m deltalab
grid`` and ``run``, ``ensure``, the round and run_variant notebooks) refuses, before training anything, with
one line naming the changed files (``DirtyTree``, a ValueError: exit status 2 on the command line). Nothing is
refused when every planned run is already stored: re-executing a study on its stored runs trains nothing.

``--allow-dirty`` (``allow_dirty=True``; ``DELTALAB_ALLOW_DIRTY=1`` in the environment, for a notebook run by
papermill or a test suite run from a working tree) trains anyway and keeps the code that ran: the patch against
HEAD (``runtime.lib_diff``: the changes and every new file under ``lib/``) is written once, atomically, beside the
records as ``<store>/<scale>/_diffs/<hash>.diff`` when the first of them is stored, and each record of the grid
stores that hash in ``environment.diff`` beside its ``-dirty`` commit. HEAD plus the diff is the code that trained
it. The tree is read once per grid, when it starts: edit ``lib/`` while a grid runs and its records name the diff
it started with.
``python -m deltalab status`` lists the stored records whose commit is dirty, and says how many have no diff.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..runtime import REPO_ROOT, lib_changes, lib_diff

ALLOW_DIRTY_ENV = "DELTALAB_ALLOW_DIRTY"
DIFFS = "_diffs"  # beside a scale's records: <store>/<scale>/_diffs/<hash>.diff
SHOWN = 5  # changed files named in the refusal


class DirtyTree(ValueError):
    """The grid would train from uncommitted code under ``lib/`` without ``--allow-dirty``."""


@dataclass(frozen=True)
class Code:
    """The code a grid trains with: the changed files under ``lib/`` (none: the commit names it), the patch
    against HEAD and its hash (empty when clean)."""

    changed: tuple[str, ...] = ()
    diff: str = ""

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.diff.encode()).hexdigest()[:16] if self.diff else ""


def allowed_by_environment() -> bool:
    return os.environ.get(ALLOW_DIRTY_ENV, "").strip().lower() in ("1", "true", "yes")


def refusal(changed: list[str] | tuple[str, ...]) -> str:
    """The one-line refusal: the changed files and the way through."""
    named = ", ".join(changed[:SHOWN]) + (f" and {len(changed) - SHOWN} more" if len(changed) > SHOWN else "")
    return (f"lib/ has uncommitted changes ({named}): a record would not name the code that trained it; commit "
            f"them, or pass --allow-dirty ({ALLOW_DIRTY_ENV}=1 for a notebook or a test run) to store the diff "
            f"beside the records")


def check_code(allow_dirty: bool = False, root: Path = REPO_ROOT) -> Code:
    """The code a grid would train with; ``DirtyTree`` if ``lib/`` has uncommitted changes and neither
    ``allow_dirty`` nor ``DELTALAB_ALLOW_DIRTY=1`` allows them. A tree that is no git checkout passes (its
    records say commit ``unknown``)."""
    changed = lib_changes(root)
    if not changed:
        return Code()
    if not (allow_dirty or allowed_by_environment()):
        raise DirtyTree(refusal(changed))
    return Code(tuple(changed), lib_diff(root))


def diff_path(store_root: Path, scale: str, digest: str) -> Path:
    return Path(store_root) / scale / DIFFS / f"{digest}.diff"


def store_diff(store_root: Path, scale: str, code: Code) -> Path | None:
    """Write ``code``'s diff beside the scale's records, once (a diff already there under its hash is the same
    text) and atomically (a temporary file renamed into place); its path, or None for clean code."""
    if not code.diff:
        return None
    path = diff_path(store_root, scale, code.hash)
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(code.diff)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
