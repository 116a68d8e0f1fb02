"""The layers of ``nbcore``, checked on its import graph (every ``import``, at module level or
inside a function, read with ``ast``; nothing is imported to find them).

    core           params, schema, warehouse, archive, history, errors, stages, chunks, lineage,
                   sqlfiles, and the helpers every stage shares (bucket, sources, waivers, ...)
    stages         validate, load, gate, derive, predict, grade: import the core and their own
                   package, never another stage, never the demo
    presentation   report, report_html, charts, grade_charts, why: read stage *records*
                   (and the core), not a stage's internals
    orchestration  plan, runbook, notebook, cli, bench, ...: may use any of the above
    demo           nbcore/demo: builds the demo league with the real stages; only the CLI and the
                   bench import it

Imports that break a rule today are listed in ``KNOWN`` with what they import and who moves
it; a new one fails, and so does a listed one that is gone (take it off the list).
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

NBCORE = Path(__file__).resolve().parent.parent / "nbcore"

CORE = {
    "nbcore", "nbcore.params", "nbcore.schema", "nbcore.schema.coverage", "nbcore.warehouse",
    "nbcore.warehouse.base", "nbcore.warehouse.duckdb", "nbcore.warehouse.duckdb_access",
    "nbcore.warehouse.bigquery", "nbcore.warehouse.lease", "nbcore.archive", "nbcore.history",
    "nbcore.errors", "nbcore.stages", "nbcore.chunks", "nbcore.lineage", "nbcore.sqlfiles",
    # shared by several stages, no stage logic of their own
    "nbcore.progress", "nbcore.waivers", "nbcore.bucket", "nbcore.sources", "nbcore.sources.checks",
    "nbcore.sources.parse", "nbcore.sources.render", "nbcore.expected", "nbcore.sanity", "nbcore.lock",
    "nbcore.resolutions", "nbcore.lockfile", "nbcore.shell", "nbcore.cachedir",
    # one partition state, the targets chosen from it, and the program a stage executes (issue 20)
    "nbcore.state", "nbcore.targets", "nbcore.program", "nbcore.walkforward",
    # the run log and the stop request every stage reads between chunks (issue 22)
    "nbcore.runlog",
    # where a run's time goes: every backend times its statements into it (issue 21)
    "nbcore.profiling",
    # the single chunk runner and the typed stage record (issue 10), when they land
    "nbcore.stage_run", "nbcore.record",
}
STAGE_PACKAGES = {
    "validate": {"nbcore.validate"},
    "load": {"nbcore.load"},
    "gate": {"nbcore.gate"},
    "derive": {"nbcore.derive", "nbcore.derive.checks", "nbcore.derive.processors", "nbcore.derive.result",
               "nbcore.derive.run"},
    "predict": {"nbcore.predict", "nbcore.predict.stage", "nbcore.predict.baseline", "nbcore.predict.calls",
                "nbcore.predict.ensemble", "nbcore.predict.matchup", "nbcore.predict.regression",
                "nbcore.predict.inputs", "nbcore.predict.changes", "nbcore.predict.model_cache", "nbcore.predict.blas"},
    "grade": {"nbcore.grade"},
}
STAGE_MODULES = set().union(*STAGE_PACKAGES.values())
# what presentation may read of a stage: its record
RECORDS = {"nbcore.derive.result"}
PRESENTATION = {"nbcore.report", "nbcore.report_html", "nbcore.charts", "nbcore.grade_charts", "nbcore.why"}
ORCHESTRATION = {"nbcore.plan", "nbcore.runbook", "nbcore.notebook", "nbcore.cli", "nbcore.convergence",
                 "nbcore.kernels", "nbcore.notify", "nbcore.preflight", "nbcore.jobs_estimate"}
# (importer, imported): what it uses, and where it belongs
KNOWN = {
    ("nbcore.derive.run", "nbcore.gate"): "waived_dates: a waivers helper (nbcore.waivers); lead, stage runner",
    ("nbcore.gate", "nbcore.load"): "FAILURES_FILE, find_strays, schedule_anchor, season_of_date: archive / bucket helpers",
    ("nbcore.gate", "nbcore.validate"): "run_validate: the gate re-validates raw (completeness as a core service)",
    ("nbcore.load", "nbcore.validate"): "run_validate: load asks validate which dates are missing",
    ("nbcore.validate", "nbcore.grade"): "grading_completeness: a grade query validate shows",
    ("nbcore.validate", "nbcore.charts"): "Snapshot.heatmap: a display helper on validate's record",
    ("nbcore.report", "nbcore.validate"): "date_ranges: a pure date helper",
    ("nbcore.report", "nbcore.grade"): "accuracy_metrics: grade's record should carry the metrics",
    ("nbcore.grade_charts", "nbcore.grade"): "wilson_interval: a pure statistics helper",
}


def _module_name(path: Path) -> str:
    parts = list(path.with_suffix("").relative_to(NBCORE.parent).parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """nbcore module -> the nbcore modules it imports (anywhere in its body)."""
    paths = {_module_name(p): p for p in NBCORE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for mod, path in paths.items():
        package = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base_name = ".".join(base + ([node.module] if node.module else []))
                else:
                    base_name = node.module or ""
                names = [f"{base_name}.{a.name}" if f"{base_name}.{a.name}" in paths else base_name
                         for a in node.names]
            for name in names:
                while name not in paths and "." in name:
                    name = name.rsplit(".", 1)[0]
                if name in paths and name != mod:
                    targets.add(name)
        graph[mod] = targets
    return graph


GRAPH = import_graph()


def _layer(mod: str) -> str:
    if mod in CORE:
        return "core"
    if mod in STAGE_MODULES:
        return "stage"
    if mod in PRESENTATION:
        return "presentation"
    if mod in ORCHESTRATION or mod.startswith("nbcore.bench"):
        return "orchestration"
    if mod.startswith("nbcore.demo"):
        return "demo"
    return "unassigned"


def _stage_of(mod: str) -> str:
    return next(s for s, mods in STAGE_PACKAGES.items() if mod in mods)


def violations() -> dict[tuple[str, str], str]:
    out = {}
    for mod, targets in GRAPH.items():
        layer = _layer(mod)
        for t in targets:
            tl = _layer(t)
            if layer == "core" and tl != "core":
                out[(mod, t)] = f"core imports {tl}"
            elif layer == "stage" and tl != "core" and not (tl == "stage" and _stage_of(t) == _stage_of(mod)):
                out[(mod, t)] = f"stage {_stage_of(mod)} imports {tl} {t}"
            elif layer == "presentation" and tl not in ("core", "presentation") and t not in RECORDS:
                out[(mod, t)] = f"presentation imports {tl} internals"
            elif tl == "demo" and layer not in ("demo", "orchestration"):
                out[(mod, t)] = "only the CLI and the bench build demos"
            elif tl == "demo" and layer == "orchestration" and mod not in {"nbcore.cli"} and not mod.startswith("nbcore.bench"):
                out[(mod, t)] = "only the CLI and the bench build demos"
    return out


def test_every_module_has_a_layer():
    assert [m for m in GRAPH if _layer(m) == "unassigned"] == []


def test_no_import_breaks_a_layer_beyond_the_known_list():
    new = {k: v for k, v in violations().items() if k not in KNOWN}
    assert new == {}


def test_every_known_exception_still_exists():
    """When an import in ``KNOWN`` is moved away, it comes off the list (the list only shrinks)."""
    assert [k for k in KNOWN if k not in violations()] == []


def test_stages_never_import_the_demo():
    for mod in STAGE_MODULES | CORE | PRESENTATION:
        assert not any(t.startswith("nbcore.demo") for t in GRAPH.get(mod, ())), mod
    # and the demo's before-state builders live under nbcore/demo, not in the stage packages
    assert not list((NBCORE / "derive").glob("demo*.py")) and not list((NBCORE / "predict").glob("demo*.py"))


def test_no_import_cycles():
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in GRAPH.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    assert cycles == []


@pytest.mark.parametrize("source, expected", [
    ("from ..derive import run_derive\n", {"nbcore.derive"}),
    ("def f():\n    from ..grade import run_grade\n", {"nbcore.grade"}),
    ("from nbcore.warehouse.duckdb import DuckDBWarehouse\nimport nbcore.schema\n",
     {"nbcore.warehouse.duckdb", "nbcore.schema"}),
])
def test_the_graph_sees_module_level_and_function_level_imports(tmp_path, monkeypatch, source, expected):
    pkg = tmp_path / "nbcore"
    for mod in ("derive", "grade", "schema", "warehouse"):
        (pkg / mod).mkdir(parents=True)
        (pkg / mod / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "warehouse" / "duckdb.py").write_text("")
    (pkg / "demo").mkdir()
    (pkg / "demo" / "__init__.py").write_text("")
    (pkg / "demo" / "step.py").write_text(source)
    monkeypatch.setattr(sys.modules[__name__], "NBCORE", pkg)
    assert import_graph()["nbcore.demo.step"] == expected
