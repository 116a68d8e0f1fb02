"""A run is an archive: ``runs/<run_id>/`` holds everything a reviewer needs.

Layout (names are contracts other tools read):
  params.yaml            the run's parameters, secrets removed
  manifest.json          run id, params, start/end, status, per-stage records
  NN_<stage>.ipynb/.html each executed notebook and its HTML
  validate_before.json   validate snapshots, shaped like ``runbook status --json``
  validate_after.json
  failures.csv           every load failure (date, source, file, stage, reason, attempt)
  stages/<stage>.json    what each stage reports about itself (merged into the manifest)
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from .params import RunParams

RUN_STATUSES = ("running", "succeeded", "failed", "blocked")


def _default(o: Any):
    if isinstance(o, (date, datetime)):
        return o.isoformat()
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "item"):
        return o.item()
    if isinstance(o, set):
        return sorted(o)
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON through a temp file and a rename: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=2, default=_default) + "\n"  # a serialization error leaves no file behind
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it owner-only; archives are shared reports
        os.replace(tmp, path)
    except BaseException:  # a full disk, an interrupt: the old file stays whole, no half-written temp file
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def new_run_id(run_name: str, stage: str | None = None, now: datetime | None = None) -> str:
    """``<timestamp>-<run_name>``, plus ``-<stage>`` for a stage run on its own (so two stages
    started within the same second never share an id in processor_run_history)."""
    now = now or datetime.now()
    return f"{now:%Y%m%d-%H%M%S}-{run_name}" + (f"-{stage}" if stage else "")


def unique_run_id(archive_dir: Path, run_name: str, stage: str | None = None) -> str:
    """A new run id whose folder does not exist yet in ``archive_dir`` (``-2``, ``-3`` ... if needed)."""
    base = new_run_id(run_name, stage)
    run_id, n = base, 1
    while (Path(archive_dir) / run_id).exists():
        n += 1
        run_id = f"{base}-{n}"
    return run_id


@dataclass
class RunArchive:
    """One run's folder."""

    path: Path

    @classmethod
    def create(cls, params: RunParams, run_id: str | None = None) -> "RunArchive":
        run_id = run_id or new_run_id(params.run_name)
        path = Path(params.archive_dir) / run_id
        if path.exists():
            raise FileExistsError(f"run archive {path} already exists; choose another run_name or wait a second")
        path.mkdir(parents=True)
        archive = cls(path)
        (path / "params.yaml").write_text(yaml.safe_dump(params.public_dict(), sort_keys=False))
        return archive

    @classmethod
    def open(cls, path: str | Path) -> "RunArchive":
        path = Path(path)
        if not path.is_dir():
            raise FileNotFoundError(f"no run archive at {path}")
        return cls(path)

    @property
    def run_id(self) -> str:
        return self.path.name

    def file(self, name: str) -> Path:
        return self.path / name

    def write_json(self, name: str, data: Any) -> Path:
        p = self.file(name)
        write_json_atomic(p, data)
        return p

    def read_json(self, name: str, default: Any = None) -> Any:
        p = self.file(name)
        return json.loads(p.read_text()) if p.exists() else default

    # -- stage records ---------------------------------------------------------
    def record_stage(self, stage: str, record: dict) -> Path:
        """What a stage says about itself: status, rows written per table, retries, errors."""
        return self.write_json(f"stages/{stage}.json", record)

    def stage_record(self, stage: str) -> dict | None:
        return self.read_json(f"stages/{stage}.json")

    # -- manifest ----------------------------------------------------------------
    def manifest(self) -> dict:
        return self.read_json("manifest.json", {})

    def write_manifest(self, manifest: dict) -> None:
        self.write_json("manifest.json", manifest)


def utcnow() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
