"""How the runbook starts notebook kernels.

Kernels talk to the driver over local IPC sockets instead of TCP: nothing listens on a
port, and ipykernel does not print its "running over TCP without encryption" warning
for every stage of every run.
"""
from __future__ import annotations

from jupyter_client.manager import AsyncKernelManager


class LocalKernelManager(AsyncKernelManager):
    def __init__(self, **kwargs):
        kwargs.setdefault("transport", "ipc")
        super().__init__(**kwargs)
