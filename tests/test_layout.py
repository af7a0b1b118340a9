"""The package's layout (issue #33): no import circle, and no file name used twice.

Every ``lib/deltalab/**/*.py`` is parsed with ``ast`` (nothing is imported), and each ``import deltalab...``,
``from deltalab... import`` and relative import becomes an arrow from the importing module to the module it
names: ``from .x import y`` points at ``x.y`` where ``y`` is a submodule, else at ``x``. An arrow is
*module-level* when the import runs as the module is imported, and *deferred* when it sits in a function (it runs
when the function is called); imports under ``if TYPE_CHECKING:`` are left out (they never run).

- No two modules import each other, at any level: a deferred import only hides a circle, it does not remove it.
- No circle among module-level imports, of any length.
- No circle of any length at all (module-level and deferred arrows together).
- No module file name twice in the package (``__init__.py`` and ``__main__.py`` aside): ``tables`` should name one
  thing.
- The study's modules never import the performance tools (``deltalab.perf``); only the CLI starts them.
- A run's identity (``deltalab.runs``: ``RunSpec``, ``make_spec``, ``budget_id``) sits below both the store and
  training (issue #42): ``store`` imports no ``train`` and ``runs`` imports neither, directly or through another
  module, at any level; no module of ``analysis`` imports the ``grid`` (``BELOW``).
- A scale is loaded where a command or a notebook starts and handed down (issue #42): ``load_scale(`` only in the
  files of ``LOAD_SCALE_CALLS``, as many times as it says, and in a notebook only in the cell after the parameters.

Issue #33's knots keep a case each, so that none comes back unnoticed (``FORMER_CIRCLES``,
``FORMER_DUPLICATE_NAMES``): runner.py and ray_engine.py, which imported each other, are now ``deltalab.grid``,
whose engines import the plan they share and nothing above it; the store's ``tables.py``, named like
``analysis/tables.py``, is now ``deltalab/analysis/accuracies.py`` (issue #42: beside the analysis it serves).
"""
from __future__ import annotations

import ast
import json
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = "deltalab"
ROOT = Path(__file__).resolve().parents[1] / "lib" / PACKAGE

# issue #33: the modules of the former circle runner.py <-> ray_engine.py, now deltalab.grid, and what each of them
# may import of the grid (the modules below it); planning.py, which both engines import, imports none of it
GRID = "deltalab.grid"
FORMER_CIRCLES = {
    "runner+ray_engine": {
        "deltalab.grid.engines": {"deltalab.grid.planning", "deltalab.grid.local", "deltalab.grid.ray_cluster",
                                  "deltalab.grid.provenance"},
        "deltalab.grid.local": {"deltalab.grid.planning", "deltalab.grid.provenance"},
        "deltalab.grid.ray_cluster": {"deltalab.grid.planning", "deltalab.grid.provenance"},
        "deltalab.grid.status": {"deltalab.grid.planning", "deltalab.grid.provenance"},
        "deltalab.grid.planning": set(),
        "deltalab.grid.provenance": set(),
    },
}
# issue #33: the store's tables.py (now accuracies.py) was named like analysis/tables.py
FORMER_DUPLICATE_NAMES = ["tables.py"]
# issue #42: what a module must not reach, through any chain of imports (module-level or deferred): the store
# reached train.py for RunSpec and budget_id, which now live in runs.py, below both
BELOW = {
    "deltalab.store": {"deltalab.train"},
    "deltalab.runs": {"deltalab.store", "deltalab.train"},
    # the grid trains, analysis reads (issue #42): no analysis module reaches the grid, so a new engine or an engine's
    # option never touches analysis code (the notebooks call ``grid.ensure``, then analysis reads the store)
    "deltalab.analysis": {"deltalab.grid"},
}
# issue #42: a scale is resolved once, where the command or the notebook starts, and the loaded Scale is handed down.
# ``load_scale(`` may be called only in these files, each with the number of calls it has and why it resolves a name:
LOAD_SCALE_CALLS = {
    "deltalab/params.py": 1,  # its definition
    "deltalab/__main__.py": 1,  # the CLI: --scale, --best-of, --calibration-of (argparse's type)
    "deltalab/analysis/report.py": 1,  # check_parameters: run_variant.ipynb's first cell
    "deltalab/perf/stackbench.py": 2,  # the bench CLI's own arguments (--stack, --project)
    "deltalab/perf/gridbench.py": 2,  # the bench CLI's --grid: cpu's tasks, and the mini-grid's own scale file
    # names read from data rather than given by a command (left for their owners, issue #42 items 3-4):
    "deltalab/analysis/accuracies.py": 1,  # expected_runs of a frame's own `scale` column when no scale is passed
    "deltalab/analysis/agreement.py": 1,  # stored_runs(name): pilots and archived versions found by name
    "deltalab/analysis/claims.py": 1,  # archived_evidence: the round notebook's archived_scales parameter
    "deltalab/analysis/quoted.py": 3,  # the scales a document's quoted figures name
    "deltalab/publish/site.py": 1,  # a study folder's scale, for its description
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST):
    """``(node, deferred)`` for every Import/ImportFrom that can run, deferred when inside a function."""
    def walk(node, deferred):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for sub in child.orelse:
                    yield from walk(ast.Module(body=[sub], type_ignores=[]), deferred)
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                yield child, deferred
            yield from walk(child, deferred or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                                   ast.Lambda)))
    yield from walk(tree, False)


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> set[str]:
    """The package's modules an import statement names."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
        out = set()
        for name in names:
            while name and name not in MODULES:  # `import deltalab.x.y` names deltalab.x.y
                name = name.rpartition(".")[0]
            if name:
                out.add(name)
        return out
    if node.level:
        is_package = MODULES[module].name == "__init__.py"
        base = module.split(".")
        if not is_package:
            base = base[:-1]
        base = base[:len(base) - (node.level - 1)]
        base = ".".join(base + ([node.module] if node.module else []))
    else:
        base = node.module or ""
    if base != PACKAGE and not base.startswith(PACKAGE + "."):
        return set()
    out = set()
    for alias in node.names:
        sub = f"{base}.{alias.name}"
        out.add(sub if sub in MODULES else base)
    return {t for t in out if t in MODULES}


def import_graph() -> dict[str, dict[str, bool]]:
    """``graph[a][b]``: ``a`` imports ``b``; True when at least one such import is module-level."""
    graph: dict[str, dict[str, bool]] = defaultdict(dict)
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        graph[module]  # every module is a node
        for node, deferred in _imports(tree):
            for target in _targets(module, node) - {module}:
                graph[module][target] = graph[module].get(target, False) or not deferred
    return graph


GRAPH = import_graph()


def circles(module_level_only: bool) -> list[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan): each holds at least one circle."""
    edges = {a: [b for b, top in bs.items() if top or not module_level_only] for a, bs in GRAPH.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, []):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(frozenset(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def mutual_imports() -> set[frozenset[str]]:
    return {frozenset({a, b}) for a, bs in GRAPH.items() for b in bs if a in GRAPH.get(b, {})}


def _describe(comp: frozenset[str]) -> str:
    arrows = [f"{a} -> {b}{'' if GRAPH[a][b] else ' (in a function)'}"
              for a in sorted(comp) for b in sorted(GRAPH[a]) if b in comp]
    return "; ".join(arrows)


def test_the_graph_sees_the_package():
    """The parser finds the imports it should (a guard against a walker that silently sees nothing)."""
    assert {"deltalab.perf.bench", "deltalab.perf.trainstep", "deltalab.train", "deltalab.analysis"} <= set(GRAPH)
    assert GRAPH["deltalab.perf.bench"]["deltalab.perf.trainstep"] is True  # `from . import trainstep`
    assert GRAPH["deltalab.perf.bench"]["deltalab.perf.gemmbound"] is False  # in main()
    assert GRAPH["deltalab.perf.gemmbound"]["deltalab.perf.trainstep"] is True
    assert "deltalab.core" in GRAPH["deltalab"]  # `from .core import ...` in the package's __init__


def test_no_two_modules_import_each_other():
    found = {pair: _describe(pair) for pair in mutual_imports()}
    assert not found, f"modules that import each other: {found}"


@pytest.mark.parametrize("module_level_only", [True, False], ids=["module-level", "with-deferred"])
def test_no_import_circle(module_level_only):
    found = [_describe(comp) for comp in circles(module_level_only)]
    assert not found, f"import circles: {found}"


@pytest.mark.parametrize("former", FORMER_CIRCLES)
def test_known_circle_is_gone(former):
    """The grid's modules exist, each imports only the grid modules below it (at any level), none is on a circle."""
    allowed = FORMER_CIRCLES[former]
    grid_modules = {m for m in MODULES if m.startswith(GRID + ".")}
    assert grid_modules == set(allowed), grid_modules
    for module, below in allowed.items():
        assert {b for b in GRAPH[module] if b.startswith(GRID)} <= below, (module, sorted(GRAPH[module]))
    assert not [c for c in circles(module_level_only=False) if c & set(allowed)]
    assert not {"deltalab.runner", "deltalab.ray_engine"} & set(MODULES)


def _file_names() -> dict[str, list[str]]:
    names: dict[str, list[str]] = defaultdict(list)
    for path in MODULES.values():
        if path.name not in ("__init__.py", "__main__.py"):
            names[path.name].append(path.relative_to(ROOT.parent).as_posix())
    return names


def test_no_module_file_name_twice():
    twice = {n: paths for n, paths in _file_names().items() if len(paths) > 1}
    assert not twice, f"module file names used more than once: {twice}"


@pytest.mark.parametrize("name", FORMER_DUPLICATE_NAMES)
def test_known_duplicate_name_is_gone(name):
    assert len(_file_names().get(name, [])) <= 1, _file_names()[name]


def test_only_the_cli_imports_the_performance_tools():
    """``deltalab.perf`` sits on top: the study's modules do not depend on it."""
    importers = {a for a, bs in GRAPH.items() for b in bs
                 if (b == "deltalab.perf" or b.startswith("deltalab.perf.")) and not a.startswith("deltalab.perf")}
    assert importers == {"deltalab.__main__"}


def import_chain(start: str, target: str) -> list[str] | None:
    """The shortest chain of imports (module-level or deferred) from ``start`` to ``target``, or None."""
    previous: dict[str, str | None] = {start: None}
    frontier = [start]
    while frontier:
        following = []
        for v in frontier:
            for w in sorted(GRAPH.get(v, {})):
                if w not in previous:
                    previous[w] = v
                    following.append(w)
        frontier = following
    if target not in previous:
        return None
    chain = [target]
    while previous[chain[-1]] is not None:
        chain.append(previous[chain[-1]])
    return chain[::-1]


def test_import_chain_finds_a_chain():
    """The chain finder sees a known chain and refuses a reversed one (so a rule below cannot pass vacuously)."""
    assert import_chain("deltalab.store", "deltalab.runs") == ["deltalab.store", "deltalab.runs"]
    assert import_chain("deltalab.train", "deltalab.runs") == ["deltalab.train", "deltalab.runs"]
    assert import_chain("deltalab.runs", "deltalab.grid") is None


def _within(name: str) -> list[str]:
    """The module ``name`` and, for a package, every module under it."""
    return [m for m in MODULES if m == name or m.startswith(name + ".")]


@pytest.mark.parametrize("module", BELOW)
def test_module_stays_below(module):
    """``store`` imports no ``train``; ``runs`` (a run's identity) imports neither ``store`` nor ``train``; no module
    of ``analysis`` imports the ``grid``. A package stands for every module under it, on either side."""
    assert module in MODULES and BELOW[module] <= set(MODULES), (module, BELOW[module])
    targets = sorted(t for name in BELOW[module] for t in _within(name))
    reached = {start: " -> ".join(chains[0]) for start in _within(module)
               if (chains := [c for t in targets if (c := import_chain(start, t))])}
    assert not reached, f"{module} must not import these (at any level, through any module): {reached}"


def test_a_package_rule_sees_its_modules():
    """The analysis rule checks analysis's modules against every grid module (not just the two packages' __init__,
    which import little): the notebook-facing modules are among them, and the grid's engines are reachable."""
    assert {"deltalab.analysis.study", "deltalab.analysis.report"} <= set(_within("deltalab.analysis"))
    assert "deltalab.grid.engines" in _within("deltalab.grid")
    assert import_chain("deltalab.__main__", "deltalab.grid.engines")


def _load_scale_calls() -> dict[str, int]:
    """File (relative to lib/) → how many times its source calls ``load_scale(`` (a plain text count, as a reader
    searching for it would count)."""
    counts = {path.relative_to(ROOT.parent).as_posix(): path.read_text().count("load_scale(")
              for path in MODULES.values()}
    return {f: n for f, n in counts.items() if n}


def test_the_scale_is_loaded_where_a_command_starts():
    """``load_scale(`` only where a command or a notebook resolves its scale (``LOAD_SCALE_CALLS``, with why), and
    in the notebooks only in the first code cell after the parameters: everything below takes the loaded Scale."""
    assert _load_scale_calls() == LOAD_SCALE_CALLS
    for path in sorted((ROOT.parents[1] / "notebooks").glob("*.ipynb")):
        code = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
        first = next(i for i, c in enumerate(code) if "parameters" in c.get("metadata", {}).get("tags", [])) + 1
        late = [i for i, c in enumerate(code) if "load_scale(" in "".join(c["source"]) and i != first]
        assert not late, f"{path.name}: load_scale( in code cells {late}; only the cell after the parameters loads"
