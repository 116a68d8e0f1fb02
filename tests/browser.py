"""Open an HTML file in headless Chromium as a reader would, at a given width.

Drives Debian's ``chromium`` (``apt-get install chromium``; ``make test`` installs it when
missing) over the DevTools protocol with ``websocket-client``: no browser download, no
Selenium. Used by ``tests/test_report_browser.py`` and, from the command line, to refresh the
report screenshots under ``docs/``::

    PYTHONPATH=$PWD .venv/bin/python tests/browser.py runs/RUN_ID/report.html docs/report.png --width 1400
    PYTHONPATH=$PWD .venv/bin/python tests/browser.py runs/RUN_ID/report.html docs/report-420.png --width 420
"""
from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def chromium_path() -> Optional[str]:
    return next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)


class Browser:
    """One headless Chromium with one page; ``open(path, width)`` then ``evaluate`` / ``screenshot``."""

    def __init__(self, binary: Optional[str] = None, timeout: float = 60.0):
        import websocket  # websocket-client

        binary = binary or chromium_path()
        if binary is None:
            raise RuntimeError("no chromium on PATH: install Debian's package (apt-get install -y chromium) "
                               "or run `make test`, which installs it")
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="report-browser-")
        self.proc = subprocess.Popen(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
             "--no-first-run", "--no-default-browser-check", "--remote-debugging-port=0",
             f"--user-data-dir={self.profile}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while not (port_file.exists() and port_file.read_text().strip()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"chromium ({binary}) did not start its DevTools endpoint")
            time.sleep(0.1)
        port = port_file.read_text().split()[0]
        targets = self._http_json(f"http://127.0.0.1:{port}/json/list")
        page = next(t for t in targets if t.get("type") == "page")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=timeout, suppress_origin=True)
        self._ids = itertools.count(1)
        self.send("Page.enable")
        self.send("Runtime.enable")

    @staticmethod
    def _http_json(url: str) -> Any:
        from urllib.request import urlopen

        with urlopen(url, timeout=10) as r:
            return json.loads(r.read())

    def send(self, method: str, **params) -> dict:
        """One DevTools command; its result (events that arrive meanwhile are dropped)."""
        msg_id = next(self._ids)
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def open(self, path: str | Path, width: int, height: int = 900) -> None:
        """Load ``path`` in a viewport ``width`` CSS pixels wide and wait for it to finish loading."""
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
        self.send("Page.navigate", url=Path(path).resolve().as_uri())
        deadline = time.monotonic() + self.timeout
        while self.evaluate("document.readyState") != "complete" or not self.evaluate(
                "Array.from(document.images).every(i => i.complete)"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{path} did not finish loading")
            time.sleep(0.1)

    def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression in the page."""
        res = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in res:
            raise RuntimeError(f"{expression[:80]}: {res['exceptionDetails']}")
        return res["result"].get("value")

    def screenshot(self, out: str | Path, full_page: bool = True) -> Path:
        """A PNG of the page (the whole page by default, not only the viewport)."""
        params: dict = {"format": "png"}
        if full_page:
            w = self.evaluate("document.documentElement.clientWidth")
            h = self.evaluate("document.documentElement.scrollHeight")
            params.update(captureBeyondViewport=True, clip={"x": 0, "y": 0, "width": w, "height": h, "scale": 1})
        data = self.send("Page.captureScreenshot", **params)["data"]
        out = Path(out)
        out.write_bytes(base64.b64decode(data))
        return out

    def close(self) -> None:
        try:
            if getattr(self, "ws", None) is not None:
                self.ws.close()
        finally:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def main(argv: list[str]) -> int:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("html")
    ap.add_argument("png")
    ap.add_argument("--width", type=int, default=1400)
    a = ap.parse_args(argv)
    with Browser() as b:
        b.open(a.html, a.width)
        print(b.screenshot(a.png))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
