"""One parameter schema for a run: YAML files in ``params/``, papermill, the CLI and tests.

Unknown keys and inconsistent values fail before any work starts, with a message that
names the field and says how to fix it.
"""
from __future__ import annotations

import ipaddress
import os
import re
from datetime import date
from pathlib import Path
from typing import Any, Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from . import schema
from .chunks import DEFAULT_CHUNK_DAYS
from .errors import UsageError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PARAMS = PROJECT_ROOT / "params" / "demo.yaml"

# Seasons are named by the year they start (2021 = 2021-22).
KNOWN_SEASONS = tuple(range(2021, 2026))
from .stages import STAGE_NAMES as STAGES  # the registry's stage list
SECRET_FIELDS = ("credentials_path",)


MAX_RUN_NAME = 64  # run ids are <timestamp>-<run_name>-<stage>[-N]: this keeps the longest one within MAX_RUN_ID
MAX_RUN_ID = 100
# A run id names a folder, is printed to terminals and pasted into shell commands: ASCII letters, digits, '.', '_'
# and '-' only (nothing a terminal or a shell reads as a control), starting with a letter or digit (never '.', a
# hidden or parent folder, nor '-', an option), 1-100 characters. run_name follows the same rule, up to 64.
RUN_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
RUN_ID_RULE = ("letters A-Z a-z, digits, '.', '_' and '-', starting with a letter or digit, "
               f"1-{MAX_RUN_ID} characters")


class ParamsError(UsageError):
    """Bad run parameters; the message names the file, the field and the fix (exit code 2)."""


_NUMBER_HINTS = {
    "chunk_days": "a number of days per chunk, e.g. 366 (one chunk per season, the default; 1 = date by date)",
    "refit_days": "a number of days, e.g. 14",
    "train_window_days": "a number of days, e.g. 365",
    "edge_threshold": "a number of points, e.g. 1.0",
    "seed": "an integer, e.g. 7",
    "transient_faults": "a count, e.g. 1 (0 = none)",
    "maximum_bytes_billed": "a number of bytes, e.g. 10000000000",
    "max_plan_bytes": "a number of bytes, e.g. 10000000000",
}


def _reject_bool(v: Any, info) -> Any:
    """YAML reads ``chunk_days: true`` as a boolean, which pydantic would quietly take as 1: refuse it."""
    if isinstance(v, bool):
        raise ValueError(f"{str(v).lower()} is a yes/no value; give {_NUMBER_HINTS[info.field_name]}")
    return v


class BigQueryParams(BaseModel):
    """Where the BigQuery backend points. ``credentials_path`` is a secret: never archived."""

    model_config = ConfigDict(extra="forbid")

    project: str = Field(description="GCP project that holds the datasets and runs the jobs")
    location: str = "US"
    dataset_suffix: str = Field("", description="appended to every dataset name, e.g. _dev")
    credentials_path: Optional[SecretStr] = Field(
        None, description="service-account JSON; empty = Application Default Credentials"
    )
    api_endpoint: Optional[str] = Field(None, description="override the API address (tests)")
    maximum_bytes_billed: Optional[int] = Field(None, gt=0)
    max_plan_bytes: Optional[int] = Field(None, gt=0)

    @field_validator("maximum_bytes_billed", "max_plan_bytes", mode="before")
    @classmethod
    def _not_a_flag(cls, v, info):
        return _reject_bool(v, info)

    @field_validator("dataset_suffix")
    @classmethod
    def _dataset_suffix(cls, v: str) -> str:
        """BigQuery dataset names are letters, digits and underscores, at most 1,024 characters: the
        suffix becomes part of every dataset name, so it follows the same rule (and can never carry a
        backtick or a ``;`` into a statement)."""
        return check_dataset_suffix(v)

    @field_validator("project")
    @classmethod
    def _project(cls, v: str) -> str:
        return check_project_id(v)


# BigQuery identifier rules (README, "Pointing at BigQuery"); nbcore.warehouse.bigquery.quote_id applies them too
DATASET_NAME = re.compile(r"^[A-Za-z0-9_]+$")
MAX_DATASET_NAME = 1024
LONGEST_DATASET = "nba_predictions"  # the longest of the pipeline's datasets, before its suffix
PROJECT_ID = re.compile(r"^(?:[a-z][a-z0-9.-]*[a-z0-9]:)?[a-z](?:[a-z0-9-]*[a-z0-9])?$")  # optional legacy domain prefix
MAX_PROJECT_ID = 30 + 64


def check_dataset_suffix(v: str) -> str:
    """A ``dataset_suffix`` every dataset name stays valid with, or ValueError saying the rule."""
    if v and not DATASET_NAME.match(v):
        bad = sorted({c for c in v if not (c.isascii() and (c.isalnum() or c == "_"))})
        raise ValueError(f"{v!r} has {' '.join(repr(c) for c in bad)}; BigQuery dataset names (and so the suffix "
                         f"appended to them) take only letters, digits and underscores, e.g. _backfill_sandbox")
    if len(LONGEST_DATASET) + len(v) > MAX_DATASET_NAME:
        raise ValueError(f"is {len(v)} characters; a dataset name is at most {MAX_DATASET_NAME}, so the suffix at most "
                         f"{MAX_DATASET_NAME - len(LONGEST_DATASET)}")
    return v


def check_project_id(v: str) -> str:
    """A GCP project id: lowercase letters, digits and hyphens, starting with a letter (optionally
    ``domain.com:`` first, for legacy projects), or ValueError saying the rule."""
    if not PROJECT_ID.match(v) or len(v) > MAX_PROJECT_ID:
        raise ValueError(f"{v!r} is not a GCP project id: lowercase letters, digits and hyphens, starting with a "
                         f"letter and not ending with a hyphen, e.g. my-project-123")
    return v


class DemoParams(BaseModel):
    """How the demo league is generated (``runbook demo``)."""

    model_config = ConfigDict(extra="forbid")

    seed: int = 7
    scale: Literal["full", "small"] = "full"
    transient_faults: int = Field(1, ge=0, description="bucket reads that fail once, to exercise retry")

    @field_validator("seed", "transient_faults", mode="before")
    @classmethod
    def _not_a_flag(cls, v, info):
        return _reject_bool(v, info)


class RunParams(BaseModel):
    """Everything a run needs. The same model is read from YAML, papermill and the CLI."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    run_name: str = Field("backfill", max_length=MAX_RUN_NAME)
    backend: Literal["duckdb", "bigquery"] = "duckdb"
    duckdb_path: Path = Path("warehouse/demo.duckdb")
    create_warehouse: bool = Field(
        False, description="a run may create duckdb_path when it does not exist (otherwise a mistyped path is an error)")
    bigquery: Optional[BigQueryParams] = None
    bucket: str = Field("bucket/demo", description="phase 1 files: a local folder or gs://bucket/prefix")
    seasons: Optional[list[int]] = Field(None, description="season start years; left out (null) = every known season")
    start_date: Optional[date] = None
    end_date: Optional[date] = None
    tables: Optional[list[str]] = Field(None, description="limit to these tables (bare names); empty = all")
    backfill_mode: bool = False
    strict_mode: bool = True
    chunk_days: int = Field(DEFAULT_CHUNK_DAYS, ge=1, le=3660, description=(
        "calendar days per chunk at most (one transaction each); a chunk never spans two seasons. "
        "The default, 366, is one chunk per season: each season's history is read once. 1 = date by date"))
    archive_dir: Path = Path("runs")
    stages: list[str] = Field(default_factory=lambda: list(STAGES), min_length=1)
    demo: DemoParams = Field(default_factory=DemoParams)
    # load / gate (phase 1 -> 2, issue 3)
    reload: bool = Field(False, description="load every expected date in range, not only the dates validate reports missing")
    retry_failed: Optional[str] = Field(
        None, description="run id whose failure log (runs/<run_id>/failures.csv) lists the only dates to load again")
    waivers: Optional[Path] = Field(
        None, description="YAML file under params/ declaring (source, dates) known to be unavailable, with reason and approver")
    required_sources: list[str] = Field(
        default_factory=lambda: ["bdl_player_boxscores", "nbac_gamebook_player_stats"],
        description="phase 2 sources the gate requires complete; others (prop lines) are reported, not blocking")
    gate_override: bool = Field(False, description="let the run continue past a failing gate (needs gate_override_reason)")
    gate_override_reason: Optional[str] = Field(
        None, description="why the gate is overridden, in words; recorded in the manifest and shown by the report")
    # runbook driver (issue 6)
    notify_webhook: Optional[str] = Field(
        None,
        description="URL that gets a JSON POST when a run blocks or fails (stage, reason, resume command); "
                    "a URL carrying a token is better passed as $RUNBOOK_NOTIFY_WEBHOOK, which is never archived",
    )
    kernel_name: str = Field("python3", description="Jupyter kernel papermill runs the stage notebooks in")
    # predict / grade (phase 5 and 5B)
    repredict: bool = Field(False, description="predict every player-game in range, not only those without predictions")
    freeze_predictions: bool = Field(False, description="keep issued predictions as they were: stale ones are listed, not restated")
    regrade: bool = Field(False, description="grade every prediction in range, not only ungraded or stale ones")
    edge_threshold: float = Field(1.0, ge=0, le=20, description="points: a call is PASS when |predicted - line| is below this")
    refit_days: int = Field(14, ge=1, le=3660, description="the walk-forward regression is refitted at most once per this many days")
    train_window_days: int = Field(365, ge=7, le=3660, description="days of games before the refit date the regression trains on")

    @field_validator("chunk_days", "refit_days", "train_window_days", "edge_threshold", mode="before")
    @classmethod
    def _not_a_flag(cls, v, info):
        return _reject_bool(v, info)

    @field_validator("run_name", mode="before")
    @classmethod
    def _run_name(cls, v):
        """run_name becomes part of every run id: the run-id rule, and short enough for the id to stay within it."""
        if isinstance(v, str) and len(v) > MAX_RUN_NAME:
            raise ValueError(f"run_name is {len(v)} characters; it names the archive folder, keep it to "
                             f"{MAX_RUN_NAME} or fewer (e.g. playoffs-2023)")
        if isinstance(v, str) and not RUN_ID_RE.fullmatch(v):
            raise ValueError(f"run_name {_shown(v)} must start with a letter or digit and use only ASCII letters, "
                             f"digits, '_', '.' and '-' (it names the archive folder), e.g. playoffs-2023")
        if isinstance(v, str) and ".." in v:  # reads as a parent folder wherever the name is joined into a path
            raise ValueError(f"run_name {_shown(v)} contains '..'; use single dots, e.g. playoffs-2023")
        return v

    @field_validator("seasons")
    @classmethod
    def _known_seasons(cls, v):
        if v is None:
            return v
        if not v:  # an empty list selects nothing; it never means "every season"
            raise ValueError("seasons: [] selects no season; leave seasons out (or null) for every known season, "
                             "or list start years, e.g. [2023, 2024]")
        bad = [s for s in v if s not in KNOWN_SEASONS]
        if bad:
            raise ValueError(
                f"unknown season(s) {bad}; seasons are start years, one of {list(KNOWN_SEASONS)} "
                f"(2021 means 2021-22)"
            )
        return sorted(set(v))

    @field_validator("tables")
    @classmethod
    def _known_tables(cls, v):
        if v is None:
            return v
        return _table_names(v)

    @field_validator("stages")
    @classmethod
    def _known_stages(cls, v):
        bad = [s for s in v if s not in STAGES]
        if bad:
            raise ValueError(f"unknown stage(s) {bad}; stages are {list(STAGES)}")
        return [s for s in STAGES if s in v]

    @field_validator("notify_webhook")
    @classmethod
    def _webhook_url(cls, v):
        problem = webhook_url_problem(v) if v else None
        if problem:
            raise ValueError(problem)
        return v or None

    @field_validator("retry_failed")
    @classmethod
    def _run_id(cls, v):
        if v is not None and not is_run_id(v):
            raise ValueError(f"{_shown(v)} is not a run id; give the folder name of a run under archive_dir, "
                             f"e.g. 20240101-120000-demo (a run id is {RUN_ID_RULE})")
        return v or None

    @field_validator("required_sources")
    @classmethod
    def _known_sources(cls, v):
        dated = ("bdl_player_boxscores", "nbac_gamebook_player_stats", "odds_api_player_points_props")
        bad = [s for s in v if s not in dated]
        if bad:
            raise ValueError(f"unknown source(s) {bad}; required_sources may list {list(dated)}")
        return [s for s in dated if s in v]

    @model_validator(mode="after")
    def _override_needs_reason(self):
        if self.gate_override and len((self.gate_override_reason or "").strip()) < 10:
            raise ValueError(
                "gate_override is true but gate_override_reason is missing or too short; write why the run may go on "
                "with incomplete raw data (at least a sentence), or set gate_override: false"
            )
        return self

    @model_validator(mode="after")
    def _consistent(self):
        if self.start_date and self.end_date and self.end_date < self.start_date:
            raise ValueError(
                f"end_date {self.end_date} is before start_date {self.start_date}; swap them or fix the typo"
            )
        if self.backend == "bigquery" and self.bigquery is None:
            raise ValueError("backend is bigquery but the 'bigquery:' section (project, ...) is missing")
        if self.backend == "duckdb" and self.bigquery is not None:
            raise ValueError("bigquery: a 'bigquery:' section is given but backend is duckdb, so it would be ignored; "
                             "set backend: bigquery to use it, or remove the section")
        return self

    # -- derived values --------------------------------------------------------
    @property
    def season_list(self) -> list[int]:
        return list(self.seasons) if self.seasons else list(KNOWN_SEASONS)

    def table_selected(self, name: str) -> bool:
        return not self.tables or name.split(".")[-1] in self.tables

    def date_bounds(self) -> tuple[date, date]:
        """The inclusive date window of the run (seasons further restrict it)."""
        return (self.start_date or date(1900, 1, 1), self.end_date or date(2999, 12, 31))

    def public_dict(self) -> dict[str, Any]:
        """JSON-able parameters with every secret removed (what gets archived)."""
        data = self.model_dump(mode="json")
        _strip_secrets(data)
        return data

    def check_bucket(self) -> None:
        """A local bucket folder must exist (gs:// is checked when first read)."""
        if "://" not in self.bucket and Path(self.bucket).exists() and not Path(self.bucket).is_dir():
            raise ParamsError(
                f"bucket: {self.bucket} is a file, not a folder; point 'bucket' at the folder that holds "
                f"nbac_schedule/, bdl_player_boxscores/, ... (or a gs:// URL)")
        if "://" not in self.bucket and not Path(self.bucket).is_dir():
            raise ParamsError(
                f"bucket: folder {self.bucket} does not exist; run `runbook demo` to build the demo "
                f"bucket, or point 'bucket' at the folder (or gs:// URL) holding the phase 1 files"
            )


def is_run_id(value: str) -> bool:
    """The run-id rule (``RUN_ID_RULE``): one plain folder name, safe to print and to paste into a shell."""
    return len(value) <= MAX_RUN_ID and RUN_ID_RE.fullmatch(value) is not None


def _shown(value: str) -> str:
    """A refused value as a message shows it: quoted, control characters escaped, cut to 120 characters."""
    from .shell import show

    text = value if len(value) <= 120 else value[:100] + f"… ({len(value)} characters)"
    return f"'{show(text)}'"


def _table_names(values: list[str]) -> list[str]:
    """The bare names of ``tables``: each a known table, bare or as ``<its dataset>.<name>``, once.

    Nothing is reduced quietly: a wrong dataset (``nba_raw.player_game_summary``), trailing junk
    or a name given twice is refused, because a run limited to a table the user did not mean
    blocks later on a table nobody selected."""
    known = {t.name: t.dataset for t in schema.all_tables()}
    names, problems = [], []
    for value in values:
        dataset, dot, name = str(value).rpartition(".")
        if name not in known:
            problems.append(f"{value!r} is not a table")
        elif dot and dataset != known[name]:
            problems.append(f"{value!r}: {name} is in {known[name]}, not {dataset or '(empty)'} "
                            f"(write {name} or {known[name]}.{name})")
        elif name in names:
            problems.append(f"{name} is listed twice")
        else:
            names.append(name)
    if problems:
        raise ValueError(f"{'; '.join(problems)}; give bare table names, each once; known: {sorted(known)}")
    return names


def check_run_id(run_id: Optional[str], field: str = "--run-id") -> Optional[str]:
    """A run id names one folder inside archive_dir and is printed and pasted into commands: the run-id rule."""
    if run_id is None:
        return None
    if not is_run_id(run_id):
        raise ParamsError(f"{field}: {_shown(run_id)} is not a run id; a run id is one folder name inside archive_dir: "
                          f"{RUN_ID_RULE}, e.g. 20240101-120000-demo; leave it out for a new one")
    return run_id


WEBHOOK_RULE = ("an http:// or https:// URL with a host name or address (an IPv6 address in brackets, "
                "http://[::1]:8080/hook) and, if any, a port from 1 to 65535")
_HOST_RE = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?\.?")


def _url_shown(url: str) -> str:
    """A refused URL as a message shows it: scheme and host[:port] only (its path, query and user:password
    may hold a token, and an error message lands in terminals and CI logs), control characters escaped."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return _shown(url.split("/", 1)[0] + ("/…" if "/" in url else ""))
    netloc = re.split(r"[/?#]", rest, maxsplit=1)[0]
    tail = "/…" if len(netloc) < len(rest) else ""
    return _shown(f"{scheme}://{netloc.rsplit('@', 1)[-1]}{tail}")


def webhook_url_problem(url: str) -> Optional[str]:
    """What is wrong with a webhook URL (None if nothing): checked with the other parameters, so a run never
    finds out at its end, when it notifies, that the URL cannot be sent to (``WEBHOOK_RULE``)."""
    from urllib.parse import urlsplit

    fix = f"give {WEBHOOK_RULE}, e.g. https://hooks.example.com/runbook, or leave it empty"
    if not isinstance(url, str):
        return f"{_shown(str(url))} is not a URL; {fix}"
    shown = _url_shown(url)
    if any(ch.isspace() or not ch.isprintable() for ch in url):
        return f"{shown} is not an http(s) URL (it holds spaces or control characters); {fix}"
    if not url.lower().startswith(("http://", "https://")):
        return f"{shown} is not an http(s) URL; {fix}"
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a port that is not a number or is out of range
    except ValueError as e:
        if "[" not in url and url.count(":") > 2:
            e = "an IPv6 address must be in brackets, e.g. http://[::1]:8080/hook"
        return f"{shown} is not a valid URL ({e}); {fix}"
    host = parts.hostname or ""
    if "[" in parts.netloc.rsplit("@", 1)[-1]:
        try:
            ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            return f"{shown}: {host!r} in brackets is not an IPv6 address; {fix}"
    elif ":" in host or not host:
        return f"{shown} has no host (an IPv6 address must be in brackets, e.g. http://[::1]:8080/hook); {fix}"
    elif not _HOST_RE.fullmatch(host):
        return f"{shown}: {_shown(host)} is not a host name (letters, digits, '-', '.'); {fix}"
    if port is not None and not 1 <= port <= 65535:
        return f"{shown}: port {port} is out of range (1-65535); {fix}"
    return None


def redact_url(url: str) -> str:
    """scheme://host[:port]/… of a URL that may carry a token (query, path or user:password)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    bare = not parts.query and not parts.username and not parts.password and parts.path in ("", "/")
    if bare:
        return url
    return f"{parts.scheme}://{parts.hostname}{':' + str(parts.port) if parts.port else ''}/…"


def _url_has_secret(url: str) -> bool:
    from urllib.parse import parse_qsl, urlsplit

    try:
        parts = urlsplit(url)
        return bool(parts.password) or any(is_secret_name(k) or k.lower() in ("key", "sig", "signature", "auth")
                                           for k, _ in parse_qsl(parts.query))
    except ValueError:
        return True


def is_redacted_url(url: Optional[str]) -> bool:
    return bool(url) and url.endswith("/…")


def _strip_secrets(data: Any) -> None:
    if isinstance(data, dict):
        for key in list(data):
            if is_secret_name(key):
                data.pop(key)
            elif key == "notify_webhook" and isinstance(data[key], str):
                data[key] = redact_url(data[key])  # webhook URLs carry their token in the query or path
            elif isinstance(data[key], str) and "://" in data[key] and _url_has_secret(data[key]):
                data[key] = redact_url(data[key])  # e.g. an api_endpoint with user:password or ?key=
            else:
                _strip_secrets(data[key])
    elif isinstance(data, list):
        for item in data:
            _strip_secrets(item)


def is_secret_name(key: str) -> bool:
    k = key.lower()
    return any(word in k for word in ("password", "secret", "token", "credential", "api_key", "apikey", "private_key"))


# what a field takes, appended to pydantic's own messages ("Input should be a valid integer") so each says the fix
FIELD_HINTS = {
    "run_name": f"give letters, digits, '_', '.' or '-', starting with a letter or digit, at most {MAX_RUN_NAME} "
                "characters, e.g. playoffs-2023",
    "backend": "give duckdb or bigquery",
    "duckdb_path": "give the path of a .duckdb file, e.g. warehouse/demo.duckdb",
    "create_warehouse": "give true or false",
    "bucket": "give a folder or a gs://bucket/prefix URL, e.g. bucket/demo",
    "seasons": "give a list of season start years, e.g. [2023, 2024]",
    "start_date": "give a date as YYYY-MM-DD, e.g. 2024-04-20",
    "end_date": "give a date as YYYY-MM-DD, e.g. 2024-06-17",
    "tables": "give a list of bare table names, e.g. [player_game_summary]",
    "stages": f"give a list of at least one of {', '.join(STAGES)}",
    "archive_dir": "give a folder, e.g. runs",
    "waivers": "give the path of a waiver YAML file, e.g. params/waivers.example.yaml",
    "required_sources": "give a list of source names, e.g. [bdl_player_boxscores]",
    "retry_failed": "give the id of an archived run, e.g. 20240101-120000-demo",
    "notify_webhook": f"give {WEBHOOK_RULE}, or leave it empty",
    "kernel_name": "give the name of a Jupyter kernel, e.g. python3",
    "project": "give the GCP project id, e.g. my-project",
    "scale": "give full or small",
    **{k: f"give {v}" for k, v in _NUMBER_HINTS.items()},
}
_BOOL_FIELDS = ("backfill_mode", "strict_mode", "reload", "gate_override", "repredict", "regrade", "create_warehouse")


def _hint(loc: tuple) -> str:
    name = next((str(x) for x in reversed(loc) if isinstance(x, str)), "")
    if name in _BOOL_FIELDS:
        return "give true or false"
    return FIELD_HINTS.get(name, "")


def _format_errors(err: ValidationError, source: str) -> str:
    lines = [f"invalid run parameters in {source}:"]
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"]) or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            allowed = RunParams.model_fields if len(e["loc"]) == 1 else ()
            msg = "unknown key; remove it or check the spelling" + (f" (allowed: {', '.join(allowed)})" if allowed else "")
        elif e["type"] != "value_error" and _hint(e["loc"]):
            msg = f"{msg}; {_hint(e['loc'])}"
        lines.append(f"  - {loc}: {msg}")
    return "\n".join(lines)


def _resolve_paths(params: RunParams, base: Path) -> RunParams:
    updates = {}
    for name in ("duckdb_path", "archive_dir", "waivers"):
        p = getattr(params, name)
        if p is not None and not p.is_absolute():
            updates[name] = (base / p).resolve()
    if "://" not in params.bucket and not Path(params.bucket).is_absolute():
        updates["bucket"] = str((base / params.bucket).resolve())
    return params.model_copy(update=updates)


def base_dir_for(path: Path) -> Path:
    """Relative paths in a params file resolve against the project that holds it."""
    for parent in [path.resolve().parent, *path.resolve().parents]:
        if (parent / "pyproject.toml").is_file():
            return parent
    return path.resolve().parent


def build_params(data: dict[str, Any], source: str = "parameters", base: Path | None = None) -> RunParams:
    """Validate a dict of parameters; relative paths resolve against ``base``."""
    try:
        params = RunParams.model_validate(data)
    except ValidationError as e:
        raise ParamsError(_format_errors(e, source)) from None
    return _resolve_paths(params, base or PROJECT_ROOT)


def default_params_file() -> Path:
    """``$RUNBOOK_PARAMS`` if set (tests point notebooks at a small demo), else ``params/demo.yaml``."""
    env = os.environ.get("RUNBOOK_PARAMS")
    return Path(env) if env else DEFAULT_PARAMS


def load_params(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> RunParams:
    """Read a params YAML (default ``params/demo.yaml``) and apply overrides."""
    path = Path(path) if path else default_params_file()
    if not path.is_absolute() and not path.is_file() and (PROJECT_ROOT / path).is_file():
        path = PROJECT_ROOT / path  # e.g. a notebook kernel running in notebooks/
    if not path.is_file():
        raise ParamsError(f"params file {path} not found; pass --params params/demo.yaml or another file in params/")
    data = read_yaml_file(path, "params file") or {}
    if not isinstance(data, dict):
        raise ParamsError(f"params file {path} must hold a mapping of keys to values")
    data.update(overrides or {})
    secret = os.environ.get("RUNBOOK_CREDENTIALS_PATH")
    if secret and isinstance(data.get("bigquery"), dict) and not data["bigquery"].get("credentials_path"):
        data["bigquery"]["credentials_path"] = secret
    return build_params(data, str(path), base_dir_for(path))


class _YamlLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` whose impossible dates (``2024-02-30``, unquoted) are YAML errors with
    their line and column, not a bare ``ValueError`` from ``datetime`` that escapes as a traceback."""

    def construct_yaml_timestamp(self, node):
        try:
            return super().construct_yaml_timestamp(node)
        except (ValueError, OverflowError) as e:
            raise yaml.constructor.ConstructorError(
                None, None, f"{node.value!r} is not a real date ({e}); give a date as YYYY-MM-DD, e.g. 2024-02-29",
                node.start_mark) from None


_YamlLoader.add_constructor("tag:yaml.org,2002:timestamp", _YamlLoader.construct_yaml_timestamp)

_BOMS = ((b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"), (b"\xff\xfe", "UTF-16"), (b"\xfe\xff", "UTF-16"))


def decode_text_file(path: Path, what: str) -> str:
    """The text of a YAML file the runbook reads, which must be UTF-8 (a UTF-8 byte-order mark is
    fine). Anything else is a ``ParamsError`` naming the file and how to re-save it, because a
    ``UnicodeDecodeError`` names neither the file nor the fix."""
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise ParamsError(f"{what} {path} cannot be read ({e.strerror}); check the path and its permissions") from None
    for bom, name in _BOMS:
        if raw.startswith(bom):
            raise ParamsError(f"{what} {path} is {name} text (it starts with a {name} byte-order mark); the runbook "
                              f"reads UTF-8: save it as UTF-8 (e.g. `iconv -f {name} -t UTF-8`)")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise ParamsError(f"{what} {path} is not UTF-8 text (byte 0x{raw[e.start]:02x} on line {line}; Latin-1 or "
                          f"Windows-1252?); the runbook reads UTF-8: save it as UTF-8 (e.g. `iconv -f LATIN1 -t UTF-8`)"
                          ) from None


def read_yaml_file(path: Path, what: str) -> Any:
    """A YAML file's content (``what`` names it in errors: "params file", "waivers: file", ...);
    encoding, syntax and impossible dates are ``ParamsError`` (exit 2) naming the file and the line."""
    import io

    stream = io.StringIO(decode_text_file(path, what))
    stream.name = str(path)  # YAML errors then say in "<path>", line N
    try:
        return yaml.load(stream, Loader=_YamlLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as e:
        raise ParamsError(f"{what} {path} is not valid YAML: {e}") from None


def parse_yaml_value(text: str, what: str) -> Any:
    """One value given on the command line (``--set KEY=VALUE``), read as YAML like the file's."""
    try:
        return yaml.load(text, Loader=_YamlLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as e:
        raise ParamsError(f"{what}: {text!r} is not a valid value: {e}") from None


def params_from_notebook(params_file: str | None, namespace: dict[str, Any]) -> RunParams:
    """What a notebook's parameters cell resolves to: the file, then any field papermill injected."""
    overrides = {k: namespace[k] for k in RunParams.model_fields if k in namespace}
    return load_params(params_file, overrides)
