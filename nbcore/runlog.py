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


# -- live progress in the driver's terminal ------------------------------------------------------
class Progress:
    """While a step runs, the driver tails ``run.log`` and shows the stage's chunks as they go: on a
    terminal one line that updates in place (stage, chunk k/n, its dates, rows so far, elapsed); on
    anything else (a log file, a CI job) one line per chunk or load batch. The kernels report through
    the run log only, never through notebook outputs."""

    def __init__(self, run_dir: Path, say, tty: bool, poll_s: float = 0.25):
        import threading

        self.path, self.say, self.tty, self.poll_s = Path(run_dir) / LOG_FILE, say, tty, poll_s
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._pos = self.path.stat().st_size if self.path.exists() else 0
        self._buf = b""
        self._shown = False
        self._rows = 0
        self._t0 = time.monotonic()

    def start(self) -> "Progress":
        import threading

        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="runbook-progress", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Show what is left and clear the in-place line (the step's own line follows)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._read()
        if self.tty and self._shown:
            self._write("\r\x1b[K")

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            self._read()
            if self.tty and self._shown:
                self._write(f"\r\x1b[K{self._line}  {time.monotonic() - self._t0:.0f} s")

    def _write(self, text: str) -> None:
        import sys

        try:
            sys.stdout.write(text)
            sys.stdout.flush()
        except (OSError, ValueError):
            pass

    def _read(self) -> None:
        try:
            with open(self.path, "rb") as f:
                f.seek(self._pos)
                data = f.read()
        except OSError:
            return
        self._pos += len(data)
        self._buf += data
        *lines, self._buf = self._buf.split(b"\n")
        for raw in lines:
            self._event(raw.decode("utf-8", "replace"))

    _line = ""

    def _event(self, line: str) -> None:
        parts = line.split(None, 2)
        if len(parts) < 3 or parts[1] == "driver":
            return
        stage, text = parts[1], parts[2]
        is_chunk = text.startswith("chunk ") and (" succeeded: " in text or " failed: " in text)
        is_batch = text.startswith("batch ")
        if not (is_chunk or is_batch or " interrupted " in text):
            if self.tty and text.startswith("chunk ") and text.endswith(" started"):
                self._line, self._shown = f"  {stage:<15} {text[6:-8]} running", True  # "chunk 3/10 a..b"
            return
        if is_chunk or is_batch:
            try:
                self._rows += int(text.split(": ", 1)[1].split(" rows")[0].replace(",", ""))
            except (IndexError, ValueError):
                pass
        if self.tty:
            self._line, self._shown = f"  {stage:<15} {text}  ({self._rows:,} rows so far)", True
            self._write(f"\r\x1b[K{self._line}  {time.monotonic() - self._t0:.0f} s")
        else:
            try:
                self.say(f"  {stage:<15} {text}")
            except Exception:  # noqa: BLE001 - progress never fails a run
                pass
