"""The results store: one JSON record per finished run under ``outputs/results/<scale>/``.

    <root>/<scale>/<variant>/<task>/<setting id>/lr<lr>_wd<wd>_seed<seed>_b<budget>.json

The budget fingerprint (``runs.budget_id``) makes a run trained under an earlier budget of the scale, or in
another precision, a different run, so editing a scale file never silently reuses results it no longer
describes and a bf16 run is never mistaken for an fp32 one.

- A record is written atomically (temporary file in the same folder, then rename), with the umask's mode: a
  reader sees a whole record or none, and a shared results folder stays readable to its other users.
- Before a run trains, ``check_writable`` writes an anonymous probe file in the run's folder, so a full disk
  or an unwritable store fails at once, naming the folder, not after the training.
- Every reader checks a record (``read_record``): a truncated, empty or edited file, a missing key or metric, a
  value of the wrong type (``test_acc: "0.9"``, ``wall_time_s: "fast"``), a non-finite metric or an accuracy
  outside [0, 1] raises ``CorruptRecordError`` naming the file and the field. Such a record is not a stored run:
  ``records(..., bad=[])`` leaves it out and lists it (``table`` and ``status`` print it), nothing is deleted,
  and a grid moves it aside (``<name>.corrupt``, with a warning) and re-trains the run.
- Reading (``get``, ``records``, ``lock_state``) creates and changes nothing, so a read-only store or a full
  disk can still be read.
- A run in progress holds ``<record>.lock`` (created atomically, holding the owner's host, pid, the process's
  start time and a nonce). The owner keeps a lease on it: a thread touches the lock's mtime every
  ``HEARTBEAT_S`` seconds. A lock is stale, and taken over, when its lease has expired (no heartbeat for
  ``lease_s`` seconds: a killed process, a lock from another host, a pid that was reused), or at once when
  it was written on this host by a process that no longer exists (or whose pid now belongs to another
  process). So two grids at once neither corrupt nor duplicate anything, and killing a run loses only it.
- Re-running skips finished runs: ``get`` finds the record.

Tables computed from a store go beside it (``tables_dir``): ``outputs/<scale>/`` for the repository's own
store ``outputs/results``, ``<root>/tables/<scale>/`` for any other.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import secrets
import socket
import tempfile
import threading
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from . import tasks as T
from .runtime import PRECISIONS, REPO_ROOT
from .runs import RunSpec, budget_id

if TYPE_CHECKING:
    from .params import Scale

DEFAULT_ROOT = REPO_ROOT / "outputs" / "results"
HEARTBEAT_S = 30.0  # how often the owner of a lock touches it
LEASE_S = 600.0  # a lock not touched for this long is expired (DELTALAB_LOCK_LEASE_S overrides)
PROBE_BYTES = 256 * 1024  # the probe written before training: well above a record's size (3-30 KB)
RECORD_KEYS = ("spec", "label", "metrics", "best_epoch", "epochs_run", "diverged", "precision",
               "train_tokens_per_s", "wall_time_s")
SPEC_KEYS = ("variant", "task", "setting", "lr", "wd", "seed", "scale")
METRIC_KEYS = ("test_acc", "test_token_acc", "test_ppl")  # what the tables read


class StoreError(Exception):
    """A problem with the results store itself (not with the user's input)."""


class CorruptRecordError(StoreError, ValueError):
    """A record file that is not a whole run record: ``path`` and ``problem`` (what is wrong with it)."""

    def __init__(self, message: str, path: Path | None = None, problem: str = ""):
        super().__init__(message)
        self.path, self.problem = path, problem


class StoreWriteError(StoreError, OSError):
    """The store cannot be written (full disk, no permission, not a folder). Its message names the path."""

    def __init__(self, message: str, cause: OSError | None = None):
        super().__init__(message)
        self.errno = getattr(cause, "errno", None)


def _fmt(x: float) -> str:
    return f"{x:g}".replace("+", "")


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _finite(x, low: float = 0.0, high: float = math.inf) -> bool:
    return _is_number(x) and math.isfinite(x) and low <= x <= high


# Each field of a record that a reader uses: (where, check, what is valid). Checked in this order.
_FIELD_CHECKS = (
    ("label", lambda x: isinstance(x, str) and bool(x.strip()), "a non-empty string"),
    ("spec.variant", lambda x: isinstance(x, str) and bool(x.strip()), "a non-empty string"),
    ("spec.task", lambda x: x in T.TASKS, f"one of {', '.join(T.TASKS)}"),
    ("spec.setting", lambda x: isinstance(x, dict), "a mapping of the changes from the baseline ({} for it)"),
    ("spec.lr", lambda x: _finite(x) and x > 0, "a finite number > 0"),
    ("spec.wd", _finite, "a finite number ≥ 0"),
    ("spec.seed", lambda x: _is_int(x) and x >= 0, "an integer ≥ 0"),
    ("spec.scale", lambda x: isinstance(x, str) and bool(x.strip()), "a non-empty string"),
    ("metrics.test_acc", lambda x: _finite(x, 0.0, 1.0), "a finite number in [0, 1]"),
    ("metrics.test_token_acc", lambda x: _finite(x, 0.0, 1.0), "a finite number in [0, 1]"),
    ("metrics.test_ppl", _finite, "a finite number ≥ 0"),
    ("best_epoch", lambda x: _is_int(x) and x >= 0, "an integer ≥ 0"),
    ("epochs_run", lambda x: _is_int(x) and x >= 0, "an integer ≥ 0"),
    ("diverged", lambda x: isinstance(x, bool), "true or false"),
    ("precision", lambda x: x in ("fp32", "bf16"), "fp32 or bf16"),
    ("train_tokens_per_s", _finite, "a finite number ≥ 0 (tokens per second)"),
    ("wall_time_s", _finite, "a finite number ≥ 0 (seconds)"),
)


def _field(record: dict, where: str):
    value = record
    for part in where.split("."):
        value = value[part]
    return value


def _check_fields(record: dict) -> None:
    """ValueError naming the first field of ``record`` that a reader could not use, what it must be and what it
    is (a string where a number belongs, NaN, an accuracy outside [0, 1], a missing metric)."""
    if not isinstance(record, dict):
        raise ValueError(f"a JSON {type(record).__name__}, not an object")
    missing = [k for k in RECORD_KEYS if k not in record]
    for key in ("spec", "metrics"):
        if key in record and not isinstance(record[key], dict):
            raise ValueError(f"{key} must be a mapping; got {record[key]!r} ({type(record[key]).__name__})")
    missing += [f"spec.{k}" for k in SPEC_KEYS if "spec" in record and k not in record["spec"]]
    missing += [f"metrics.{k}" for k in METRIC_KEYS if "metrics" in record and k not in record["metrics"]]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    budget = record["spec"].get("budget_id")
    if budget is not None and not isinstance(budget, str):
        raise ValueError(f"spec.budget_id must be a string; got {budget!r} ({type(budget).__name__})")
    for where, ok, valid in _FIELD_CHECKS:
        value = _field(record, where)
        if not ok(value):
            raise ValueError(f"{where} must be {valid}; got {value!r} ({type(value).__name__})")


def read_record(path: str | os.PathLike) -> dict:
    """A record file's contents, checked: a file that is not a whole, valid record (truncated, empty, a missing key
    or metric, a value of the wrong type such as ``test_acc: "0.9"``, a non-finite metric or an accuracy outside
    [0, 1], a time that is not a number) raises ``CorruptRecordError`` naming the file and the field; such a
    record is not a stored run. Nothing is deleted here."""
    path = Path(path)
    try:
        record = json.loads(path.read_text())
        _check_fields(record)
    except (ValueError, UnicodeDecodeError) as e:  # json.JSONDecodeError is a ValueError
        raise CorruptRecordError(
            f"{path}: not a valid run record ({e}), so it is not counted as stored: it is truncated, empty or was "
            "edited. Delete it (or move it aside) and run the grid again to re-train that run (a grid moves such a "
            "file aside itself).", path, str(e)) from e
    return record


_BUDGET_IN_NAME = re.compile(r"_b([0-9a-f]+)\.json$")


class Store:
    def __init__(self, root: str | os.PathLike | None = None, lease_s: float | None = None):
        self.root = Path(root or os.environ.get("DELTALAB_RESULTS") or DEFAULT_ROOT)
        self.lease_s = _lease(lease_s)

    def path(self, spec: RunSpec) -> Path:
        sid = T.setting_id(spec.task, spec.setting_dict) if spec.setting else "baseline"
        budget = f"_b{spec.budget_id}" if spec.budget_id else ""
        name = f"lr{_fmt(spec.lr)}_wd{_fmt(spec.wd)}_seed{spec.seed}{budget}.json"
        return self.root / spec.scale / spec.variant / spec.task / sid / name

    def lock_path(self, spec: RunSpec) -> Path:
        return self.path(spec).with_suffix(".lock")

    def tables_dir(self, scale: str) -> Path:
        """Where tables computed from this store go: ``outputs/<scale>/`` beside the repository's own store,
        ``<root>/tables/<scale>/`` for any other (so a store elsewhere never writes into the repository)."""
        if self.root.resolve() == DEFAULT_ROOT.resolve():
            return DEFAULT_ROOT.parent / scale
        return self.root / "tables" / scale

    def get(self, spec: RunSpec, quarantine: bool = False) -> dict | None:
        """The run's record, or None if not stored. A corrupt record raises ``CorruptRecordError``; with
        ``quarantine`` it is moved aside with a warning and treated as not stored (the grid re-trains it)."""
        path = self.path(spec)
        try:
            return read_record(path)
        except (FileNotFoundError, NotADirectoryError):  # not stored (or its folder is not one: check_writable says)
            return None
        except CorruptRecordError as e:
            if not quarantine:
                raise
            try:
                aside = _move_aside(path)
            except FileNotFoundError:  # another grid moved it aside first
                return None
            warnings.warn(f"{e.args[0].split(';')[0]}; moved aside to {aside.name} and the run is trained again",
                          stacklevel=2)
            return None

    def check_writable(self, spec: RunSpec) -> None:
        """Write a probe file in the run's folder and sync it; ``StoreWriteError`` naming the folder if that fails.
        The probe is an anonymous file (``tempfile.TemporaryFile``: O_TMPFILE where the filesystem has it, else
        unlinked right after it is created), so a process killed while probing leaves nothing behind."""
        folder = self.path(spec).parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=folder, prefix=".probe.", suffix=".tmp") as f:
                f.write(b"\0" * PROBE_BYTES)
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            raise _unwritable(folder, e) from e

    def put(self, spec: RunSpec, record: dict) -> Path:
        path = self.path(spec)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            _write_json(path, record)
        except OSError as e:
            raise StoreWriteError(f"could not write the run record {path}: {e.strerror or e}; the run's "
                                  "result is lost (free some space or fix the folder's permissions, then run it "
                                  "again)", e) from e
        return path

    @contextmanager
    def claim(self, spec: RunSpec) -> Iterator[bool]:
        """Yield True if this process now owns the run (and release it after), False if another process
        holds a live lock on it. A stale lock (see the module docstring) is taken over. While owned, a
        heartbeat thread keeps the lock's lease."""
        lock = self.lock_path(spec)
        try:
            lock.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise _unwritable(lock.parent, e) from e
        token = _lock_token()
        owned = _try_lock(lock, token)
        if not owned and self.lock_state(lock)[0]:
            owned = self._take_over(lock, token)
        beat = _Heartbeat(lock, token, min(HEARTBEAT_S, self.lease_s / 4)) if owned else None
        try:
            yield owned
        finally:
            if beat is not None:
                beat.stop()
                if _read(lock) == token:  # ours still (not taken over after a stall)
                    lock.unlink(missing_ok=True)

    def lock_state(self, lock: Path) -> tuple[bool, str]:
        """(stale, description) of a lock file: who holds it and how fresh its lease is."""
        try:
            text = lock.read_text()
            age = time.time() - lock.stat().st_mtime
        except FileNotFoundError:
            return False, f"{lock} (released)"
        except OSError as e:
            return True, f"{lock} (unreadable: {e})"
        parts = text.split()
        if len(parts) < 2 or not parts[1].isdigit():
            return True, f"{lock} (not a lock this program wrote: {text[:60]!r})"
        host, pid = parts[0], int(parts[1])
        start = parts[2] if len(parts) > 2 else "-"
        who = f"{lock} held by pid {pid} on {host}, last heartbeat {age:.0f} s ago (lease {self.lease_s:.0f} s)"
        if age > self.lease_s:
            return True, who + ": expired"
        if host == socket.gethostname():
            if not _pid_alive(pid):
                return True, who + ": that process is gone"
            if start != "-" and _start_time(pid) not in (None, start):
                return True, who + ": that pid now belongs to another process"
        return False, who

    def _take_over(self, lock: Path, token: str) -> bool:
        """Replace a stale lock, guarded by ``<lock>.takeover`` (O_EXCL) so two processes that both found it
        stale cannot both take it."""
        guard = lock.with_name(lock.name + ".takeover")
        try:
            fd = os.open(guard, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            try:
                if time.time() - guard.stat().st_mtime > 60:  # left by a process killed mid-takeover
                    guard.unlink(missing_ok=True)
            except FileNotFoundError:
                pass
            return False
        os.close(fd)
        try:
            if not self.lock_state(lock)[0]:
                return _try_lock(lock, token)  # released or renewed meanwhile
            lock.unlink(missing_ok=True)
            return _try_lock(lock, token)
        finally:
            guard.unlink(missing_ok=True)

    def records(self, scale: Scale, variants: list[str] | None = None, tasks: list[str] | None = None,
                bad: list | None = None) -> list[dict]:
        """Every finished record of a scale (a loaded ``Scale``: ``params.load_scale``) trained under the scale's
        current budget, in either precision the scale's policy allows
        (optionally only some variants / tasks). Records of an earlier budget of the scale file are left out
        (by the budget id in their name, then in their spec). A record that is not valid
        (``read_record``) raises ``CorruptRecordError`` naming it; given a list ``bad``, it is appended there
        instead and left out (not counted as stored). Reads only: nothing is created or changed."""
        base = self.root / scale.name
        out = []
        if not base.is_dir():
            return out
        current = {task: current_budget_ids(scale, task) for task in scale.tasks}
        for path in sorted(base.glob("*/*/*/*.json")):
            variant, task = path.parts[-4], path.parts[-3]
            if (variants is None or variant in variants) and (tasks is None or task in tasks) and task in current:
                named = _BUDGET_IN_NAME.search(path.name)
                if named and named.group(1) not in current[task]:
                    continue  # an earlier budget (or the other precision's policy): not this table's
                try:
                    record = read_record(path)
                except CorruptRecordError as e:
                    if bad is None:
                        raise
                    bad.append(e)
                    continue
                if record["spec"].get("budget_id") in current[task]:
                    out.append(record)
        return out

    def migrate_budget_ids(self, scale: Scale, dry_run: bool = False) -> dict[str, list[str]]:
        """Re-key the records of ``scale`` whose budget id was computed from the precision *policy* (before
        the precision a run trained in became part of its id) to the id of the precision each record says it
        used: the file is renamed and its ``spec.budget_id`` rewritten; nothing else changes. Records already
        current, of an earlier budget, or corrupt are left alone. Returns the files per outcome."""
        out: dict[str, list[str]] = {"renamed": [], "current": [], "other budget": [], "corrupt": [], "conflict": []}
        for path in sorted((self.root / scale.name).glob("*/*/*/*.json")):
            task = path.parts[-3]
            try:
                record = read_record(path)
            except CorruptRecordError:
                out["corrupt"].append(str(path))
                continue
            if task not in scale.tasks or record["precision"] not in ("fp32", "bf16"):
                out["other budget"].append(str(path))
                continue
            old, new = record["spec"].get("budget_id"), budget_id(scale, task, record["precision"])
            if old == new:
                out["current"].append(str(path))
                continue
            if old not in {legacy_budget_id(scale, task, policy) for policy in PRECISIONS}:
                out["other budget"].append(str(path))
                continue
            record["spec"]["budget_id"] = new
            target = path.with_name(path.name.replace(f"_b{old}.json", f"_b{new}.json"))
            if target.exists():
                if read_record(target) != record:
                    out["conflict"].append(f"{path} -> {target}")
                    continue
            elif not dry_run:
                _write_json(target, record)
            if not dry_run:
                path.unlink()
            out["renamed"].append(f"{path} -> {target.name}")
        return out


def current_budget_ids(scale, task: str) -> set[str]:
    """The budget ids a record of ``task`` may carry under ``scale``: one per precision its policy allows."""
    precisions = ("fp32", "bf16") if scale.precision == "auto" else (scale.precision,)
    return {budget_id(scale, task, p) for p in precisions}


def legacy_budget_id(scale, task: str, policy: str) -> str:
    """The budget id as it was computed before the precision a run used was part of it: from the scale's
    precision *policy* (``auto``, ``bf16`` or ``fp32``). Only ``migrate_budget_ids`` needs it."""
    b = scale.tasks[task]
    key = (b.num_train_examples, b.epochs, b.batch_size, scale.num_test_examples, scale.eval_every,
           scale.early_stop, policy)
    return hashlib.sha256(repr(key).encode()).hexdigest()[:6]


def _lease(lease_s: float | None) -> float:
    """The lock lease in seconds: ``lease_s``, else $DELTALAB_LOCK_LEASE_S, else ``LEASE_S``; a positive number."""
    raw = lease_s if lease_s is not None else os.environ.get("DELTALAB_LOCK_LEASE_S")
    if raw is None or raw == "":
        return float(LEASE_S)
    where = "lease_s" if lease_s is not None else "DELTALAB_LOCK_LEASE_S"
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ValueError(f"{where} must be a number of seconds (default {LEASE_S}); got {raw!r}") from None
    if not value > 0 or math.isinf(value):
        raise ValueError(f"{where} must be a positive, finite number of seconds (default {LEASE_S}); got {raw!r}")
    return value


def _write_json(path: Path, record: dict) -> None:
    """Atomically and durably: a temporary file, synced, renamed into place, and the folder synced, so that after
    a crash or power loss the record is either whole or absent (never an empty file the lock's removal outlived).
    With the umask's mode (``os.open`` with 0o666)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "w") as f:
            json.dump(record, f, indent=1, sort_keys=True, allow_nan=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)


def _sync_folder(folder: Path) -> None:
    """fsync a directory, so that a rename into it survives a crash (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _unwritable(folder: Path, e: OSError) -> StoreWriteError:
    return StoreWriteError(f"the results store is not writable at {folder}: {e.strerror or e} (nothing was "
                           "trained; free some space, fix its permissions or set DELTALAB_RESULTS to another "
                           "folder)", e)


def _move_aside(path: Path) -> Path:
    aside = path.with_name(path.name + ".corrupt")
    n = 1
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.name}.corrupt{n}")
    path.rename(aside)
    return aside


# --- locks ----------------------------------------------------------------------------------------------

def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (/proc, Linux), or None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _pid_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, exited but not yet reaped by its parent, counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _lock_token() -> str:
    return f"{socket.gethostname()} {os.getpid()} {_start_time(os.getpid()) or '-'} {secrets.token_hex(4)}\n"


def _read(lock: Path) -> str | None:
    try:
        return lock.read_text()
    except OSError:
        return None


def _try_lock(lock: Path, token: str) -> bool:
    """Create ``lock`` holding ``token`` atomically: write a private file, then hard-link it into place
    (``link`` fails if the lock exists), so no other process ever sees a lock without its owner."""
    tmp = lock.with_name(f".{lock.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "w") as f:
            f.write(token)
        os.link(tmp, lock)
        return True
    except FileExistsError:
        return False
    except OSError as e:
        raise StoreWriteError(f"cannot write the lock {lock}: {e.strerror or e}", e) from e
    finally:
        tmp.unlink(missing_ok=True)


class _Heartbeat:
    """A daemon thread that touches the lock every ``every`` seconds while it is still ours."""

    def __init__(self, lock: Path, token: str, every: float):
        self.lock, self.token, self.every = lock, token, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease {lock.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            text = _read(self.lock)
            if text is not None and text != self.token:
                return  # taken over (we stalled past the lease): nothing of ours to renew
            try:
                os.utime(self.lock)
            except OSError:
                continue  # a transient error (or the lock unreadable): try again at the next beat

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
