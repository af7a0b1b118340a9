"""The grid: from (variants × tasks × settings × lr × wd × seeds) to stored runs, resumably, on this machine or a
Ray cluster. One job per module, every import pointing down the list:

    engines.py      ``ensure`` (train or reuse every row asked for: one plan, one call of an engine), ``execute``
                    (train a plan's runs not stored yet, on the engine asked for) and ``run_variant``
    local.py        the local engine: a pool of worker processes on this machine (``execute_local``)
    ray_cluster.py  the Ray engine: one Ray task per run, the driver keeping the store (``execute_ray``)
    status.py       where a grid stands, read from the store: ``missing``, ``grid_status``, ``status_report``
    provenance.py   which code trains: committed code under ``lib/``, or with ``allow_dirty`` its diff stored
                    beside the records (``check_code``, ``DirtyTree``)
    planning.py     what both engines share: ``plan`` (with ``variant_id``, ``resolve_tasks`` of ``deltalab.runs``),
                    ``describe``, ``check_budget``, and what came of a grid (``Summary``, ``RunsFailed``)

The names below are the grid's API (``from deltalab.grid import plan, execute``); the engines' own (``connect``,
``run_resources``, ...) stay in their modules.
"""
from .planning import RunError, RunsFailed, Summary, check_budget, describe, plan, resolve_tasks, variant_id
from .engines import ENGINES, Trained, ensure, execute, run_variant
from .status import grid_status, missing, status_report

__all__ = ["ENGINES", "RunError", "RunsFailed", "Summary", "Trained", "check_budget", "describe", "ensure", "execute",
           "grid_status",
           "missing", "plan", "resolve_tasks", "run_variant", "status_report", "variant_id"]
