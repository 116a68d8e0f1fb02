"""The derive stage: phase 3 (``nba_analytics``) then phase 4 (``nba_precompute``).

``run_derive(params)`` processes the run's dates in chunks, one transaction per chunk, with
defensive checks and stop-on-first-error; ``DependencyError`` is what a failed check raises.
"""
from .checks import DependencyError, Schedule
from .processors import PROCESSORS, Processor, processor, selected_processors
from .result import DeriveResult
from .run import DeriveFailed, make_chunks, run_derive, waived_skip_dates

__all__ = [
    "DependencyError", "DeriveFailed", "DeriveResult", "PROCESSORS", "Processor", "Schedule", "make_chunks",
    "processor", "run_derive", "selected_processors", "waived_skip_dates",
]
