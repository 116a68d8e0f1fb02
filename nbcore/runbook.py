"""The runbook driver: every stage notebook, in order, executed with papermill into a run archive.

    validate (before) → load → gate → derive → predict → grade → validate (after) → report

Each step runs in a fresh kernel with three kinds of parameters: ``params_file`` (the
archive's ``params.yaml``, secrets removed), ``run_dir`` (the archive) and, for validate,
``snapshot`` ("before"/"after"). Secrets reach the kernel only through environment
variables (``RUNBOOK_CREDENTIALS_PATH``), so no executed notebook can hold one.

The archive gets each executed notebook (``NN_<step>.ipynb``) and its HTML; a failed step
keeps papermill's error marker. ``manifest.json`` is rewritten after every step, so a run
killed at any moment leaves a manifest that says where it was, and ``resume_run`` continues
from there in the same archive. The steps are the registry's (``nbcore.stages.STEPS``). A step
that records ``status: blocked`` in ``stages/<step>.json`` (the gate) stops the run as *blocked*;
a notebook that raises stops it as *failed* (see "stage records" below for the keys read).
Notebooks that don't exist are recorded as *skipped*.

Only one run writes to a warehouse at a time (``nbcore.lock``).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from functools import lru_cache
from typing import Any, Callable, Iterator, Optional

import pandas as pd
import yaml

from .archive import ArchiveWriteError, RunArchive, list_runs, run_alive, unique_run_id, utcnow, write_atomic
from .errors import (EXIT_INTERRUPTED, EXIT_SUCCEEDED, GateBlockedError, StageFailed, UsageError, exit_code_for,
                     exit_code_for_name, exit_code_for_signal)
from .kernels import LocalKernelManager, WarmKernels, kill_kernels
from .lock import RunLockedError, WarehouseLock, warehouse_label
from .notify import notify, run_payload, webhook_url
from .params import PROJECT_ROOT, RunParams, load_params
from .record import StageRecord, read_record
from .runlog import RUN_DIR_ENV, Progress, clear_stop, log_line, request_stop, signal_name
from .shell import runbook as runbook_command, show
from .stages import STAGE_NAMES, STEPS, Step

log = logging.getLogger(__name__)

NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"
# a run's status -> its exit code, from the error classes (nbcore.errors holds the one table)
EXIT_CODES = {"succeeded": EXIT_SUCCEEDED, "failed": StageFailed.exit_code, "blocked": GateBlockedError.exit_code,
              "interrupted": EXIT_INTERRUPTED}  # interrupted: 128 + the signal's number (nbcore.errors.EXIT_SIGNALS)
SECRET_ENV = "RUNBOOK_CREDENTIALS_PATH"
REPORT_HTML = "report.html"
SUMMARY_MD = "summary.md"


@dataclass
class RunOutcome:
    run_id: str
    run_dir: Path
    status: str  # succeeded | failed | blocked | interrupted
    exit_code: int
    report_path: Optional[Path]
    stopped_at: Optional[str] = None
    reason: Optional[str] = None
    resume_command: Optional[str] = None
    manifest: dict = field(default_factory=dict, repr=False)

    def describe(self) -> str:
        """What the terminal shows: names and paths through ``shell.show`` (control characters escaped),
        the resume command quoted by ``shell.command`` so it runs as printed."""
        lines = [f"run {show(self.run_id)}: {self.status}"]
        if self.stopped_at:
            lines.append(f"  stopped at {self.stopped_at}: {show(self.reason)}")
            lines.append(f"  resume with: {self.resume_command}")
        lines.append(f"  archive: {show(self.run_dir)}")
        if self.report_path:
            lines.append(f"  report:  {show(self.report_path)}")
        return "\n".join(lines)


# -- helpers --------------------------------------------------------------------------------
def selected_steps(params: RunParams) -> list[Step]:
    return [s for s in STEPS if s.stage in params.stages]


def resolve_step(name: str, steps: list[Step] | tuple[Step, ...] = STEPS) -> Step:
    """A step by its name or its stage (``validate`` means the first validate step)."""
    for s in steps:
        if s.name == name:
            return s
    for s in steps:
        if s.stage == name:
            return s
    raise UsageError(f"unknown stage {name!r} for --from; choose a step of this run "
                     f"({', '.join(s.name for s in steps)}) or a stage ({', '.join(STAGE_NAMES)})")


def params_hash(public: dict) -> str:
    """sha256 of the public parameters (canonical JSON): two runs with one hash ran the same backfill."""
    return hashlib.sha256(json.dumps(public, sort_keys=True, default=str).encode()).hexdigest()[:16]


def git_state(root: Path = PROJECT_ROOT) -> dict[str, Any]:
    """The runbook's own commit, and whether its code differs from it."""
    def git(*args: str) -> Optional[str]:
        try:
            out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    dirty = git("status", "--porcelain", "--", "nbcore", "notebooks")
    return {"git_commit": commit, "git_dirty": bool(dirty) if dirty is not None else None}


def _skip_iri_grammar() -> None:
    """papermill and nbconvert import nbformat, which imports jsonschema, whose format checkers
    import ``rfc3987_syntax`` when it is installed (jupyterlab's dependencies install it): that
    compiles an IRI grammar at import, ~1.9 s of every driver start. Notebook validation checks no
    IRI format, so the driver leaves that one optional checker out (jsonschema treats the module
    as not installed). Only where nothing imported it already."""
    sys.modules.setdefault("rfc3987_syntax", None)


_IMG_WITHOUT_ALT = re.compile(r"<img(?![^>]*\balt=)")
_FOCUSABLE = re.compile(r'<div class="([^"]*\b(?:jp-Cell-inputWrapper|jp-OutputArea-output)\b[^"]*)"')


@lru_cache(maxsize=1)
def _page_exporter_class():
    """nbconvert's HTML exporter without its BeautifulSoup pass. After rendering, nbconvert parses
    the whole page again to add alt text to images and ``tabindex`` to cells: a third of a page's
    export time (a validate page is 250 KB of tables). The same two edits are made on the text."""
    from nbconvert import HTMLExporter
    from nbconvert.exporters.templateexporter import TemplateExporter
    from nbconvert.filters.highlight import Highlight2HTML
    from nbconvert.filters.widgetsdatatypefilter import WidgetsDataTypeFilter

    class PageExporter(HTMLExporter):
        def from_notebook_node(self, nb, resources=None, **kw):
            langinfo = nb.metadata.get("language_info", {})
            lexer = langinfo.get("pygments_lexer", langinfo.get("name", None))
            self.register_filter("highlight_code", self.filters.get(
                "highlight_code", Highlight2HTML(pygments_lexer=lexer, parent=self)))
            resources = self._init_resources(resources)
            self.register_filter("filter_data_type", WidgetsDataTypeFilter(
                notebook_metadata=self._nb_metadata, parent=self, resources=resources))
            html, resources = TemplateExporter.from_notebook_node(self, nb, resources, **kw)
            html = _IMG_WITHOUT_ALT.sub('<img alt="No description has been provided for this image"', html)
            html = _FOCUSABLE.sub(r'<div class="\1" tabindex="0"', html)
            return html, resources

    return PageExporter


@lru_cache(maxsize=2)
def _html_exporter(no_input: bool):
    """One nbconvert exporter per kind for the driver's life: its templates load once, not per page."""
    _skip_iri_grammar()
    exporter = _page_exporter_class()(template_name="lab")
    if no_input:
        exporter.exclude_input = True
        exporter.exclude_input_prompt = True
        exporter.exclude_output_prompt = True
    return exporter


def export_html(notebook: Path, html: Path, no_input: bool = False, title: Optional[str] = None) -> Path:
    """Standalone HTML of an executed notebook (figures embedded); ``no_input`` drops the code."""
    import nbformat

    exporter = _html_exporter(no_input)

    nb = nbformat.read(str(notebook), as_version=4)
    nb.metadata["title"] = title or notebook.stem
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title or notebook.stem}})
    return write_atomic(html, body)  # a full disk leaves the old page or none, never half a page


@contextmanager
def kernel_env(**values: Optional[str]) -> Iterator[None]:
    """Set environment variables for the kernels started inside the block (then restore them)."""
    old = {k: os.environ.get(k) for k in values}
    for k, v in values.items():
        if v is not None:
            os.environ[k] = v
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def secret_env(params: RunParams):
    """Hand secrets to kernels through the environment, never through notebook parameters."""
    secret = params.bigquery.credentials_path if params.bigquery is not None else None
    return kernel_env(**{SECRET_ENV: secret.get_secret_value() if secret is not None else None})


def _bigquery_jobs(params: RunParams, run_id: str, stage: str, since: datetime) -> Optional[dict]:
    """On BigQuery: the jobs a step ran (labelled with this run and stage by the backend), with their
    ids and bytes, listed through the jobs API after the step. None on other backends."""
    if params.backend != "bigquery":
        return None
    try:
        from .warehouse.bigquery import BigQueryWarehouse, label_value

        wh = BigQueryWarehouse.from_params(params, run_id=run_id, stage="runbook", read_only=True)
        try:
            want = (label_value(run_id), label_value(stage))
            floor = since - timedelta(seconds=5)
            out: dict[str, Any] = {"jobs": 0, "job_ids": [], "bytes_processed": 0, "bytes_billed": 0}
            for job in wh.client.list_jobs(min_creation_time=floor, all_users=False):
                labels = job.labels or {}
                if (labels.get("run_id"), labels.get("stage")) != want:
                    continue
                if job.created is not None and job.created < floor:
                    continue
                out["jobs"] += 1
                out["job_ids"].append(job.job_id)
                out["bytes_processed"] += int(getattr(job, "total_bytes_processed", None) or 0)
                out["bytes_billed"] += int(getattr(job, "total_bytes_billed", None) or 0)
            return out
        finally:
            wh.close()
    except Exception as e:  # bookkeeping must never fail a run
        log.warning("could not list the BigQuery jobs of %s: %s", stage, e)
        return {"error": f"{type(e).__name__}: {e}"}


def resume_command(run_dir: Path, step: Optional[str] = None) -> str:
    """The command that resumes a run, quoted (``shell.runbook``): it runs as printed whatever the archive path."""
    return runbook_command("resume", run_dir.name, "--archive-dir", run_dir.parent, *(("--from", step) if step else ()))


# -- stage records ----------------------------------------------------------------------------
# A step's record is ``stages/<step name>.json``: the typed stage contract of ``nbcore.record``
# (status, reason, rows_written, chunks, and the stage's own fields). A stage fails by raising
# (its notebook then fails under papermill); "blocked" is the one outcome a notebook may report
# without raising. BigQuery jobs and bytes are listed by the driver itself.
RECORDS_DIR = "stages"


def record_path(archive: RunArchive, step: Step) -> Path:
    return archive.file(f"{RECORDS_DIR}/{step.name}.json")


def _set_aside_record(archive: RunArchive, step: Step) -> None:
    """Move an earlier attempt's record to stages/attempts/, so the record read after the step is this one's."""
    p = record_path(archive, step)
    if not p.exists():
        return
    attempts = archive.file(f"{RECORDS_DIR}/attempts")
    attempts.mkdir(parents=True, exist_ok=True)
    n = 1 + sum(1 for _ in attempts.glob(f"{step.name}-*.json"))
    p.rename(attempts / f"{step.name}-{n}.json")


def _stage_record(archive: RunArchive, step: Step) -> Optional[StageRecord]:
    """The typed record the step wrote (``stages/<step name>.json``), or None if it wrote none.
    A record that does not validate comes back as a failed record naming the field."""
    return read_record(record_path(archive, step), step.stage)


def _cell_seconds(nb_path: Path) -> tuple[Optional[float], Optional[float]]:
    """(papermill's notebook duration, sum of cell durations) from the executed notebook."""
    try:
        nb = json.loads(nb_path.read_text())
    except (OSError, ValueError):
        return None, None
    total = (nb.get("metadata", {}).get("papermill") or {}).get("duration")
    cells = sum(float((c.get("metadata", {}).get("papermill") or {}).get("duration") or 0) for c in nb.get("cells", []))
    return total, cells


# -- the driver -----------------------------------------------------------------------------
def _new_entry(step: Step, nb_dir: Path) -> dict:
    return {
        "name": step.name, "stage": step.stage, "notebook": step.output,
        "html": Path(step.output).with_suffix(".html").name,
        "source": str((nb_dir / step.notebook).relative_to(PROJECT_ROOT)) if (nb_dir / step.notebook).is_relative_to(PROJECT_ROOT) else str(nb_dir / step.notebook),
        "status": "pending", "started_at": None, "ended_at": None, "seconds": None,
        "kernel_overhead_s": None, "error": None, "failed_cell": None, "record": None,
    }


def _step_env(step: Step, archive: RunArchive, params: RunParams) -> dict:
    """The environment a step's kernel starts with: the driver's, the secrets (``secret_env``),
    and the run id, stage and run folder (the BigQuery job labels; the run log and stop requests)."""
    env = dict(os.environ)
    secret = params.bigquery.credentials_path if params.bigquery is not None else None
    if secret is not None:
        env[SECRET_ENV] = secret.get_secret_value()
    env.update({"RUNBOOK_RUN_ID": archive.run_id, "RUNBOOK_STAGE": step.stage, RUN_DIR_ENV: str(archive.path)})
    return env


def _warm_up(warm: Optional[WarmKernels], step: Optional[Step], archive: RunArchive, params: RunParams,
             nb_dir: Path) -> None:
    """Start ``step``'s kernel ahead of time (with the imports of its notebook's stage module)."""
    if warm is None or step is None or not (nb_dir / step.notebook).exists():
        return
    import importlib.util

    module = f"nbcore.{step.stage}"
    warm.prepare(step.name, _step_env(step, archive, params), str((nb_dir / step.notebook).parent),
                 imports=module if importlib.util.find_spec(module) is not None else "")


def _warm_kernels(params: RunParams) -> Optional[WarmKernels]:
    """Kernels started a step ahead (``RUNBOOK_WARM_KERNELS=0`` turns it off: every step cold)."""
    if os.environ.get("RUNBOOK_WARM_KERNELS", "1") == "0":
        return None
    return WarmKernels(params.kernel_name)


def _execute(step: Step, entry: dict, archive: RunArchive, params: RunParams, nb_dir: Path,
             warm: Optional[WarmKernels] = None, next_step: Optional[Step] = None) -> None:
    """Run one step's notebook; fills ``entry`` (status, seconds, error, stage record). With
    ``warm`` the step takes its kernel started ahead, and ``next_step``'s kernel starts meanwhile."""
    _skip_iri_grammar()
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    src = nb_dir / step.notebook
    entry.update(started_at=utcnow(), ended_at=None, seconds=None, error=None, failed_cell=None, record=None,
                 kernel_overhead_s=None, error_class=None, exit_code=None)
    for stale in ("bigquery", "job_ids", "bytes_billed", "html_error"):  # from an earlier attempt
        entry.pop(stale, None)
    _set_aside_record(archive, step)
    if not src.exists():
        entry.update(status="skipped", ended_at=utcnow(), seconds=0.0,
                     error=f"notebook {step.notebook} does not exist yet; stage skipped")
        return
    out = archive.file(step.output)
    parameters = {"params_file": str(archive.file("params.yaml")), "run_dir": str(archive.path), **dict(step.parameters)}
    t0 = time.perf_counter()
    began = datetime.now(timezone.utc)
    status, error = "succeeded", None
    km = warm.take(step.name) if warm is not None else None
    _warm_up(warm, next_step, archive, params, nb_dir)
    try:
        # the BigQuery backend labels every job with these (run_id, stage): the manifest lists them below
        # RUNBOOK_RUN_DIR: where the stage finds the run log and a stop request (nbcore.runlog)
        with kernel_env(RUNBOOK_RUN_ID=archive.run_id, RUNBOOK_STAGE=step.stage, **{RUN_DIR_ENV: str(archive.path)}):
            pm.execute_notebook(
                str(src), str(out), parameters=parameters, kernel_name=params.kernel_name, cwd=str(src.parent),
                progress_bar=False, log_output=False, request_save_on_cell_execute=True,
                kernel_manager_class=LocalKernelManager, **({"km": km} if km is not None else {}),
            )
    except PapermillExecutionError as e:
        status, error = "failed", f"{e.ename}: {e.evalue}"
        entry["failed_cell"] = e.exec_count
        # the error's class crosses the notebook boundary by name: its exit code is the run's
        entry.update(error_class=e.ename, exit_code=exit_code_for_name(e.ename))
    except Exception as e:  # the kernel died, could not start, or the notebook is unreadable
        status, error = "failed", f"{type(e).__name__}: {e}"
        entry.update(error_class=type(e).__name__, exit_code=exit_code_for(e))
    finally:
        if km is not None:  # papermill shuts down only the kernels it started
            warm.release(km)
    entry["seconds"] = round(time.perf_counter() - t0, 3)
    record = _stage_record(archive, step)
    if record is not None:
        if entry.get("error_class") and record.status != "blocked":  # the record names what stopped the stage
            record = record.model_copy(update={"error_class": entry["error_class"], "exit_code": entry["exit_code"]})
        entry["record"] = record.to_json()
        if record.status == "blocked":
            status = "blocked"
            error = record.reason or error or "the stage blocked the run"
        elif record.status == "failed" and status == "succeeded":
            status, error = "failed", record.reason or f"{record_path(archive, step).name} says failed"
    jobs = _bigquery_jobs(params, archive.run_id, step.stage, began)
    if jobs is not None:
        entry["bigquery"] = jobs
    total, cells = _cell_seconds(out)
    if total is not None and cells is not None:
        entry["kernel_overhead_s"] = round(max(0.0, float(total) - cells), 3)
    if out.exists():
        try:
            export_html(out, out.with_suffix(".html"), no_input=step.no_input)
            if step.name == "report":
                export_html(out, archive.file(REPORT_HTML), no_input=True, title=f"Backfill report {archive.run_id}")
        except ArchiveWriteError:
            raise  # a full disk stops the run (the driver records it, naming the file), never a silent hole
        except Exception as e:  # an HTML problem must not change the run's outcome
            log.warning("HTML export of %s failed: %s", out.name, e)
            entry["html_error"] = f"{type(e).__name__}: {e}"
    entry.update(status=status, error=error, ended_at=utcnow())


def _rows_written(entries: list[dict]) -> dict[str, int]:
    """Sum of ``rows_written`` ({table: rows}) over the stage records."""
    out: dict[str, int] = {}
    for e in entries:
        rows = (e.get("record") or {}).get("rows_written")
        if isinstance(rows, dict):
            for table, n in rows.items():
                if isinstance(n, (int, float)):
                    out[table] = out.get(table, 0) + int(n)
    return out


def _bytes_billed(entries: list[dict]) -> Optional[int]:
    """Total bytes billed over the steps (on BigQuery: the jobs the driver listed after each step);
    also copies each step's job ids to its entry."""
    total, seen = 0, False
    for e in entries:
        jobs = e.get("bigquery")
        if not isinstance(jobs, dict) or "jobs" not in jobs:
            continue
        e["job_ids"] = list(jobs.get("job_ids") or [])
        e["bytes_billed"] = jobs.get("bytes_billed")
        if isinstance(jobs.get("bytes_billed"), (int, float)):
            total, seen = total + int(jobs["bytes_billed"]), True
    return total if seen else None


def _unique_run_id(params: RunParams, run_id: Optional[str]) -> str:
    return run_id or unique_run_id(params.archive_dir, params.run_name)


def _save_plan(archive: RunArchive, params: RunParams) -> dict:
    """``plan.json``: what this run does, per stage and table (missing and stale dates with their
    causes) and, per chunked stage, the exact chunks it executes (``nbcore.program``). A plan that
    cannot be made is recorded with its error; the chunked stages then make one-stage plans of
    their own, and the manifest says so."""
    import uuid

    from .plan import plan_run

    previous = archive.file("plan.json")
    if previous.exists():  # a re-plan keeps the plan it replaces, and its outcomes keep their plan_id
        n = 1 + sum(1 for _ in archive.path.glob("plan.*.json"))
        previous.rename(archive.file(f"plan.{n}.json"))
    meta = {"plan_id": uuid.uuid4().hex[:12], "made_at": utcnow()}
    try:
        plan = plan_run(params)
    except Exception as e:  # noqa: BLE001 - recorded; the stages fall back to one-stage plans
        archive.write_json("plan.json", {**meta, "error": f"{type(e).__name__}: {e}"})
        return {"error": f"{type(e).__name__}: {e}"}
    data = {**meta, **plan.to_json()}
    archive.write_json("plan.json", data)
    summary: dict[str, dict] = {}
    for row in data["tables"]:
        s = summary.setdefault(row["stage"], {"tables": 0, "table_dates": 0, "missing": 0, "stale": 0})
        s["tables"] += 1
        s["table_dates"] += int(row["dates"])
        s["missing"] += int(row.get("missing") or 0)
        s["stale"] += int(row.get("stale") or 0)
    for stage, prog in (data.get("program") or {}).items():
        summary.setdefault(stage, {})["chunks"] = len(prog.get("chunks") or [])
    return summary


def _changed_since_plan(archive: RunArchive, params: RunParams) -> Optional[str]:
    """Why the run's plan no longer describes the warehouse, or None: history rows other runs (or
    stages run by hand) recorded after the plan was made. A resume re-plans only then."""
    try:
        made_at = json.loads(archive.file("plan.json").read_text()).get("made_at")
    except (OSError, ValueError, AttributeError):
        return "the run has no plan.json"
    if not made_at:
        return "plan.json has no made_at"
    from .warehouse import open_for_reading

    try:
        with open_for_reading(params) as wh:
            if not wh.table_exists("nba_reference.processor_run_history"):
                return None
            since = datetime.fromisoformat(made_at).astimezone(timezone.utc).replace(tzinfo=None)
            r = wh.query_file("history/other_writes", {"run_id": archive.run_id, "since": since}).iloc[0]
    except Exception as e:  # noqa: BLE001 - cannot tell: keep the plan, the stages' checks still guard
        log.warning("could not compare the warehouse with the plan: %s", e)
        return None
    if int(r.history_rows):
        return f"{int(r.history_rows)} run-history row(s) by {int(r.runs)} other run(s) since the plan was made"
    return None


def _stdout_is_tty() -> bool:
    import sys

    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


class _Stopper:
    """SIGINT, SIGTERM and SIGHUP to the driver while it runs: the first writes ``STOP`` into the
    archive (the stage in the kernel stops at its next chunk or load batch boundary, settles what
    committed and ends ``interrupted``; between steps the loop stops before the next one); a second
    stops at once (the kernel is killed: its open transaction never commits). No KeyboardInterrupt
    is raised in the driver, so the kernel shuts down quietly and the manifest is always final."""

    SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")

    def __init__(self, run_dir: Path, say: Callable[[str], None]):
        self.run_dir, self.say = run_dir, say
        self.signal: Optional[str] = None
        self.now = False
        self._old: dict = {}

    def __enter__(self) -> "_Stopper":
        if threading.current_thread() is threading.main_thread():  # signal handlers live in the main thread
            for name in self.SIGNALS:
                sig = getattr(signal, name, None)
                if sig is not None:
                    self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        if self.now:
            logging.getLogger("papermill").setLevel(logging.NOTSET)

    def _tell(self, message: str) -> None:
        try:
            self.say(message)
        except Exception:  # noqa: BLE001 - a closed terminal (SIGHUP) or a print the signal interrupted
            pass

    def _handle(self, signum, _frame) -> None:
        name = signal_name(signum)
        if self.signal is None:
            self.signal = name
            request_stop(self.run_dir, signum)
            log_line(self.run_dir, "driver", f"{name} received: stopping at the next chunk boundary")
            again = "Ctrl-C again" if name == "SIGINT" else "a second signal"
            self._tell(f"{name}: stopping at the next chunk boundary ({again} stops at once) ...")
        elif not self.now:
            self.now = True
            log_line(self.run_dir, "driver", f"{name} received again: stopping at once")
            self._tell(f"{name} again: stopping at once")
            # the kernel is killed on purpose: papermill's client must not report it as a crash ("Kernel died ...")
            logging.getLogger("papermill").setLevel(logging.CRITICAL)
            kill_kernels()


def _interrupted_entry(entry: dict, stopper: _Stopper) -> bool:
    """Did this step end because of the stop request (rather than succeed, block or fail on its own)?"""
    if stopper.signal is None or entry["status"] in ("succeeded", "skipped", "blocked"):
        return False
    return stopper.now or entry.get("error_class") == "RunInterrupted" or \
        (entry.get("record") or {}).get("status") == "interrupted"


def _stopped_chunk(entry: dict) -> Optional[str]:
    """The first chunk of the step that did not run ("2023-04-20..2023-04-24"), from its record."""
    for c in (entry.get("record") or {}).get("chunks") or []:
        if c.get("status") in ("not_run", "failed"):
            return f"{c.get('first')}..{c.get('last')}"
    return None


def run_runbook(
    params: RunParams,
    run_id: Optional[str] = None,
    from_stage: Optional[str] = None,
    *,
    notebooks_dir: Optional[Path] = None,
    echo: Optional[Callable[[str], None]] = print,
    lock: Optional[WarehouseLock] = None,
) -> RunOutcome:
    """Run (or, when ``run_id`` names an existing archive, resume) the runbook.

    ``from_stage`` starts at that step (``validate`` = validate_before; ``validate_after``,
    ``report``, ... by name). On a resumed run without ``from_stage``, the first step that
    did not succeed is where it starts; finished steps are not redone.

    An archive without a manifest (made by a stage run on its own, such as ``runbook gate``,
    whose advice is ``runbook resume <its run id>``) is taken over: the run starts at the first
    step that left a record there, and the steps before it are recorded as not run.
    Raises ``RunLockedError`` when another run holds the warehouse, ``UsageError`` for a bad
    ``from_stage`` or a folder that is not a run archive.

    SIGINT, SIGTERM and SIGHUP stop the run at a chunk boundary (``_Stopper``): the run ends
    ``interrupted`` with the step and chunk it stopped at and its resume command, exit 128 + the
    signal's number. Every step, its outcome and each signal go to ``run.log``.
    """
    def say(message: str) -> None:
        if echo is not None:
            try:
                echo(message)
            except OSError:  # the terminal went away (SIGHUP): the manifest and run.log still say it
                pass

    try:  # a lock handed over by resume_run is released when the run cannot start
        nb_dir = Path(notebooks_dir or NOTEBOOKS_DIR)
        run_id = _unique_run_id(params, run_id)
        run_dir = Path(params.archive_dir) / run_id
        # a stage run by hand (`runbook gate`: kind interactive) is taken over like an archive without a manifest
        resuming = (run_dir / "manifest.json").exists() and not _by_hand(run_dir)
        adopting = not resuming and (run_dir / "params.yaml").exists()
        if run_dir.exists() and not (resuming or adopting):
            raise UsageError(f"{show(run_dir)} exists but is not a run archive (no manifest.json, no params.yaml); "
                             f"choose another --run-id")
        steps = selected_steps(params)
        if not steps:
            raise UsageError(f"params.stages selects no stage; list at least one of {', '.join(STAGE_NAMES)}")
        if from_stage is not None:
            resolve_step(from_stage, steps)  # fail before taking the lock on a typo
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    if lock is None:
        lock = WarehouseLock(params, run_id)
        lock.acquire()
    finished = False
    stopper = _Stopper(run_dir, say)
    warm = _warm_kernels(params)
    try:
        stopper.__enter__()
        archive = RunArchive.open(run_dir) if resuming or adopting else RunArchive.create(params, run_id)
        clear_stop(run_dir)  # the stop request of an attempt this one resumes
        rlog = lambda msg: log_line(run_dir, "driver", msg)  # noqa: E731
        manifest = archive.manifest() if resuming else {}
        public = params.public_dict()
        by_name = {e["name"]: e for e in manifest.get("stages", [])}
        entries = [by_name.get(s.name) or _new_entry(s, nb_dir) for s in steps]

        if from_stage is not None:
            start = steps.index(resolve_step(from_stage, steps))
        elif resuming:
            start = next((i for i, e in enumerate(entries) if e["status"] not in ("succeeded", "skipped")), len(steps))
        elif adopting:
            start = next((i for i, s in enumerate(steps) if record_path(archive, s).exists()), 0)
        else:
            start = 0
        for i, e in enumerate(entries):
            if i >= start:
                e.update(status="pending")
            elif adopting:
                e.update(status="skipped", error=f"not run in this archive: it was made by `runbook {steps[start].stage}`")
            elif not resuming:
                e.update(status="skipped", error=f"not run: the run started at {steps[start].name}")

        now = utcnow()
        git, phash = git_state(), params_hash(public)
        if not resuming:  # a resumed run keeps the commit and hash it started with; each resume records its own
            manifest.update(**git, params_hash=phash)
        manifest.update(
            run_id=run_id, run_name=params.run_name, run_dir=str(run_dir), status="running", exit_code=None,
            started_at=manifest.get("started_at", now), ended_at=None, params=public, backend=params.backend,
            warehouse=warehouse_label(params), host=socket.gethostname(), pid=os.getpid(),
            stages=entries, stopped_at=None, reason=None, resume_command=None, notification=None, stop_exit_code=None,
            stopped_chunk=None, interrupted_by=None,
        )
        manifest.setdefault("resumes", [])
        if resuming or adopting:
            manifest["resumes"].append({"at": now, "from": steps[start].name if start < len(steps) else None,
                                        **git, "params_hash": phash, **({"took_over": True} if adopting else {})})
        if lock.released_stale is not None:
            manifest.setdefault("stale_locks_released", []).append(vars(lock.released_stale))
        archive.write_manifest(manifest)
        if start < len(steps):  # the first step's kernel starts while the plan is made
            _warm_up(warm, steps[start], archive, params, nb_dir)
        if not resuming and start < len(steps):
            manifest["plan"] = _save_plan(archive, params)
            archive.write_manifest(manifest)
        elif start < len(steps):  # a resume executes the saved plan, unless the warehouse changed under it
            changed = (_changed_since_plan(archive, params) if not manifest.get("param_changes_pending")
                       else "parameters changed with --set")
            manifest.pop("param_changes_pending", None)
            if changed:
                say(f"re-planning: {changed}")
                rlog(f"re-planning: {changed}")
                manifest["plan"] = _save_plan(archive, params)
                manifest.setdefault("replans", []).append({"at": utcnow(), "why": changed})
            archive.write_manifest(manifest)
        say(f"run {show(run_id)} → {show(run_dir)}"
            + (f" (resuming at {steps[start].name})" if (resuming or adopting) and start < len(steps) else ""))
        rlog((f"resume from {steps[start].name if start < len(steps) else 'the end'}" if resuming or adopting
              else "run started") + f" (pid {os.getpid()}, {len(steps) - start} step(s) to run)")

        status = "succeeded"
        try:
            with secret_env(params):
                for i in range(start, len(steps)):
                    step, entry = steps[i], entries[i]
                    if stopper.signal is not None:  # stopped between two steps: this one has not started
                        status = "interrupted"
                        manifest.update(stopped_at=step.name, interrupted_by=stopper.signal,
                                        reason=f"interrupted by {stopper.signal} before {step.name}",
                                        resume_command=resume_command(run_dir),
                                        stop_exit_code=exit_code_for_signal(stopper.signal))
                        break
                    entry["status"] = "running"
                    entry["started_at"] = utcnow()
                    archive.write_manifest(manifest)
                    rlog(f"step {step.name} started")
                    progress = Progress(run_dir, say, tty=_stdout_is_tty()).start() if echo is not None else None
                    try:
                        _execute(step, entry, archive, params, nb_dir, warm,
                                 steps[i + 1] if i + 1 < len(steps) else None)
                    finally:
                        if progress is not None:
                            progress.stop()
                    if _interrupted_entry(entry, stopper):
                        chunk = _stopped_chunk(entry)
                        reason = (entry.get("record") or {}).get("reason") if not stopper.now else None
                        entry.update(status="interrupted",
                                     error=reason or f"interrupted by {stopper.signal}"
                                     + (" (stopped at once: the chunk running was rolled back)" if stopper.now else ""),
                                     error_class="RunInterrupted", exit_code=exit_code_for_signal(stopper.signal))
                    rlog(f"step {step.name} {entry['status']}"
                         + (f" in {entry['seconds']:.1f} s" if entry["seconds"] is not None else "")
                         + (f": {entry['error']}" if entry["error"] and entry["status"] != "succeeded" else ""))
                    manifest["rows_written"] = _rows_written(entries)
                    bb = _bytes_billed(entries)
                    if bb is not None:
                        manifest["bytes_billed"] = bb
                    archive.write_manifest(manifest)
                    secs = f"{entry['seconds']:.1f} s" if entry["seconds"] is not None else ""
                    say(f"  [{i + 1}/{len(steps)}] {step.name:<15} {entry['status']:<9} {secs}"
                        + (f"  — {show(entry['error'])}" if entry["error"] and entry["status"] != "skipped" else "")
                        + ("  (notebook not written yet)" if entry["status"] == "skipped" else ""))
                    if entry["status"] == "interrupted":
                        status = "interrupted"
                        manifest.update(stopped_at=step.name, reason=entry["error"], stopped_chunk=_stopped_chunk(entry),
                                        interrupted_by=stopper.signal, resume_command=resume_command(run_dir),
                                        stop_exit_code=exit_code_for_signal(stopper.signal))
                        break
                    if entry["status"] in ("failed", "blocked"):
                        status = entry["status"]
                        manifest.update(stopped_at=step.name, reason=entry["error"],
                                        resume_command=resume_command(run_dir),
                                        stop_exit_code=entry.get("exit_code") if status == "failed" else None)
                        break
        except BaseException as e:  # Ctrl-C or a driver bug: the manifest still says what happened
            status = "failed"
            running = next((e2 for e2 in entries if e2["status"] == "running"), None)
            if running is not None:
                running.update(status="failed", error=f"interrupted: {type(e).__name__}", ended_at=utcnow())
            manifest.update(stopped_at=running["name"] if running else None, reason=f"{type(e).__name__}: {e}",
                            resume_command=resume_command(run_dir))
            _finish(archive, manifest, status, params)
            finished = True
            raise
        # the log's last line before the manifest's final status: `runbook logs --follow` ends on that status
        rlog(f"run {status} (exit {run_exit_code(status, manifest.get('stop_exit_code'))})"
             + (f", stopped at {manifest['stopped_at']}" if manifest.get("stopped_at") else "")
             + (f"; resume with: {manifest['resume_command']}" if manifest.get("resume_command") else ""))
        _finish(archive, manifest, status, params)
        finished = True
    finally:
        if warm is not None:
            warm.close()
        lock.release()
        stopper.__exit__(None, None, None)  # after the manifest is final: a late signal changes nothing
        if finished:  # after the lock is released and the manifest final: a slow webhook holds nobody up
            _notify(archive, manifest, params)

    report = archive.file(REPORT_HTML)
    outcome = RunOutcome(
        run_id=run_id, run_dir=run_dir, status=status, exit_code=int(manifest.get("exit_code", EXIT_CODES[status])),
        report_path=report if report.exists() else None, stopped_at=manifest.get("stopped_at"),
        reason=manifest.get("reason"), resume_command=manifest.get("resume_command"), manifest=manifest,
    )
    say(outcome.describe())
    return outcome


def _finish(archive: RunArchive, manifest: dict, status: str, params: RunParams) -> None:
    """Close the manifest (status, exit code, times, notification) and write ``summary.md``.

    A run that failed at validate_after did all its work and found rows that cannot be true:
    its report step still runs (the run stays *failed*), so ``report.html`` lists those
    findings as open instead of the archive having no report at all.
    """
    # the run exits with the code of the error that stopped it (2 usage, 4 lock, ...), else its status's
    manifest.update(status=status, exit_code=run_exit_code(status, manifest.get("stop_exit_code")), ended_at=utcnow())
    try:
        t0 = datetime.fromisoformat(manifest["started_at"])
        manifest["seconds"] = round((datetime.fromisoformat(manifest["ended_at"]) - t0).total_seconds(), 1)
    except (KeyError, ValueError):
        pass
    manifest["active_seconds"] = round(sum(e.get("seconds") or 0 for e in manifest["stages"]), 1)
    if status == "failed" and manifest.get("stopped_at") == "validate_after":
        _report_after_failed_checks(archive, manifest, params)
    disk = _disk_full_reason(manifest)
    if disk:  # the archive could not be written: say which file and what to do, keep only whole files
        if manifest.get("stopped_at") is None:  # stopped by the manifest write just after a step failed
            manifest["stopped_at"] = next((e["name"] for e in reversed(manifest["stages"]) if e.get("status") == "failed"), None)
        manifest["reason"] = disk
        _drop_truncated_notebooks(archive, manifest)
    if status in ("failed", "blocked") and webhook_url(params.notify_webhook):
        manifest["notification"] = {"pending": True}  # sent by _notify once the lock is released
    archive.write_manifest(manifest)  # releases the space reserve when the disk is full (nbcore.archive)
    try:
        from .report import write_summary

        write_summary(archive.path)
    except Exception as e:  # the summary is a convenience; the manifest is the record
        log.warning("summary.md not written: %s", e)


def run_exit_code(status: str, stopped_by: Optional[int] = None) -> int:
    """A run's exit code: the stopping error's own (``stop_exit_code``) for a failed run, else its status's."""
    if status in ("failed", "interrupted") and stopped_by:
        return int(stopped_by)
    return EXIT_CODES[status]


def _notify(archive: RunArchive, manifest: dict, params: RunParams) -> None:
    """Tell the webhook that the run blocked or failed, then record the attempt in the manifest.

    Called once the manifest is final and the warehouse lock released (``notify`` is bounded by its
    deadline, but even those seconds must not keep another run out). The attempt is written to the
    manifest only if the run was not resumed meanwhile (the manifest still ends as this run ended).
    Never raises: the run's outcome is what it is, whatever the webhook does."""
    if not (manifest.get("notification") or {}).get("pending"):
        return
    try:
        url = webhook_url(params.notify_webhook)
        note = notify(url, run_payload(manifest, manifest.get("resume_command") or "")) if url else None
        current = archive.manifest()
        if current.get("ended_at") == manifest.get("ended_at") and current.get("status") == manifest.get("status"):
            manifest["notification"] = current["notification"] = note
            archive.write_manifest(current)
    except Exception as e:  # noqa: BLE001 - bookkeeping of a notification must never change the outcome
        log.warning("run notification not recorded: %s: %s", type(e).__name__, e)


def _disk_full_reason(manifest: dict) -> Optional[str]:
    """The run's reason, reworded when it stopped because an archive file could not be written:
    the path and "free space, then resume" (papermill's or nbconvert's bare OSError says neither)."""
    reason = str(manifest.get("reason") or "")
    if "cannot write the run archive file" in reason:
        return reason  # ArchiveWriteError's own words already say it
    codes = ("No space left on device", "Disk quota exceeded", "Errno 28", "Errno 122")
    if not any(c in reason for c in codes):
        return None
    import re

    m = re.search(r"""['"](/[^'"]+)['"]""", reason)
    run_dir = Path(str(manifest.get("run_dir") or ""))
    if m and not Path(m.group(1)).is_relative_to(run_dir):  # e.g. DuckDB's journal: the warehouse's disk is full
        return (f"cannot write {m.group(1)}: No space left on device. Free space on the disk that holds it "
                f"({Path(m.group(1)).parent}; the run archive was not the problem), then `{resume_command(run_dir)}` "
                f"({reason})")
    stopped = next((e for e in manifest.get("stages", []) if e.get("name") == manifest.get("stopped_at")), {})
    where = m.group(1) if m else (str(Path(str(manifest.get("run_dir"))) / stopped["notebook"]) if stopped.get("notebook")
                                  else manifest.get("run_dir"))
    return (f"cannot write the run archive file {where}: No space left on device. Free space on the archive's disk, "
            f"then `{resume_command(run_dir)}` ({reason})")


def _drop_truncated_notebooks(archive: RunArchive, manifest: dict) -> None:
    """papermill writes its output notebook in place: a full disk can leave half of one. An executed
    notebook that is not whole JSON is removed (the resume runs that step again), never archived."""
    for e in manifest.get("stages", []):
        nb = archive.file(str(e.get("notebook") or ""))
        if not e.get("notebook") or not nb.is_file():
            continue
        try:
            json.loads(nb.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            nb.unlink()
            e["error"] = f"{e.get('error') or ''} ({nb.name} was cut short by the full disk and removed)".strip()


def _report_after_failed_checks(archive: RunArchive, manifest: dict, params: RunParams) -> None:
    """Run the report step of a run whose validate_after failed (the manifest already says failed)."""
    entries = {e.get("name"): e for e in manifest.get("stages", [])}
    entry, after = entries.get("report"), entries.get("validate_after") or {}
    step = next((s for s in STEPS if s.name == "report"), None)
    found = (after.get("record") or {}).get("open_errors")
    if entry is None or step is None or entry.get("status") not in ("pending", None) or not found:
        return  # only a run stopped by its findings (not a crash, not Ctrl-C) gets its report this way
    source = Path(str(after.get("source") or ""))
    nb_dir = (source if source.is_absolute() else PROJECT_ROOT / source).parent if after.get("source") else NOTEBOOKS_DIR
    archive.write_manifest(manifest)  # the report reads the manifest: failed, stopped at validate_after
    try:
        with secret_env(params):
            _execute(step, entry, archive, params, nb_dir)
    except Exception as e:  # noqa: BLE001 - the run already failed; its reason stays the findings
        entry.update(status="failed", error=f"{type(e).__name__}: {e}", ended_at=utcnow())


# -- resume, runs, open -----------------------------------------------------------------------
def find_run(run: str | Path, archive_dir: Optional[str | Path] = None) -> Path:
    """A run folder from a path, or a run id (or unique prefix) inside ``archive_dir``."""
    p = Path(run)
    if (p / "manifest.json").exists() or (p / "params.yaml").exists():
        return p.resolve()
    base = Path(archive_dir) if archive_dir else Path(load_params().archive_dir)
    is_run = lambda d: (d / "manifest.json").exists() or (d / "params.yaml").exists()  # noqa: E731
    if is_run(base / str(run)):
        return (base / str(run)).resolve()
    matches = sorted(d for d in base.glob(f"{run}*") if d.is_dir() and is_run(d)) if base.is_dir() else []
    if len(matches) == 1:
        return matches[0].resolve()
    if len(matches) > 1:
        raise UsageError(f"run id '{show(run)}' is ambiguous in {show(base)}: {', '.join(show(m.name) for m in matches)}")
    raise UsageError(f"no run '{show(run)}' in {show(base)}; `runbook runs` lists the archived runs")


def resume_run(
    run: str | Path,
    from_stage: Optional[str] = None,
    archive_dir: Optional[str | Path] = None,
    *,
    notebooks_dir: Optional[Path] = None,
    echo: Optional[Callable[[str], None]] = print,
    changes: Optional[dict[str, Any]] = None,
) -> RunOutcome:
    """Continue a stopped run in its own archive, with its own archived parameters.

    ``changes`` changes parameters for the rest of the run (``runbook resume RUN_ID --set
    waivers=params/waivers.yaml``): typically a waiver file written after the gate blocked, or a
    gate override with its reason. They are validated like any params file, the archive's
    ``params.yaml`` is rewritten (the previous one kept as ``params.resume-<n>.yaml``) so every
    later stage sees them, and the manifest's ``resumes`` entry records what changed.
    """
    run_dir = find_run(run, archive_dir)
    params = load_params(run_dir / "params.yaml", {"archive_dir": str(run_dir.parent), **(changes or {})})
    _check_before_resume(params)  # before --set rewrites params.yaml: a refused resume changes nothing
    if from_stage is not None:
        resolve_step(from_stage, selected_steps(params))  # a typo is refused before anything is written
    lock = None
    if changes:  # the lock first: while another run holds the warehouse (this run, still live), nothing is written
        lock = WarehouseLock(params, run_dir.name)
        lock.acquire()
    try:
        if changes:
            _apply_changes(run_dir, params, changes)
    except BaseException:
        lock.release()
        raise
    return run_runbook(params, run_id=run_dir.name, from_stage=from_stage, notebooks_dir=notebooks_dir, echo=echo,
                       lock=lock)


def _apply_changes(run_dir: Path, params: RunParams, changes: dict[str, Any]) -> None:
    """``resume --set``: rewrite the archive's params.yaml (the previous kept) and record the change."""
    if changes:
        old = run_dir / "params.yaml"
        n = len(list(run_dir.glob("params.resume-*.yaml"))) + 1
        write_atomic(run_dir / f"params.resume-{n}.yaml", old.read_bytes())  # a full disk leaves params.yaml as it was
        write_atomic(old, yaml.safe_dump(params.public_dict(), sort_keys=False))
        if (run_dir / "manifest.json").exists():
            archive = RunArchive.open(run_dir)
            m = archive.manifest()
            m.setdefault("param_changes", []).append(
                {"at": utcnow(), "changes": {k: str(v) for k, v in changes.items()}, "previous": f"params.resume-{n}.yaml"})
            m["param_changes_pending"] = True  # the resume re-plans with the new parameters
            archive.write_manifest(m)


def _check_before_resume(params: RunParams) -> None:
    """What ``runbook run`` checks before any work (``nbcore.preflight``), for a resume: a bad parameter or a
    missing warehouse is exit 2 with nothing written, and the run stays resumable. A resume never creates a
    warehouse, whatever ``create_warehouse`` the run started with: its warehouse holds the run's work so far,
    and a new empty one would be "backfilled" into tables that differ from an uninterrupted run."""
    from .preflight import preflight

    preflight(params, "resume", command="resume", notebooks=True)


_alive = run_alive  # (nbcore.archive: listing runs lives there)


def _by_hand(run_dir: Path) -> bool:
    """Whether the archive is a stage run by hand (manifest ``kind: interactive``): a run takes it over."""
    try:
        return json.loads((run_dir / "manifest.json").read_text()).get("kind") == "interactive"
    except (OSError, ValueError, AttributeError):
        return False


def report_path(run_dir: Path) -> Path:
    """The run's report (HTML), else its summary, else its manifest."""
    for name in (REPORT_HTML, SUMMARY_MD, "manifest.json"):
        if (run_dir / name).exists():
            return run_dir / name
    raise UsageError(f"{show(run_dir)} holds no report, summary or manifest: the run never started; "
                     f"`{resume_command(run_dir)}` runs it")


__all__ = [
    "STEPS", "Step", "RunOutcome", "RunLockedError", "run_runbook", "resume_run", "list_runs", "find_run",
    "report_path", "export_html", "EXIT_CODES",
]
