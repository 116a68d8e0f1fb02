"""A run you can read and stop: ``runs/<id>/run.log`` and the stop request ``runs/<id>/STOP``.

The run log is one timestamped line per event, appended by the driver (steps, status, resume,
re-plan, signals) and by the stages in its kernels (chunks and load batches)::

    2026-12-07T17:01:02.123Z driver  step derive started
    2026-12-07T17:01:04.456Z derive  chunk 3/9 2023-04-20..2023-04-24 succeeded: 1,234 rows in 1.9 s

Each line is written with one ``write`` on a file opened for appending, so lines from the driver
and a kernel never interleave. Writing the log never fails a run.

A signal to the driver (SIGINT, SIGTERM, SIGHUP) writes ``STOP`` into the archive: the stage
running in the kernel sees it between two chunks (``nbcore.stage_run.run_chunks``) or two load
batches, settles what committed and ends as ``interrupted``. The kernels find the archive through
``$RUNBOOK_RUN_DIR``, set by the driver for the kernels it starts.
"""
from __future__ import annotations

import os
import signal
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, Optional

LOG_FILE = "run.log"
STOP_FILE = "STOP"
RUN_DIR_ENV = "RUNBOOK_RUN_DIR"  # set by the driver for its kernels (nbcore.runbook)


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def kernel_run_dir() -> Optional[Path]:
    """The run archive of the driver that started this kernel, or None outside a driver's kernel."""
    d = os.environ.get(RUN_DIR_ENV)
    return Path(d) if d else None


def log_line(run_dir: Optional[str | Path], source: str, message: str) -> None:
    """Append one timestamped line to ``<run_dir>/run.log`` (nothing without a run folder)."""
    if run_dir is None:
        return
    text = " ".join(str(message).split())  # one event, one line
    line = f"{_now()} {source:<8} {text}\n".encode("utf-8", "replace")
    try:
        fd = os.open(Path(run_dir) / LOG_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
    except OSError:  # a log line is never worth failing a run for
        pass


def stage_log(source: str, message: str) -> None:
    """A line from a stage in a driver's kernel (nothing when the stage runs by hand)."""
    log_line(kernel_run_dir(), source, message)


# -- stop requests ---------------------------------------------------------------------------
def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def request_stop(run_dir: str | Path, signum: int) -> None:
    """Ask the stage running in the kernel to stop at its next chunk boundary."""
    p = Path(run_dir) / STOP_FILE
    try:
        p.write_text(f"{signal_name(signum)} {_now()}\n", encoding="utf-8")
    except OSError:
        pass


def clear_stop(run_dir: str | Path) -> None:
    """A resumed run starts without the stop request of the attempt it continues."""
    try:
        (Path(run_dir) / STOP_FILE).unlink()
    except OSError:
        pass


def stop_requested(run_dir: Optional[str | Path] = None) -> Optional[str]:
    """The signal that asked this run to stop (``"SIGINT"``), or None. ``run_dir`` defaults to the
    archive of the driver that started this kernel."""
    d = Path(run_dir) if run_dir is not None else kernel_run_dir()
    if d is None:
        return None
    try:
        text = (d / STOP_FILE).read_text(encoding="utf-8").split()
    except OSError:
        return None
    return text[0] if text else "a stop request"


# -- reading -------------------------------------------------------------------------------------
def follow(run_dir: str | Path, done, poll_s: float = 0.5) -> Iterator[str]:
    """The log's lines, then new ones as they are written, until ``done()`` is true and no line is left."""
    path = Path(run_dir) / LOG_FILE
    pos, buf = 0, b""
    while True:
        finished = done()  # read after checking: the lines written before the run ended are all shown
        if path.exists():
            with open(path, "rb") as f:
                f.seek(pos)
                chunk = f.read()
            pos += len(chunk)
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                yield line.decode("utf-8", "replace")
        if finished:
            if buf:
                yield buf.decode("utf-8", "replace")
            return
        time.sleep(poll_s)
