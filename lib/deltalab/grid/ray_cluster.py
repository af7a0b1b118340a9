"""The grid on a Ray cluster: ``python -m deltalab grid --engine ray [--address HOST:PORT]``.

One Ray core task per run (not Tune: the study has its own plan and store). The driver, the process that
runs this module, does everything that touches the results store; the workers only train:

    plan (grid.planning.plan) → skip the stored runs (Store.get) → claim a run (Store.claim, on the driver's host)
    → submit it with the CPUs/GPUs one run of the scale asks for → a worker generates the run's data from
    its seed, trains, returns the record → the driver writes it (Store.put, atomic) → releases the claim.

- **Code on the workers**: the driver's ``deltalab`` package travels with every task through Ray's runtime
  environment (``py_modules``), so a worker runs exactly the driver's code, uncommitted edits included, with
  no shared filesystem and no install of deltalab on the nodes; a user's variant file travels as its text.
  What ``py_modules`` does not carry, the dependencies (torch, numpy, ...; ``pip install -e '.[ray]'``), must
  be installed on every node, as Ray itself is. A pip install of deltalab on every node was not chosen: a
  node whose copy lags the driver's would train a different program than the one the record names.
- **Data**: generated on the worker from the run's seed, cached per node in ``$DELTALAB_DATA`` (as set where
  ``ray start`` ran), else in ``<node temp dir>/deltalab-data``.
- **Locks**: the store's locks (``Store.claim``) are the driver's: it claims a run before submitting it and
  holds the claim, keeping its lease with the store's heartbeat, until the record is written, so a second
  driver on the same store skips it (listed in ``Summary.held`` with the lock that held it). A killed driver's
  claims are stale at once on its own host (its pid is gone) and, seen from another host, once their lease
  has expired (``DELTALAB_LOCK_LEASE_S``, 10 minutes by default); the next driver takes them over. So two
  drivers on different hosts sharing one store over a network filesystem are covered by the same leases.
- **Store rules** are the local engine's: a corrupt record is moved aside and the run trained again, the
  store is probed writable before a run is submitted, and a worker checks that it would train the run under
  the budget id (scale file and resolved precision) the driver planned it with, so a GPU node training in
  bf16 never stores a run under a CPU driver's fp32 id (pin the scale's ``precision``, or plan on the kind of
  machine that trains).
- **Faults**: a worker process that dies mid-run is retried by Ray (``max_retries``); only the returned record
  is ever written, once, by the driver. A run that raises is not retried (training is deterministic: it
  would raise again); the grid finishes the other runs and then raises ``RunsFailed`` naming each failed run
  (variant, task, setting, lr, wd, seed) and its cause.
  A killed driver takes its job's tasks with it (Ray ends a job's tasks when its driver exits); the next
  driver trains only the runs still missing.

``DELTALAB_RAY_TRACE`` (a folder, set where ``ray start`` runs): each worker writes ``<run>.<pid>`` there,
holding its node's id, when it starts a run; the fault-injection tests use it to find the process to kill.
"""
from __future__ import annotations

import os
import socket
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from ..params import Scale
from ..store import Store
from ..runs import RunSpec
from .planning import RunsFailed, Summary, check_budget, describe, stacks  # RunsFailed: also importable from here
from .provenance import Code, store_diff

DEFAULT_MAX_RETRIES = 3  # attempts after a worker process dies (Ray's default for tasks)


@dataclass(frozen=True)
class Resources:
    """What one run asks of a node: Ray's ``num_cpus`` and ``num_gpus``."""

    num_cpus: float = 1
    num_gpus: float = 0

    def __str__(self) -> str:
        return f"{self.num_cpus:g} CPU" + (f" and {self.num_gpus:g} GPU" if self.num_gpus else "")


def run_resources(scale: Scale, num_cpus: float | None = None, num_gpus: float | None = None) -> Resources:
    """The scale's ``resources`` (default 1 CPU, no GPU), overridden by ``num_cpus`` / ``num_gpus``."""
    base = dict(getattr(scale, "resources", None) or {})
    cpus = base.get("num_cpus", 1) if num_cpus is None else num_cpus
    gpus = base.get("num_gpus", 0) if num_gpus is None else num_gpus
    if not cpus > 0:
        raise ValueError(f"a run needs at least some CPU; got num_cpus={cpus!r}")
    if gpus < 0:
        raise ValueError(f"num_gpus must be ≥ 0; got {gpus!r}")
    return Resources(float(cpus), float(gpus))


def run_name(spec: RunSpec) -> str:
    """A short, file-name-safe name of a run: ``<variant>.<task>.<setting>.lr…_wd…_seed…``."""
    setting = "-".join(f"{k}{v}" for k, v in spec.setting) or "baseline"
    return f"{spec.variant}.{spec.task}.{setting}.lr{spec.lr:g}_wd{spec.wd:g}_seed{spec.seed}"


def _import_ray():
    try:
        import ray
    except ImportError as e:
        raise ValueError("the ray engine needs Ray on the driver and every node: pip install -e '.[ray]' "
                         f"(or pip install 'ray[default]'); importing it failed: {e}") from e
    return ray


PROBE_TIMEOUT_S = 10.0  # for each of the two checks before ray.init: the TCP connection, then the GCS's answer


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast with a clear message when nothing listens at ``host:port`` (Ray itself retries for minutes)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ValueError(f"--address must be the head node's host:port (e.g. 127.0.0.1:6379); got {address!r}")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as e:
        raise ValueError(f"cannot reach a Ray cluster at {address}: {e}. Start one with `ray start --head "
                         "--port PORT` (README: 'On a Ray cluster') and pass the head's host:port") from e


def _token_source() -> str:
    """Where Ray takes the token this process sends (when RAY_AUTH_MODE=token): $RAY_AUTH_TOKEN, the file
    $RAY_AUTH_TOKEN_PATH, else ~/.ray/auth_token."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return "$RAY_AUTH_TOKEN"
    return os.environ.get("RAY_AUTH_TOKEN_PATH") or str(Path.home() / ".ray" / "auth_token")


def auth_hint(sent: bool | None = None) -> str:
    """What to do when a cluster refuses this process's token (or its lack of one); ``sent``: whether one was."""
    default = Path.home() / ".ray" / "auth_token"
    what = ("this process sent no token (RAY_AUTH_MODE is not 'token')" if sent is False else
            f"the token this process sent (from {_token_source()}) is not the cluster's" if sent else
            "this process's token (or its lack of one) was refused")
    return (f"it requires token authentication and {what}. A cluster started with "
            f"`ray start` takes its token from {default} when that file exists (any earlier Ray use with token "
            f"authentication leaves one; RAY_AUTH_MODE unset): to use it, run this command with "
            f"RAY_AUTH_MODE=token; if that file is stale, remove {default} (or start the cluster with "
            "RAY_AUTH_MODE=disabled) and restart the cluster; for another cluster, pass its token: "
            "RAY_AUTH_MODE=token and RAY_AUTH_TOKEN_PATH=<the file holding it> (or RAY_AUTH_TOKEN)")


def _auth_metadata() -> tuple:
    """The authentication metadata Ray's own client would send from this process (empty without token mode)."""
    try:
        from ray._private.authentication.grpc_authentication_client_interceptor import (
            _get_authentication_metadata_tuple,
        )

        return tuple(_get_authentication_metadata_tuple())
    except Exception:  # another Ray version: probe without a token (an UNAUTHENTICATED answer still tells)
        return ()


def _check_ray_head(address: str, timeout: float = PROBE_TIMEOUT_S) -> None:
    """Ask the server at ``address`` the first question ``ray.init`` asks a head (its GCS's cluster id), with a
    deadline: something that is not a Ray head (an HTTP server, another gRPC service) fails in seconds naming the
    address, where ``ray.init`` would wait for minutes; a head that requires another token fails at once with
    ``auth_hint``. The same token Ray would send is sent."""
    try:
        import grpc
    except ImportError:  # Ray without grpcio: nothing to probe with; ray.init decides
        return
    host, _, port = address.rpartition(":")
    metadata = _auth_metadata()
    channel = grpc.insecure_channel(f"{host}:{port}")
    try:
        call = channel.unary_unary("/ray.rpc.NodeInfoGcsService/GetClusterId")
        call(b"", timeout=timeout, metadata=metadata)
    except grpc.RpcError as e:
        code = e.code()
        if code == grpc.StatusCode.UNAUTHENTICATED:
            raise ValueError(f"cannot connect to the Ray cluster at {address}: {auth_hint(bool(metadata))}") \
                from None
        what = {grpc.StatusCode.UNAVAILABLE: "it does not speak gRPC",
                grpc.StatusCode.DEADLINE_EXCEEDED: f"it did not answer within {timeout:g} s",
                grpc.StatusCode.UNIMPLEMENTED: "it is a gRPC server without Ray's GCS service"}.get(code)
        if what is not None:
            raise ValueError(f"{address} is not the head of a Ray cluster ({what}: {code.name}: {e.details()}); pass "
                             "the head's host:port, the --port given to `ray start --head` (6379 by default), not "
                             "that of its dashboard, client server or another service") from None
    finally:
        channel.close()


_connection: tuple | None = None  # (address, runtime env) of the connection connect() made


def connect(address: str | None = None):
    """Connect this process to the Ray cluster at ``address`` (``None``: Ray's own choice, i.e. $RAY_ADDRESS,
    else a cluster started on this machine, else a new local one), as a job whose runtime environment carries
    the driver's ``deltalab`` package (``package_env``; Ray accepts a local folder only for a whole job). The
    connection is reused while the address and the package are unchanged; any other Ray connection of this
    process is closed first. Returns the ``ray`` module."""
    global _connection
    ray = _import_ray()
    env = package_env()
    if ray.is_initialized() and _connection == (address, env):
        return ray
    target = address or os.environ.get("RAY_ADDRESS")
    if target and target not in ("auto", "local") and not target.startswith("ray://"):
        _check_reachable(target)
        _check_ray_head(target)
    if ray.is_initialized():
        ray.shutdown()
    try:
        ray.init(address=address, runtime_env=env, logging_level="WARNING", log_to_driver=True)
    except Exception as e:  # noqa: BLE001 -- Ray's own errors, reworded with the address and what to do
        where = address or target or "(auto)"
        auth = isinstance(e, getattr(ray.exceptions, "AuthenticationError", ())) or "AuthToken" in str(e) \
            or "authentication" in str(e).lower()
        if auth:
            raise ValueError(f"cannot connect to the Ray cluster at {where}: {auth_hint()}") from e
        if isinstance(e, (ConnectionError, TimeoutError, RuntimeError)):
            raise ValueError(f"cannot connect to a Ray cluster at {where}: {e}") from e
        raise
    _connection = (address, env)
    return ray


def disconnect() -> None:
    """Close the connection ``connect`` made (Ray also closes it when the process exits)."""
    global _connection
    if _connection is not None:
        import ray

        ray.shutdown()
        _connection = None


def check_cluster(ray, need: Resources, address: str | None = None) -> int:
    """Raise ValueError unless some alive node has ``need``; return how many runs fit on the cluster at once."""
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    slots, shown = 0, []
    for n in nodes:
        res = n.get("Resources", {})
        cpu, gpu = res.get("CPU", 0.0), res.get("GPU", 0.0)
        shown.append(f"{n.get('NodeManagerAddress', '?')}: {cpu:g} CPU, {gpu:g} GPU")
        fit = int(cpu // need.num_cpus)
        if need.num_gpus:
            fit = min(fit, int(gpu // need.num_gpus))
        slots += fit
    if slots == 0:
        where = address or "(auto)"
        raise ValueError(f"no node of the Ray cluster at {where} has the {need} one run asks for; its nodes: "
                         f"{'; '.join(shown) or 'none alive'}. Add such a node, or ask less per run "
                         "(--cpus-per-run / --gpus-per-run, or the scale's `resources`)")
    return slots


def package_env() -> dict:
    """The runtime environment of the driver's job: its ``deltalab`` package as a py_module (uploaded once per
    content; a changed file is a new upload)."""
    import deltalab

    return {"py_modules": [str(Path(deltalab.__file__).resolve().parent)],
            "excludes": ["__pycache__", "*.pyc"]}


def _train_on_worker(ref: str, source: str | None, spec: RunSpec | list[RunSpec], scale: Scale, threads: int,
                     commit: str, diff: str = "") -> dict | list[dict]:
    """The Ray task: train one run and return its record (the worker writes nothing but its data cache); given a
    list of runs, train them as one stack (``deltalab.stack``) and return their records in that order."""
    specs = spec if isinstance(spec, list) else [spec]
    trace = os.environ.get("DELTALAB_RAY_TRACE")
    if trace:
        import ray

        Path(trace, f"{run_name(specs[0])}.{os.getpid()}").write_text(ray.get_runtime_context().get_node_id())
    os.environ.setdefault("DELTALAB_DATA", str(Path(tempfile.gettempdir()) / "deltalab-data"))
    from ..runtime import set_threads
    from ..train import train_run
    from ..variants import get_variant

    set_threads(threads)
    for each in specs:
        check_budget(each, scale)  # this node would train the run under the id the driver planned (precision)
    if source is not None:  # a user's variant file: rebuilt on the node from the text the driver sent
        folder = Path(tempfile.gettempdir()) / "deltalab-variants" / specs[0].variant
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / Path(ref).name
        if not path.exists() or path.read_text() != source:
            fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
            with os.fdopen(fd, "w") as f:
                f.write(source)
            os.replace(tmp, path)
        ref = str(path)
    if isinstance(spec, list):
        from ..stack import train_stack

        records = [result.to_record() for result in train_stack(specs, scale, get_variant(ref))]
    else:
        records = [train_run(spec, scale, get_variant(ref)).to_record()]
    for record in records:
        # The code that ran is the driver's package (py_modules), so the driver's commit names it; the worker's
        # copy is no git checkout and would say "unknown".
        record["environment"]["commit"] = commit
        if diff:  # the driver's uncommitted code, stored beside the records (grid.provenance)
            record["environment"]["diff"] = diff
    return records if isinstance(spec, list) else records[0]


def execute_ray(runs: list[tuple[str, RunSpec]], scale: Scale, store: Store | None = None,
                address: str | None = None, progress: bool = True, num_cpus: float | None = None,
                num_gpus: float | None = None, max_retries: int = DEFAULT_MAX_RETRIES,
                max_in_flight: int | None = None, code: Code = Code(), stack: bool = False):
    """Train every run of ``runs`` not stored yet on the Ray cluster at ``address``; returns a
    ``Summary`` (a run another process holds is left to it and listed in ``Summary.held``, as the local engine
    does). Raises ``RunsFailed`` after the grid if some runs failed (every other run is stored). ``code``: the
    driver's uncommitted code, if allowed: its diff is stored beside the records and named in each
    (``grid.provenance``). ``stack=True``: one task per stack (``planning.stacks``; the members neither stored nor
    held elsewhere, trained as one model by ``deltalab.stack`` with one run's resources), its records written when
    the task returns."""
    from ..runtime import git_commit
    from ..variants import VARIANTS

    store = store or Store()
    summary = Summary()
    t0 = time.perf_counter()
    todo = [(ref, spec) for ref, spec in runs if store.get(spec, quarantine=True) is None]
    summary.skipped = len(runs) - len(todo)
    if not todo:
        summary.seconds = time.perf_counter() - t0
        return summary

    need = run_resources(scale, num_cpus, num_gpus)
    ray = connect(address)
    slots = check_cluster(ray, need, address)
    window = max_in_flight or max(2 * slots, 2)  # claims held at once: enough to keep every slot busy
    threads = max(1, int(need.num_cpus))
    commit = git_commit()
    sources = {ref: Path(ref).read_text() for ref, _ in todo if ref not in VARIANTS}
    task = ray.remote(_train_on_worker).options(
        num_cpus=need.num_cpus, num_gpus=need.num_gpus, max_retries=max_retries, retry_exceptions=False,
        name="deltalab-run")
    scale_ref = ray.put(scale)

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc=f"{scale.name} grid on Ray", file=sys.stderr, unit="run")
        bar.set_postfix(failed=0, held_elsewhere=0)
    failures: list[tuple[RunSpec, BaseException]] = []
    pending: dict = {}  # ObjectRef → (spec, the ExitStack holding the run's claim and its lease)

    def tally(outcome: str | None, spec: RunSpec) -> None:
        """Count a run that is over (``None``: failed) and move the progress bar."""
        if outcome is not None:
            setattr(summary, outcome, getattr(summary, outcome) + 1)
        if outcome == "busy":
            summary.held.append(f"{describe(spec)}: {store.lock_state(store.lock_path(spec))[1]}")
        if bar is not None:
            bar.update(1)
            bar.set_postfix(failed=len(failures), held_elsewhere=summary.busy, refresh=False)

    queue = iter(stacks(todo) if stack else [(ref, [spec]) for ref, spec in todo])

    def fill() -> None:
        for ref, specs in queue:
            held = ExitStack()
            owned = []
            try:
                for spec in specs:
                    if not held.enter_context(store.claim(spec)):  # the claim keeps its lease until released
                        tally("busy", spec)
                    elif store.get(spec, quarantine=True) is not None:  # stored by another driver meanwhile
                        tally("skipped", spec)
                    else:
                        store.check_writable(spec)  # a full disk or unwritable store fails now, not after training
                        owned.append(spec)
                if not owned:
                    held.close()
                    continue
                obj = task.remote(ref, sources.get(ref), owned if stack else owned[0], scale_ref, threads, commit,
                                  code.hash)
            except BaseException:
                held.close()
                raise
            pending[obj] = (owned, held)
            if len(pending) >= window:
                return

    try:
        fill()
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for obj in done:
                specs, held = pending.pop(obj)
                with held:  # the claims are released once the records are written (or the run failed)
                    try:
                        got = ray.get(obj)
                    except ray.exceptions.RayError as e:  # raised in the run, or its worker died max_retries+1 times
                        failures.extend((spec, e) for spec in specs)
                        records = [None] * len(specs)
                    else:
                        records = got if stack else [got]
                        for spec, record in zip(specs, records):
                            store_diff(store.root, spec.scale, code)
                            store.put(spec, record)
                for spec, record in zip(specs, records):
                    tally(None if record is None else "diverged" if record.get("diverged") else "trained", spec)
            fill()
    finally:
        for obj, (_, held) in pending.items():  # interrupted: stop what runs, give the claims back
            ray.cancel(obj, force=True)
            held.close()
        if bar is not None:
            bar.close()
    summary.seconds = time.perf_counter() - t0
    if failures:
        raise RunsFailed(failures, len(todo), where="on the Ray cluster")
    return summary
