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

import os
import tempfile
import uuid
import weakref

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

