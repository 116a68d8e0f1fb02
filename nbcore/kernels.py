"""How the runbook starts notebook kernels.

Kernels talk to the driver over local IPC sockets instead of TCP: nothing listens on a
port, and ipykernel does not print its "running over TCP without encryption" warning
for every stage of every run. They are shut down without the interrupt jupyter_client sends
first, which an idle kernel reports as an error on the terminal.

Each kernel gets its own socket path prefix. jupyter_client's default prefix is ``kernel-ipc``
in the working directory, so two runbooks (or a runbook and a notebook opened to look at it)
started from one folder could pick the same socket files and talk to each other's kernel
("Invalid Signature").
"""
from __future__ import annotations

import asyncio
import os
import threading
import tempfile
import uuid
import weakref
from typing import Any, Optional

from jupyter_client.manager import AsyncKernelManager


def private_ipc_prefix() -> str:
    """A socket path prefix no other kernel uses (files ``<prefix>-1`` … live in the temp folder)."""
    return os.path.join(tempfile.gettempdir(), f"runbook-kernel-{uuid.uuid4().hex[:16]}")


class LocalKernelManager(AsyncKernelManager):
    def __init__(self, **kwargs):
        kwargs.setdefault("transport", "ipc")
        if kwargs["transport"] == "ipc":
            kwargs.setdefault("ip", private_ipc_prefix())
        super().__init__(**kwargs)
        _LIVE.add(self)

    async def _async_interrupt_kernel(self) -> None:
        """No interrupt while shutting down: jupyter_client interrupts a kernel before asking it to
        shut down, and an idle ipykernel answers a SIGINT with "[IPKernelApp] ERROR |
        KeyboardInterrupt caught in kernel." on the run's terminal. The shutdown request that follows
        stops it cleanly (and a kernel that does not stop is killed), so nothing is lost."""
        if getattr(self, "shutting_down", False):
            return
        await super()._async_interrupt_kernel()


#: the kernels this process started (a second signal to the driver kills them at once)
_LIVE: "weakref.WeakSet[LocalKernelManager]" = weakref.WeakSet()


def kill_kernels() -> int:
    """SIGKILL every kernel process this driver started that still runs; how many. Its open
    transaction is never committed (DuckDB and BigQuery roll it back), so nothing is half-written."""
    n = 0
    for km in list(_LIVE):
        proc = getattr(getattr(km, "provisioner", None), "process", None)
        if proc is not None and proc.poll() is None:
            try:
                proc.kill()
                n += 1
            except OSError:
                pass
    return n



class WarmKernels:
    """The next step's kernel, started (and its imports done) while the current step runs.

    Why: every step of a run starts a fresh kernel (1-1.5 s) and imports nbcore, pandas and
    matplotlib in it (about as long again): a quarter of a small run's wall time, spent waiting.
    ``prepare`` starts the kernel of a step ahead of time, on a background event loop, with the
    environment and folder that step's kernel would get, and imports what its notebook will;
    ``take`` hands it to papermill (which then does not start one). A kernel that is never taken
    (the run stopped or failed first) is shut down by ``close``. A kernel still starting when its
    step comes is waited for: never later than a cold start by more than its own start-up.
    """

    WARM_CODE = "import nbcore.notebook, pandas, matplotlib.pyplot"

    def __init__(self, kernel_name: str, delay_s: float = 1.0):
        self.kernel_name = kernel_name
        self.delay_s = delay_s
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="runbook-warm-kernel", daemon=True)
        self._thread.start()
        self._next: Optional[tuple[str, Any]] = None
        self._stopping: list = []  # discarded kernels' start (then shutdown) futures

    def prepare(self, key: str, env: dict, cwd: str, imports: str = "") -> None:
        """Start the kernel for step ``key`` (after ``delay_s``, so the current step's own start goes first)."""
        self._discard()
        code = self.WARM_CODE + (f"; import {imports}" if imports else "")
        self._next = (key, asyncio.run_coroutine_threadsafe(self._start(dict(env), cwd, code), self._loop))

    async def _start(self, env: dict, cwd: str, code: str) -> "LocalKernelManager":
        await asyncio.sleep(self.delay_s)
        km = LocalKernelManager(kernel_name=self.kernel_name)
        await km.start_kernel(env=env, cwd=cwd)
        kc = km.client()
        kc.start_channels()
        try:
            await kc.wait_for_ready(timeout=60)
            # silent: no execution count, no output; the notebook's own cells run as they would cold
            await kc.execute_interactive(code, silent=True, store_history=False, timeout=120)
        finally:
            kc.stop_channels()
        return km

    def take(self, key: str) -> Optional["LocalKernelManager"]:
        """The warm kernel of step ``key``, or None (none prepared, or it failed to start: papermill
        then starts one as usual)."""
        if self._next is None or self._next[0] != key:
            self._discard()
            return None
        _, fut = self._next
        self._next = None
        try:
            return fut.result(timeout=120)
        except Exception:  # noqa: BLE001 - a cold start is the fallback, never a failed step
            return None

    def release(self, km: "LocalKernelManager") -> None:
        """Shut down a kernel papermill used (it shuts down only the kernels it started), without
        waiting: an ipykernel takes about a second to answer a shutdown request and exit, which the
        run used to spend idle after every step. The step's work is committed and its connection
        closed by then (a DuckDB connection closes when its stage returns; one still held only
        makes the next opener wait, as any other holder would), and ``close`` waits for every
        kernel to be gone before the run ends and its lock is released."""
        self._stopping.append(asyncio.run_coroutine_threadsafe(self._shutdown(km), self._loop))

    @staticmethod
    async def _shutdown(km: "LocalKernelManager") -> None:
        try:
            await asyncio.wait_for(km.shutdown_kernel(now=False), timeout=30)
        except Exception:  # noqa: BLE001 - then kill it: nothing of a finished step is lost
            proc = getattr(getattr(km, "provisioner", None), "process", None)
            if proc is not None and proc.poll() is None:
                proc.kill()

    def _discard(self) -> None:
        """Drop the prepared kernel (another step comes next): shut it down once it has started."""
        if self._next is None:
            return
        _, fut = self._next
        self._next = None

        def stop(f) -> None:  # runs on the loop's thread: schedule, never wait here
            if not f.cancelled() and f.exception() is None:
                self._stopping.append(asyncio.run_coroutine_threadsafe(f.result().shutdown_kernel(now=True), self._loop))

        fut.add_done_callback(stop)
        self._stopping.append(fut)

    def close(self) -> None:
        """Shut down a kernel never taken, wait for discarded ones to stop, then stop the loop."""
        if self._next is not None:
            _, fut = self._next
            self._next = None
            try:
                self.release(fut.result(timeout=60))
            except Exception:  # noqa: BLE001
                pass
        for fut in list(self._stopping):
            try:
                fut.result(timeout=60)
            except Exception:  # noqa: BLE001
                pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
