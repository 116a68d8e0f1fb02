"""Shared fixtures: a small demo league built once into a temp folder, and the shared-build cache.

Tests that write to a warehouse copy the session's DuckDB file first (``demo_copy``), so
every test starts from the same before state and none depends on another's writes.

Building the small demo (and the derived warehouses of ``derive_fixtures``) is the costliest
setup of the suite. ``shared_build`` builds each once per *version of the code it depends on*
into a folder every pytest process of the machine shares (pytest-xdist workers of one run, and
later runs), under a file lock; each session then works on its own copy, so nothing a test does
can leak into the cache. The key (``code_version``) hashes the ``nbcore`` modules the build
imports, directly or not (its import closure, read from the source: an edit to the report or
the CLI does not rebuild the demo), every SQL, schema and data file of ``nbcore`` (any module
may read any of them through the warehouse), the waivers, the test files that define the builds,
and the versions of the libraries that compute values.

Markers (SQLMesh's convention): a test with no marker is ``fast`` (``make test-fast`` runs
``-m fast``); ``slow`` marks what runs the real stage notebooks, end-to-end runs, many seeded
scenarios or subprocesses that wait on a run; ``browser`` and ``zetasql`` mark the headless
browser and loopback-BigQuery tests. Only ``make test`` (CI) runs those.
"""
from __future__ import annotations

import ast
import dataclasses
import fcntl
import hashlib
import json
import os
import pickle
import shutil
import sys
import time
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable

# jsonschema (under nbformat) imports rfc3987_syntax when it is installed, which builds four Earley
# parsers at import: ~2 s of CPU in every process, for IRI checks no test makes. Not in the test
# processes (make test runs pytest on tests/ with -p no:nbval, whose plugin would import it first).
sys.modules.setdefault("rfc3987_syntax", None)

import pytest

from nbcore.demo.build import build_demo
from nbcore.params import RunParams, build_params

# fitted walk-forward models are kept in a folder of this test process's own, never in the user's
# ~/.cache: a test's figures (models fitted, seconds) never depend on what earlier runs left there
if "RUNBOOK_MODEL_CACHE" not in os.environ:
    import tempfile

    os.environ["RUNBOOK_MODEL_CACHE"] = tempfile.mkdtemp(prefix="runbook-test-models-")

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
WAIVERS = ROOT / "params" / "waivers.example.yaml"
# a test without one of these markers is fast (pytest_collection_modifyitems adds ``fast``)
TEST_KINDS = ("fast", "slow", "browser", "zetasql")
# what a build that runs the runbook depends on (``code_version``): every module and the stage notebooks
RUN_DEPS = ("nbcore", "notebooks")


def small_params(root: Path, **extra) -> RunParams:
    data = {
        "run_name": "test",
        "duckdb_path": str(root / "warehouse.duckdb"),
        "bucket": str(root / "bucket"),
        "archive_dir": str(root / "runs"),
        "seasons": [2023, 2024],
        "demo": {"scale": "small", "seed": 7},
        # the demo league's prop-line gaps (nbcore.demo.quirks) are waived, as in params/demo.yaml
        "waivers": str(WAIVERS),
    }
    data.update(extra)
    return build_params(data, "test", root)


def _module_file(name: str) -> Path | None:
    """``nbcore.a.b`` -> its source file, or None when it is not a module (a name imported from one)."""
    base = ROOT.joinpath(*name.split("."))
    for path in (base / "__init__.py", base.with_suffix(".py")):
        if path.is_file():
            return path
    return None


def _imported(path: Path, name: str) -> Iterable[str]:
    """Every ``nbcore`` name a module imports, at the top or inside a function (``ast``, not executed)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_bytes(), str(path))):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            yield base
            yield from (f"{base}.{a.name}" for a in node.names)  # ``from . import schema``: a module


@lru_cache(maxsize=None)
def import_closure(*entries: str) -> tuple[Path, ...]:
    """The source files of ``entries`` and of every nbcore module they import, transitively
    (packages' ``__init__`` included: importing ``a.b`` runs ``a``)."""
    seen: dict[str, Path] = {}
    todo = list(entries)
    while todo:
        name = todo.pop()
        if not name.startswith("nbcore") or name in seen:
            continue
        path = _module_file(name)
        if path is None:
            continue
        seen[name] = path
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]
        todo += list(_imported(path, name))
    return tuple(sorted(set(seen.values())))


def _data_files() -> list[Path]:
    """nbcore's SQL, schema and data files: any module may read any of them (the warehouse reads SQL)."""
    return sorted(p for p in (ROOT / "nbcore").rglob("*")
                  if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts)


@lru_cache(maxsize=None)
def code_version(*entries: str) -> str:
    """A hash of what a build made by ``entries`` depends on: their import closure in nbcore, every
    SQL/schema/data file of nbcore, the waivers the small demo uses, the test helpers
    that define builds (this file, derive_fixtures.py, runbook_helpers.py) and the versions of the
    computing libraries. The entry ``nbcore`` (or none) stands for every module; ``notebooks``
    adds the stage notebooks (``RUN_DEPS``: a runbook run)."""
    import duckdb
    import numpy
    import pandas
    import sqlglot

    modules = [e for e in entries if e != "notebooks"]
    code = list(import_closure(*modules)) if modules and "nbcore" not in modules else sorted(
        p for p in (ROOT / "nbcore").rglob("*.py") if "__pycache__" not in p.parts)
    if "notebooks" in entries:
        code += sorted((ROOT / "notebooks").glob("*.ipynb"))
    h = hashlib.sha256()
    helpers = [TESTS / f for f in ("conftest.py", "derive_fixtures.py", "runbook_helpers.py")]
    for path in [*code, *_data_files(), WAIVERS, *helpers]:
        h.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    h.update(f"{duckdb.__version__} {numpy.__version__} {pandas.__version__} {sqlglot.__version__}".encode())
    return h.hexdigest()[:16]


@contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _prune(folder: Path, name: str, older_than_s: float = 6 * 3600) -> None:
    """Forget builds of other code versions untouched for hours (every edit makes a new version)."""
    now = time.time()
    for old in folder.glob(f"runbook-cache-{name}-*"):
        if old.is_dir() and now - old.stat().st_mtime > older_than_s:
            shutil.rmtree(old, ignore_errors=True)


_TEXT = (".yaml", ".yml", ".json", ".jsonl", ".md", ".html", ".ipynb", ".log", ".txt")


def _relocate(folder: Path, old: str, new: str) -> None:
    """Rewrite the absolute paths a build wrote into its text files (a run archive's params, manifest,
    report) from where it was built to where this session's copy is."""
    for path in folder.rglob("*"):
        if path.is_file() and path.suffix in _TEXT:
            text = path.read_text(encoding="utf-8", errors="surrogateescape")
            if old in text:
                path.write_text(text.replace(old, new), encoding="utf-8", errors="surrogateescape")


def _cache_root(tmp_path_factory) -> Path:
    """The folder every pytest process of the machine shares: pytest's ``/tmp/pytest-of-<user>``.
    Not the base temp's parent: under pytest-xdist a worker's base temp is ``pytest-<N>/popen-gw0``,
    whose parent is that one run's folder, and every run rebuilt the demo. ``RUNBOOK_TEST_CACHE_DIR``
    puts the cache elsewhere (a CI cache directory)."""
    if os.environ.get("RUNBOOK_TEST_CACHE_DIR"):
        return Path(os.environ["RUNBOOK_TEST_CACHE_DIR"])
    base = tmp_path_factory.getbasetemp()
    for folder in (base, *base.parents):
        if folder.name.startswith("pytest-of-"):
            return folder
    return base.parent  # --basetemp somewhere else: the folder around it


def shared_build(tmp_path_factory, name: str, build: Callable[[Path], Any],
                 deps: tuple[str, ...] = (), relocate: bool = False) -> tuple[Path, Any]:
    """``build(folder)`` once per version of the code it depends on (``deps``: the nbcore modules it
    calls, see ``code_version``; ``RUN_DEPS`` for a build that runs the runbook), machine-wide;
    returns this session's private copy of the folder and what ``build`` returned (pickled: it must
    not hold the folder's paths, or the caller relocates them). ``relocate``: rewrite the absolute
    paths the build wrote into its text files (a run archive) to the copy's.
    ``RUNBOOK_TEST_CACHE=0`` builds privately, as before."""
    mine = tmp_path_factory.mktemp(name)
    if os.environ.get("RUNBOOK_TEST_CACHE", "1") == "0":
        return mine, build(mine)
    cache = _cache_root(tmp_path_factory) / f"runbook-cache-{name}-{code_version(*deps)}"
    done = cache / "done.pickle"
    with _locked(cache.with_suffix(".lock")):
        if not done.is_file():
            _prune(cache.parent, name)
            shutil.rmtree(cache, ignore_errors=True)
            (cache / "data").mkdir(parents=True)
            meta = build(cache / "data")
            done.write_bytes(pickle.dumps(meta))
        os.utime(cache)  # in use: not pruned
        shutil.copytree(cache / "data", mine, dirs_exist_ok=True)
    if relocate:
        _relocate(mine, str(cache / "data"), str(mine))
    return mine, pickle.loads(done.read_bytes())


# what the small demo build calls (the warehouse, schema, sources and params come with them)
DEMO_DEPS = ("nbcore.demo.build", "nbcore.params")

@pytest.fixture(scope="session")
def small_demo(tmp_path_factory):
    """(params, DemoBuild) of a small demo league in its before state. Treat as read-only."""

    def build(folder: Path):
        built = build_demo(small_params(folder), progress=False)
        return dataclasses.replace(built, bucket=None, warehouse=None)

    root, built = shared_build(tmp_path_factory, "small_demo", build, DEMO_DEPS)
    params = small_params(root)
    return params, dataclasses.replace(built, bucket=Path(params.bucket), warehouse=str(params.duckdb_path))


@pytest.fixture
def demo_copy(small_demo, tmp_path):
    """A private copy of the small demo (warehouse + bucket) that a test may write to."""
    params, built = small_demo
    shutil.copy(params.duckdb_path, tmp_path / "warehouse.duckdb")
    shutil.copytree(params.bucket, tmp_path / "bucket")
    return small_params(tmp_path), built


@pytest.fixture(scope="session")
def loaded_demo(small_demo, tmp_path_factory):
    """(folder, DemoBuild): the small demo after ``run_load`` (raw complete but for the waived prop
    gaps, the transient bucket fault used up), built once. Copy it before writing (``loaded``)."""
    from nbcore.load import run_load

    params, built = small_demo

    def build(folder: Path):
        shutil.copy(params.duckdb_path, folder / "warehouse.duckdb")
        shutil.copytree(params.bucket, folder / "bucket")
        assert run_load(small_params(folder), progress=False).ok

    folder, _ = shared_build(tmp_path_factory, "loaded_demo", build, (*DEMO_DEPS, "nbcore.load"))
    return folder, built


@pytest.fixture
def loaded(loaded_demo, tmp_path):
    """A private copy of the small demo after load, that a test may write to."""
    folder, built = loaded_demo
    shutil.copy(folder / "warehouse.duckdb", tmp_path / "warehouse.duckdb")
    shutil.copytree(folder / "bucket", tmp_path / "bucket")
    return small_params(tmp_path), built

# -- one whole run of the runbook, shared --------------------------------------------------------
FULL_RUN_CHUNK_DAYS = 5  # small chunks: derive commits often (the crash and signal tests kill between chunks)
FULL_RUN_SECRET = "https://hooks.example.com/services/T0/B0/S3CR3T-5d1e?token=S3CR3T-5d1e"  # a webhook URL's token


@pytest.fixture(scope="session")
def full_run(small_demo, tmp_path_factory):
    """(params, params file, RunOutcome, table checksums) of one uninterrupted ``runbook run`` of
    every stage on the small demo (``chunk_days`` 5, a webhook token in the params): the run every
    test that needs "an uninterrupted run" compares with or reads (test_runbook_full, test_signals).
    Made once per version of nbcore and the notebooks, machine-wide; read-only: copy before writing."""
    from nbcore.runbook import run_runbook
    from nbcore.warehouse import open_warehouse
    from runbook_helpers import copy_demo

    src, _ = small_demo

    def build(folder: Path):
        params, _ = copy_demo(src, folder, chunk_days=FULL_RUN_CHUNK_DAYS, notify_webhook=FULL_RUN_SECRET)
        out = run_runbook(params, echo=None)
        with open_warehouse(params, read_only=True) as wh:
            sums = wh.checksums()
        rel = lambda p: p and Path(p).relative_to(folder)  # noqa: E731
        return dataclasses.replace(out, run_dir=rel(out.run_dir), report_path=rel(out.report_path), manifest={}), sums

    folder, (out, sums) = shared_build(tmp_path_factory, "full_run", build, RUN_DEPS, relocate=True)
    out = dataclasses.replace(out, run_dir=folder / out.run_dir,
                              report_path=out.report_path and folder / out.report_path)
    out.manifest = json.loads((out.run_dir / "manifest.json").read_text())
    import yaml

    params = build_params(yaml.safe_load((folder / "params.yaml").read_text()), "test", folder)  # as copy_demo made it
    return params, folder / "params.yaml", out, sums


def copy_full_run(full_run, dst: Path, **extra) -> tuple[RunParams, Path]:
    """A private, writable copy of ``full_run``'s folder (warehouse, bucket, archive, its paths
    rewritten to the copy's): a backfilled demo to start from. Returns (params, params file)."""
    import yaml

    params, params_file, _, _ = full_run
    src = params_file.parent
    shutil.copytree(src, dst, dirs_exist_ok=True)
    _relocate(dst, str(src), str(dst))
    data = {**yaml.safe_load((dst / "params.yaml").read_text()), **extra}
    (dst / "params.yaml").write_text(yaml.safe_dump(json.loads(json.dumps(data, default=str)), sort_keys=False))
    return build_params(data, "test", dst), dst / "params.yaml"


# the derive tests' warehouses (built once per session, shared by test_derive, test_derive_values,
# test_predict_grade_demo): see derive_fixtures.py
from derive_fixtures import derived, raw_complete, rederived  # noqa: E402,F401


# -- what ZetaSQL analyzed (issue 14: "the note says how many statements and how long") --------
# Every loopback server of a test process shares one checker; each process (an xdist worker, or
# pytest itself) writes its counts at the end, and the summary adds them up.
_ZETA_DIR_ENV = "RUNBOOK_ZETASQL_STATS_DIR"


def pytest_configure(config):
    if not hasattr(config, "workerinput"):  # the controller (or a run without xdist)
        folder = Path(config.rootpath) / ".pytest_cache" / "zetasql-stats"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True, exist_ok=True)
        os.environ[_ZETA_DIR_ENV] = str(folder)


# the order pytest-xdist hands files out in: slowest kinds first
_KIND_ORDER = {"slow": 0, "browser": 1, "zetasql": 1, "fast": 2}


@pytest.hookimpl(tryfirst=True)  # before -m selects
def pytest_collection_modifyitems(config, items):
    """SQLMesh's convention: a test that says nothing about its kind is fast (``-m fast``).

    Then the files are ordered slowest kind first, for ``--dist loadfile --no-loadscope-reorder``
    (pytest-xdist hands the files out in that order, one file to one worker, so that no worker
    starts a long file while the other has nothing left). Not ``--dist loadgroup``: pytest-xdist
    3.8 groups by rewriting ``item._nodeid``, which pytest 9 no longer reads, so every test is
    handed out alone and module fixtures are built on both workers."""
    for item in items:
        if not any(item.get_closest_marker(kind) for kind in TEST_KINDS):
            item.add_marker(pytest.mark.fast)

    def kind(item) -> int:
        return min(_KIND_ORDER[k] for k in TEST_KINDS if item.get_closest_marker(k))

    def scope(item) -> str:  # loadfile: a file is one unit of work
        return item.nodeid.split("::")[0]

    # file -> (its slowest kind, tier, where it was first collected); tier: the first file that needs
    # the shared full run goes first and builds it, the files that do not need it next, the other
    # files that need it last, so that no worker waits for the build while the other makes it
    rank: dict[str, list] = {}
    for i, item in enumerate(items):
        k, s = kind(item), scope(item)
        rank[s] = [min(rank[s][0], k), rank[s][1], rank[s][2]] if s in rank else [k, 1, i]
        if "full_run" in item.fixturenames:
            rank[s][1] = 2
    full = sorted((r for r in rank.values() if r[1] == 2), key=lambda r: (r[0], r[2]))
    if full:
        full[0][1] = 0
    items.sort(key=lambda it: rank[scope(it)])


def pytest_sessionfinish(session):
    from bqserver import server as bqs

    checker, folder = bqs._CHECKER, os.environ.get(_ZETA_DIR_ENV)
    if checker is None or not folder:
        return
    stats = {"statements": checker.statements, "seconds": round(checker.seconds, 1),
             "rejected": len(checker.rejections)}
    (Path(folder) / f"{os.getpid()}.json").write_text(__import__("json").dumps(stats))


def pytest_terminal_summary(terminalreporter, config):
    import json

    folder = os.environ.get(_ZETA_DIR_ENV)
    files = sorted(Path(folder).glob("*.json")) if folder else []
    if not files:
        return
    parts = [json.loads(f.read_text()) for f in files]
    total = {k: sum(p[k] for p in parts) for k in ("statements", "seconds", "rejected")}
    terminalreporter.write_line(
        f"ZetaSQL analyzed {total['statements']} statements sent to the loopback BigQuery server in "
        f"{total['seconds']:.1f} s ({len(parts)} test processes); rejected: {total['rejected']} "
        f"(tests/test_bigquery_analyzer.py sends such statements on purpose; any other rejection fails its test)")
