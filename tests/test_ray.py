"""The grid on a real Ray cluster (deltalab.grid.ray_cluster), started here for the module: a head node and a second
node, each a `ray start --block` process with one CPU, both given 127.0.0.1 (Ray advertises the machine's own
interface address for it). Each node has its own data cache (DELTALAB_DATA) and gets no PYTHONPATH: the
workers import deltalab from the package the driver ships (runtime_env py_modules).

- The smoke grid through the cluster stores the same records as the local engine: every field equal, the test
  metrics and learning curves exactly (same seed, one thread, same machine), except the four timings.
- kill -9 of a worker process mid-run: Ray retries it, the run is written once, and equals the local run.
- kill -9 of the driver mid-grid: two drivers started together complete the rest; the runs stored before
  the kill are not trained again (their files unchanged), each missing run is trained once.
- Clear errors: an address where nothing listens, a head that requires a token this process lacks, a run asking
  for more than any node has (tests/test_bad_inputs.py: a server there that is not a Ray head).
- Isolation: the clusters and their drivers run with token authentication off (RAY_AUTH_MODE=disabled, no token
  variables), so a stale ~/.ray/auth_token or a RAY_ADDRESS of the user's changes nothing here.

The clusters are stopped by the fixture's finalizer (SIGTERM to each `ray start --block`, then SIGKILL to
whatever is left in its session), also when a test fails; only processes this module started are touched.
"""
from __future__ import annotations

import collections
import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install -e '.[ray]'; scripts/setup.sh does)")

from deltalab.grid import ray_cluster  # noqa: E402
from deltalab.__main__ import main  # noqa: E402
from deltalab.params import load_scale  # noqa: E402
from deltalab.grid import execute, plan  # noqa: E402
from deltalab.runtime import REPO_ROOT  # noqa: E402
from deltalab.store import Store  # noqa: E402

pytestmark = pytest.mark.slow
TIMINGS = {"wall_time_s", "train_time_s", "eval_time_s", "train_tokens_per_s"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _agent_ports() -> list[str]:
    """A node's agent ports, each chosen free: left to Ray's fixed defaults (the dashboard agent's 52365, ...),
    a second node on this machine, or a free port picked for another component that happens to be one of them,
    makes `ray start` refuse ("trying to use a port number 52365 that is used by other components")."""
    flags = ("--dashboard-agent-listen-port", "--dashboard-agent-grpc-port", "--metrics-export-port",
             "--runtime-env-agent-port")
    return [arg for flag in flags for arg in (flag, str(_free_port()))]


def _session(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[3])
    except (OSError, IndexError, ValueError):
        return None


def _stop_node(proc: subprocess.Popen) -> None:
    """SIGTERM to `ray start --block` (it drains and stops its node), then SIGKILL to anything still in the
    session it leads (it was started with start_new_session, so the session holds only this node)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            pass
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _session(int(entry.name)) == proc.pid:
            try:
                os.kill(int(entry.name), signal.SIGKILL)
            except ProcessLookupError:
                pass
    if proc.poll() is None:
        proc.wait(10)


@dataclasses.dataclass
class Cluster:
    address: str
    root: Path
    trace: Path
    nodes: list[subprocess.Popen]


AUTH_ENV = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")


@pytest.fixture(scope="module", autouse=True)
def isolated_from_the_users_ray():
    """The test clusters, their drivers (this process, the driver subprocesses, the notebook's kernel) and the
    nodes run with token authentication off (RAY_AUTH_MODE=disabled, no RAY_AUTH_TOKEN/_PATH), so whatever
    ~/.ray holds (a stale ~/.ray/auth_token from an earlier Ray use turns token authentication on for a head
    started with the mode unset, and its worker node and driver, which do not read it, cannot join) and whatever
    RAY_ADDRESS says, these tests run the same."""
    saved = {k: os.environ.get(k) for k in (*AUTH_ENV, "RAY_ADDRESS")}
    for k in saved:
        os.environ.pop(k, None)
    os.environ["RAY_AUTH_MODE"] = "disabled"
    try:
        from ray._raylet import Config

        Config.initialize("")  # this process's Ray config reads the mode again
    except Exception:
        pass
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _node_env(**extra: str) -> dict:
    """A `ray start` process's environment: this one's, without PYTHONPATH, RAY_ADDRESS or any token setting, with
    token authentication off unless ``extra`` says otherwise."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RAY_ADDRESS", *AUTH_ENV)}
    return env | {"RAY_AUTH_MODE": "disabled", "OMP_NUM_THREADS": "1"} | extra


@pytest.fixture(scope="module")
def cluster():
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="dl-ray-"))  # short: Ray's socket paths live under it
    trace = root / "trace"
    trace.mkdir()
    port = _free_port()
    address = f"127.0.0.1:{port}"
    cli = [sys.executable, "-m", "ray.scripts.scripts", "start", "--block", "--num-cpus", "1",
           "--node-ip-address", "127.0.0.1", "--disable-usage-stats"]
    nodes: list[subprocess.Popen] = []

    def start(name: str, *args: str) -> None:
        env = _node_env(DELTALAB_DATA=str(root / f"data-{name}"), DELTALAB_RAY_TRACE=str(trace))
        with open(root / f"{name}.log", "w") as log:
            nodes.append(subprocess.Popen([*cli, *args], env=env, stdout=log, stderr=subprocess.STDOUT,
                                          start_new_session=True, cwd=root))
        deadline = time.time() + 120
        while "Ray runtime started" not in (root / f"{name}.log").read_text():
            assert nodes[-1].poll() is None, f"ray start ({name}) exited:\n{(root / f'{name}.log').read_text()}"
            assert time.time() < deadline, f"ray start ({name}) not up in 120 s"
            time.sleep(0.5)

    try:
        start("head", "--head", "--port", str(port), "--temp-dir", str(root / "ray"), "--include-dashboard",
              "false", "--ray-client-server-port", str(_free_port()), "--dashboard-port", str(_free_port()),
              *_agent_ports())
        start("worker", "--address", address, *_agent_ports())
        ray_cluster.connect(address)
        deadline = time.time() + 60
        while len([n for n in ray.nodes() if n["Alive"]]) < 2:
            assert time.time() < deadline, "the second node did not join in 60 s"
            time.sleep(0.5)
        yield Cluster(address, root, trace, nodes)
    finally:
        ray_cluster.disconnect()
        for proc in reversed(nodes):
            _stop_node(proc)
        shutil.rmtree(root, ignore_errors=True)


class CountingStore(Store):
    """A store that counts its writes per record path."""

    def __init__(self, root):
        super().__init__(root)
        self.puts = collections.Counter()

    def put(self, spec, record):
        path = super().put(spec, record)
        self.puts[path] += 1
        return path


def _traces(cluster: Cluster) -> dict[str, list[tuple[int, str]]]:
    """Run name → [(worker pid, node id)] of every start of the run seen so far."""
    out = collections.defaultdict(list)
    for p in cluster.trace.iterdir():
        run, pid = p.name.rsplit(".", 1)
        out[run].append((int(pid), p.read_text()))
    return out


def _without_timings(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in TIMINGS}


def _leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.suffix in (".lock", ".tmp")]


def test_cluster_has_two_nodes_and_ships_the_package(cluster):
    nodes = [n for n in ray.nodes() if n["Alive"]]
    assert len(nodes) == 2 and all(n["Resources"]["CPU"] == 1 for n in nodes)

    @ray.remote(num_cpus=1)
    def where():
        import deltalab

        return deltalab.__file__

    file = ray.get(where.remote())
    assert "runtime_resources" in file and "py_modules_files" in file, file  # from the driver's upload
    assert not file.startswith(str(REPO_ROOT)), file


def test_smoke_grid_on_the_cluster_equals_the_local_engine(cluster, tmp_path):
    scale = load_scale("smoke")
    user_rule = tmp_path / "my_rule.py"  # a user's variant file travels as its text
    user_rule.write_text('"""The delta rule, as a user file."""\nfrom deltalab.core import delta_rule_chunkwise '
                         "as _rule\n\n\ndef delta_rule_chunkwise(q, k, v, beta, chunk_size=32):\n"
                         "    return _rule(q, k, v, beta, chunk_size)\n")
    runs = plan(["delta_net", "l2_norm_error"], scale, ["memorization", "in-context-recall"], [0])
    runs += plan([str(user_rule)], scale, ["memorization"], [0])
    local, remote = Store(tmp_path / "local"), CountingStore(tmp_path / "ray")
    execute(runs, scale, local, workers=1, threads=1, progress=False)
    summary = execute(runs, scale, remote, engine="ray", address=cluster.address, progress=False)
    assert summary.trained + summary.diverged == len(runs) == 5 and summary.skipped == summary.busy == 0
    assert set(remote.puts.values()) == {1} and len(remote.puts) == len(runs)
    for _, spec in runs:
        a, b = local.get(spec), remote.get(spec)
        assert a["metrics"] == b["metrics"] and a["curve"] == b["curve"]  # exactly: same seed, same arithmetic
        assert _without_timings(a) == _without_timings(b)
    assert not _leftovers(tmp_path)
    traces = _traces(cluster)
    from deltalab.grid.ray_cluster import run_name

    used = {node for _, spec in runs for _, node in traces[run_name(spec)]}
    assert len(used) == 2, "both nodes trained runs"
    for node in ("head", "worker"):  # each generated its runs' data into its own cache (DELTALAB_DATA)
        assert any((cluster.root / f"data-{node}").rglob("*.npy")), node
    # A second pass trains nothing: every run is stored.
    again = execute(runs, scale, remote, engine="ray", address=cluster.address, progress=False)
    assert again.skipped == len(runs) and again.trained == 0


def test_a_stacked_grid_on_the_cluster_is_one_task_per_stack_and_equals_the_local_one(cluster, tmp_path):
    """``stack=True``: one Ray task per variant × task × setting (its seeds stacked, ``deltalab.stack``), each run
    written once as its own record, equal to the local engine's stacked grid."""
    scale = load_scale("smoke")
    runs = plan(["delta_net"], scale, ["memorization", "in-context-recall"], [0, 1])
    local, remote = Store(tmp_path / "local"), CountingStore(tmp_path / "ray")
    execute(runs, scale, local, workers=1, threads=1, progress=False, stack=True)
    t0 = time.time()
    summary = execute(runs, scale, remote, engine="ray", address=cluster.address, progress=False, stack=True)
    assert summary.trained + summary.diverged == len(runs) == 4
    assert set(remote.puts.values()) == {1} and len(remote.puts) == len(runs)
    started = [p for p in cluster.trace.iterdir() if p.stat().st_mtime >= t0]  # a trace per task started
    assert len(started) == 2, started  # one per stack
    for _, spec in runs:
        a, b = local.get(spec), remote.get(spec)
        assert a["metrics"] == b["metrics"] and a["curve"] == b["curve"]
        assert b["environment"]["stack"] == 2
    assert not _leftovers(tmp_path)


def _slow_smoke(folder: Path) -> Path:
    """smoke with a longer in-context-recall run (seconds), so that a kill lands mid-training; as a file, since
    the local engine's processes load their scale by name or path."""
    import yaml

    data = yaml.safe_load((REPO_ROOT / "params" / "scales" / "smoke.yaml").read_text())
    data["name"] = "smoke-slow"
    data["tasks"] = {"in-context-recall": data["tasks"]["in-context-recall"] | {"num_train_examples": 256, "epochs": 6}}
    path = folder / "smoke-slow.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_worker_killed_mid_run_is_retried_and_stored_once(cluster, tmp_path):
    from deltalab.grid.ray_cluster import run_name

    scale_file = _slow_smoke(tmp_path)
    scale = load_scale(scale_file)
    runs = plan(["delta_net"], scale, ["in-context-recall"], [1, 2])
    store = CountingStore(tmp_path / "ray")
    before = _traces(cluster)
    killed: dict = {}

    def kill_first_run_that_trains():
        deadline = time.time() + 180
        while time.time() < deadline and not killed:
            for _, spec in runs:
                starts = [s for s in _traces(cluster)[run_name(spec)] if s not in before[run_name(spec)]]
                if starts:
                    time.sleep(1.0)  # past the data and the model: training
                    pid = starts[0][0]
                    stored_before = store.get(spec) is not None
                    os.kill(pid, signal.SIGKILL)
                    killed.update(spec=spec, pid=pid, stored_before=stored_before)
                    return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_first_run_that_trains, daemon=True)
    killer.start()
    summary = execute(runs, scale, store, engine="ray", address=cluster.address, progress=False)
    killer.join(5)
    assert killed, "no run started in time"
    assert not killed["stored_before"], "the run finished before the kill: make _slow_smoke longer"
    assert summary.trained + summary.diverged == 2
    starts = [s for s in _traces(cluster)[run_name(killed["spec"])] if s not in before[run_name(killed["spec"])]]
    pids = {pid for pid, _ in starts}
    assert len(starts) == 2 and killed["pid"] in pids and len(pids) == 2, starts  # killed, then retried
    assert set(store.puts.values()) == {1} and len(store.puts) == 2  # each run written once
    assert not _leftovers(tmp_path)
    # The retried run is the run: the local engine trains the same record.
    local = Store(tmp_path / "local")
    execute([r for r in runs if r[1] == killed["spec"]], scale, local, workers=1, threads=1, progress=False)
    assert _without_timings(local.get(killed["spec"])) == _without_timings(store.get(killed["spec"]))


def _driver(cluster: Cluster, results: Path, log: Path) -> subprocess.Popen:
    env = dict(os.environ, DELTALAB_RESULTS=str(results), DELTALAB_DATA=str(cluster.root / "data-driver"),
               PYTHONPATH=str(REPO_ROOT / "lib"), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "deltalab", "grid", "--scale", "smoke", "--variants", "delta_net,l2_norm_error",
           "--tasks", "memorization,in-context-recall,compression,selective-copying", "--seeds", "3",
           "--engine", "ray", "--address", cluster.address]
    with log.open("w") as out:
        return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def test_killed_driver_then_two_drivers_finish_without_retraining(cluster, tmp_path):
    from deltalab.grid.ray_cluster import run_name

    scale = load_scale("smoke")
    runs = plan(["delta_net", "l2_norm_error"], scale,
                ["memorization", "in-context-recall", "compression", "selective-copying"], [3])
    names = {run_name(spec) for _, spec in runs}
    store = Store(tmp_path / "results")
    drivers = []
    try:
        first = _driver(cluster, store.root, tmp_path / "driver1.log")
        drivers.append(first)
        deadline = time.time() + 180
        while sum(store.get(s) is not None for _, s in runs) < 2:
            assert first.poll() is None, (tmp_path / "driver1.log").read_text()
            assert time.time() < deadline, "the first driver stored nothing in 180 s"
            time.sleep(0.05)
        os.kill(first.pid, signal.SIGKILL)
        first.wait(30)
        done = {spec: (store.path(spec).stat().st_mtime_ns, store.path(spec).read_bytes())
                for _, spec in runs if store.get(spec) is not None}
        assert 2 <= len(done) < len(runs), "kill the driver mid-grid"
        stale = list(store.root.rglob("*.lock"))
        assert stale, "the killed driver held claims for the runs it had submitted"
        seen = {run: list(starts) for run, starts in _traces(cluster).items() if run in names}

        second = _driver(cluster, store.root, tmp_path / "driver2.log")
        third = _driver(cluster, store.root, tmp_path / "driver3.log")
        drivers += [second, third]
        codes = {n: d.wait(300) for d, n in ((second, 2), (third, 3))}
        # A driver that finds a run the other holds leaves it to it, lists it and exits 1 (the run is not stored
        # when it finishes); the other trains it. At least one of the two took every run it met.
        assert 0 in codes.values(), codes
        for n, code in codes.items():
            log = (tmp_path / f"driver{n}.log").read_text()
            other = (third if n == 2 else second).pid
            assert code in (0, 1), log
            if code == 1:
                assert "MISSING" in log and f"held by pid {other} " in log, log
    finally:
        for d in drivers:
            if d.poll() is None:
                os.killpg(d.pid, signal.SIGKILL)
                d.wait(10)

    assert all(store.get(spec) is not None for _, spec in runs)
    for spec, (mtime, content) in done.items():  # stored before the kill: untouched
        assert store.path(spec).stat().st_mtime_ns == mtime and store.path(spec).read_bytes() == content
    after = _traces(cluster)
    new = {run: [s for s in after[run] if s not in seen.get(run, [])] for run in names}
    for _, spec in runs:
        run = run_name(spec)
        assert len(new[run]) == (0 if spec in done else 1), (run, new[run])  # missing runs: trained once
        if spec not in done:
            assert not store.path(spec).with_suffix(".lock").exists()  # stale claims taken over and released
    assert not [p for p in store.root.rglob("*") if p.suffix == ".tmp"]


def test_a_run_that_raises_fails_alone_and_is_named(cluster, tmp_path):
    from deltalab.grid.ray_cluster import RunsFailed, run_name

    bad = tmp_path / "fails_on_nodes.py"  # passes the checks on the driver; raises where the nodes' trace is set
    bad.write_text("import os\n\nfrom deltalab.core import delta_rule_chunkwise as _rule\n\n\n"
                   "def delta_rule_chunkwise(q, k, v, beta, chunk_size=32):\n"
                   "    if os.environ.get('DELTALAB_RAY_TRACE'):\n"
                   "        raise RuntimeError('this rule fails on the cluster')\n"
                   "    return _rule(q, k, v, beta, chunk_size)\n")
    scale = load_scale("smoke")
    runs = plan(["delta_net", str(bad)], scale, ["memorization"], [5])
    store = Store(tmp_path / "results")
    with pytest.raises(RunsFailed, match=r"(?s)1 of 2 runs failed .*\n  variant fails_on_nodes-[0-9a-f]{8}, task "
                                         r"memorization, setting baseline, .*seed 5 .*this rule fails on the cluster"):
        execute(runs, scale, store, engine="ray", address=cluster.address, progress=False)
    good, failed = runs[0][1], runs[1][1]
    assert store.get(good) is not None and store.get(failed) is None  # the other run is stored
    assert len(_traces(cluster)[run_name(failed)]) == 1  # an exception is not retried
    assert not _leftovers(store.root)  # its claim was released


def test_a_run_another_process_holds_is_left_to_it_and_listed(cluster, tmp_path):
    """The driver takes the store's claims as the local engine does: a run whose lock another process holds (with
    a live lease) is not submitted, and the summary names it with its lock."""
    scale = load_scale("smoke")
    (_, spec), = plan(["delta_net"], scale, ["memorization"], [6])
    store = Store(tmp_path / "results")
    with store.claim(spec) as owned:
        assert owned
        summary = execute([("delta_net", spec)], scale, store, engine="ray", address=cluster.address,
                          progress=False)
    assert summary.busy == 1 and summary.trained == 0 and store.get(spec) is None
    assert len(summary.held) == 1 and f"held by pid {os.getpid()}" in summary.held[0]
    assert "seed 6" in summary.held[0]


def test_unreachable_address_is_a_clear_error(capsys):
    port = _free_port()  # nothing listens there
    scale = load_scale("smoke")
    runs = plan(["delta_net"], scale, ["memorization"], [0])
    with pytest.raises(ValueError, match=f"cannot reach a Ray cluster at 127.0.0.1:{port}"):
        execute(runs, scale, Store(Path("/nonexistent-deltalab-store")), engine="ray", address=f"127.0.0.1:{port}")
    argv = ["grid", "--scale", "smoke", "--variants", "delta_net", "--tasks", "memorization", "--seeds", "0",
            "--engine", "ray", "--address", f"127.0.0.1:{port}"]
    assert main(argv) == 2
    assert f"error: cannot reach a Ray cluster at 127.0.0.1:{port}" in capsys.readouterr().err
    assert main(["grid", "--scale", "smoke", "--address", "127.0.0.1:1"]) == 2  # --address needs --engine ray
    assert "--address is an option of --engine ray" in capsys.readouterr().err


def test_a_cluster_that_wants_a_token_this_process_lacks_is_a_clear_error(tmp_path, capsys, monkeypatch):
    """A head started with token authentication (here its own token file; for a user, often a stale
    ~/.ray/auth_token): the driver fails in seconds, naming the address, the token file to remove and how to pass
    the right token, instead of Ray's InvalidAuthToken after 25 s. Nothing is claimed or written."""
    import secrets
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="dl-rayauth-"))
    token = root / "token"
    token.write_text(secrets.token_hex(16))
    port = _free_port()
    cmd = [sys.executable, "-m", "ray.scripts.scripts", "start", "--block", "--num-cpus", "1", "--node-ip-address",
           "127.0.0.1", "--disable-usage-stats", "--head", "--port", str(port), "--temp-dir", str(root / "ray"),
           "--include-dashboard", "false", "--ray-client-server-port", str(_free_port()), "--dashboard-port",
           str(_free_port()), *_agent_ports()]
    env = _node_env(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token))
    with open(root / "head.log", "w") as log:
        head = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=root)
    try:
        deadline = time.time() + 120
        while "Ray runtime started" not in (root / "head.log").read_text():
            assert head.poll() is None, (root / "head.log").read_text()
            assert time.time() < deadline, "ray start (token head) not up in 120 s"
            time.sleep(0.5)
        scale = load_scale("smoke")
        runs = plan(["delta_net"], scale, ["memorization"], [0])
        address = f"127.0.0.1:{port}"
        t0 = time.time()
        with pytest.raises(ValueError, match=rf"cannot connect to the Ray cluster at {address}: it requires token "
                                             r"authentication and this process sent no token .*remove .*auth_token"
                                             r".*RAY_AUTH_MODE=token and RAY_AUTH_TOKEN_PATH"):
            execute(runs, scale, Store(tmp_path / "store"), engine="ray", address=address)
        assert time.time() - t0 < 30
        argv = ["grid", "--scale", "smoke", "--variants", "delta_net", "--tasks", "memorization", "--seeds", "0",
                "--engine", "ray", "--address", address]
        monkeypatch.setenv("DELTALAB_RESULTS", str(tmp_path / "store"))
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert f"error: cannot connect to the Ray cluster at {address}: it requires token authentication" in err
        assert "Traceback" not in err
        assert not (tmp_path / "store").exists() or not list((tmp_path / "store").rglob("*"))
    finally:
        _stop_node(head)
        shutil.rmtree(root, ignore_errors=True)


def test_a_run_the_cluster_cannot_hold_is_a_clear_error(cluster, tmp_path):
    scale = load_scale("smoke")
    runs = plan(["delta_net"], scale, ["memorization"], [0])
    store = Store(tmp_path)
    with pytest.raises(ValueError, match=r"no node of the Ray cluster .* has the 1 CPU and 1 GPU one run asks for"):
        execute(runs, scale, store, engine="ray", address=cluster.address, num_gpus=1)
    with pytest.raises(ValueError, match=r"has the 2 CPU one run asks for; its nodes: .*1 CPU, 0 GPU"):
        execute(runs, scale, store, engine="ray", address=cluster.address, num_cpus=2)
    assert ray_cluster.run_resources(load_scale("mad")) == ray_cluster.Resources(1, 1)  # mad runs ask for a GPU
    assert not list(tmp_path.rglob("*")), "nothing claimed or written"


def test_run_variant_notebook_on_the_cluster(cluster, tmp_path):
    import nbformat
    import papermill

    out = tmp_path / "run_variant.ipynb"
    env_before = os.environ.get("DELTALAB_RESULTS")
    os.environ["DELTALAB_RESULTS"] = str(tmp_path / "results")  # inherited by the kernel
    try:
        papermill.execute_notebook(str(REPO_ROOT / "notebooks" / "run_variant.ipynb"), str(out),
                                   parameters={"variant": "l2_norm_error", "scale": "smoke", "tasks": "memorization",
                                               "seeds": [4], "engine": "ray", "address": cluster.address,
                                               "figures_dir": str(tmp_path / "figures")},
                                   cwd=str(tmp_path), kernel_name="python3", progress_bar=False)
    finally:
        if env_before is None:
            os.environ.pop("DELTALAB_RESULTS", None)
        else:
            os.environ["DELTALAB_RESULTS"] = env_before
    nb = nbformat.read(out, as_version=4)
    assert not [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    from deltalab.grid.ray_cluster import run_name

    runs = plan(["l2_norm_error", "delta_net", "gated_delta_net"], load_scale("smoke"), ["memorization"], [4])
    traces = _traces(cluster)
    assert all(len(traces[run_name(spec)]) == 1 for _, spec in runs)  # each trained once, on the cluster
    records = list((tmp_path / "results").rglob("*.json"))
    assert len(records) == 3 and all(json.loads(p.read_text())["spec"]["seed"] == 4 for p in records)
