"""One error family for the whole runbook, and the exit code each kind of failure maps to.

Every failure the runbook can report derives from ``RunbookError``. The CLI and the driver map
an exception to an exit code with ``exit_code_for`` (one table, here), so a ``ValueError`` raised
by a bug deep in pandas is never mistaken for a usage error.

Exit codes (DESIGN.md): 0 succeeded, 1 a stage failed, 2 usage, 3 the gate blocked,
4 the warehouse is locked by another run; a run stopped by a signal exits 128 + the signal's
number, as a shell reports it: 130 SIGINT (Ctrl-C), 143 SIGTERM, 129 SIGHUP.
"""
from __future__ import annotations


class RunbookError(Exception):
    """Root of every error the runbook raises on purpose."""

    exit_code = 1


class UsageError(RunbookError, ValueError):
    """Bad parameters, paths or command-line input, found before any work starts."""

    exit_code = 2


class StageFailed(RunbookError):
    """A stage ran and failed (a chunk, a processor, a query); its record says where."""

    exit_code = 1

    def __init__(self, message: str, *, stage: str = "", record: dict | None = None):
        super().__init__(message)
        self.stage = stage
        self.record = record or {}


class GateBlockedError(RunbookError):
    """The gate refused to let the run go on; the message lists what is missing."""

    exit_code = 3


class WarehouseLockedError(RunbookError):
    """Another run (or an interactive writer) holds the warehouse's single-writer lock."""

    exit_code = 4


class RunInterrupted(RunbookError):
    """A signal asked the run to stop; the stage stopped at a chunk boundary (its record says
    ``interrupted`` and which chunks did not run). The run exits 128 + the signal's number."""

    exit_code = 130


EXIT_SUCCEEDED = 0
#: ``runbook status --check``: some expected date is missing, stale, failed or blocked (waived is fine)
EXIT_OPEN = 5
#: a run stopped by a signal: 128 + the signal's number (SIGHUP 1, SIGINT 2, SIGTERM 15)
EXIT_INTERRUPTED = RunInterrupted.exit_code
EXIT_SIGNALS = {"SIGHUP": 129, "SIGINT": 130, "SIGTERM": 143}


def exit_code_for_signal(name: str) -> int:
    """The exit code of a run stopped by the signal called ``name`` (130 when unknown)."""
    return EXIT_SIGNALS.get(name, EXIT_INTERRUPTED)


#: the modules that define RunbookError subclasses, imported before a class is looked up by name
_ERROR_MODULES = ("nbcore.gate", "nbcore.lock", "nbcore.validate", "nbcore.derive.run", "nbcore.predict.stage",
                  "nbcore.grade", "nbcore.load", "nbcore.warehouse.lease", "nbcore.bucket", "nbcore.sqlfiles")


def error_class(name: str) -> type[BaseException] | None:
    """The RunbookError subclass called ``name`` (what papermill reports of an exception raised
    inside a stage notebook: its class name), or None."""
    import importlib

    for module in _ERROR_MODULES:
        try:
            importlib.import_module(module)
        except ImportError:  # pragma: no cover - an optional backend's module
            continue
    todo, seen = [RunbookError], set()
    while todo:
        cls = todo.pop()
        if cls.__name__ == name:
            return cls
        for sub in cls.__subclasses__():
            if sub not in seen:
                seen.add(sub)
                todo.append(sub)
    return None


def exit_code_for_name(name: str) -> int:
    """The exit code of an error known only by its class name (raised in a notebook's kernel)."""
    cls = error_class(name)
    return int(cls.exit_code) if cls is not None else 1


def exit_code_for(exc: BaseException) -> int:
    """The process exit code for an exception: its class's ``exit_code``; 1 for anything else."""
    return int(getattr(exc, "exit_code", 1)) if isinstance(exc, RunbookError) else 1
