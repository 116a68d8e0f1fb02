"""Open an HTML file in headless Chromium as a reader would, at a given width.

Drives Debian's ``chromium`` (``apt-get install chromium``; ``make test`` installs it when
missing) over the DevTools protocol with ``websocket-client``: no browser download, no
Selenium. Used by ``tests/test_report_browser.py`` and, from the command line, to refresh the
report screenshots under ``docs/`` (``make screenshots`` builds a clean demo and takes both, with
``docs/report.json``, what they show: ``python tests/browser.py screenshots [--scale small]``), or by hand::

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


# -- the README's screenshots (``make screenshots``) ------------------------------------------------
DOCS = Path(__file__).resolve().parent.parent / "docs"
SHOTS = {1400: "report.png", 420: "report-420.png"}
SIDECAR = "report.json"
# Everything the sidecar records from the page, read by the browser itself.
PAGE_FACTS = """(() => ({
  headline: ((document.querySelector('.rb-headline') || {}).innerText || '').trim(),
  figures: Array.from(document.querySelectorAll('.rb-figure span')).map(s => s.innerText.trim()),
  sections: Array.from(document.querySelectorAll('h2')).map(h => h.textContent.replace('\u00b6', '').trim()),
}))()"""


def screenshots(scale: str = "full", out: Path = DOCS, work: Optional[Path] = None) -> dict:
    """Build a clean demo (``scale``) in a folder of its own, run the whole runbook on it with
    ``runbook demo``, then take the report's screenshots at 1400 and 420 px into ``out`` and write
    ``report.json`` beside them: the headline, the key figures it is made of, the figure labels and
    the section headings the pictures show (``tests/test_report_docs.py`` checks those against the
    current renderer)."""
    import os

    import yaml

    from nbcore import report
    from nbcore.params import DEFAULT_PARAMS, PROJECT_ROOT

    work = Path(work or PROJECT_ROOT / "build" / "screenshots")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    data = yaml.safe_load(DEFAULT_PARAMS.read_text())
    waivers = data.get("waivers")
    data.update(duckdb_path=str(work / "warehouse.duckdb"), bucket=str(work / "bucket"), archive_dir=str(work / "runs"),
                waivers=str((PROJECT_ROOT / waivers).resolve()) if waivers else None)
    data["demo"] = {**(data.get("demo") or {}), "scale": scale}
    params_file = work / "params.yaml"
    params_file.write_text(yaml.safe_dump(data, sort_keys=False))
    runbook = Path(sys.executable).with_name("runbook")
    done = subprocess.run([str(runbook), "demo", "--params", str(params_file)], cwd=PROJECT_ROOT,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
    if done.returncode != 0:
        raise SystemExit(f"runbook demo exited {done.returncode}: no screenshots taken")
    run_dir = report.latest_run(work / "runs")
    if run_dir is None or not (run_dir / "report.html").exists():
        raise SystemExit(f"no report in {work / 'runs'}")
    run = report.load_run(run_dir)
    out.mkdir(parents=True, exist_ok=True)
    facts = {}
    with Browser() as b:
        for width, name in SHOTS.items():
            b.open(run_dir / "report.html", width)
            facts[width] = b.evaluate(PAGE_FACTS)
            print(b.screenshot(out / name))
    page = facts[1400]
    k = report.key_figures(run)
    sidecar = {
        "made_by": "make screenshots (tests/browser.py screenshots)",
        "demo": {"scale": scale, "seed": (data.get("demo") or {}).get("seed"), "seasons": data.get("seasons")},
        "images": {name: width for width, name in SHOTS.items()},
        "headline": page["headline"], "figure_labels": page["figures"], "sections": page["sections"],
        "key_figures": k,
        "findings_open": report.findings_open(run).to_dict("records") if run.after else [],
    }
    (out / SIDECAR).write_text(json.dumps(sidecar, indent=1, ensure_ascii=False, default=str) + "\n")
    print(out / SIDECAR)
    return sidecar


def main(argv: list[str]) -> int:
    import argparse

    if argv[:1] == ["screenshots"]:
        ap = argparse.ArgumentParser(prog="browser.py screenshots", description=screenshots.__doc__.split("\n\n")[0])
        ap.add_argument("--scale", choices=["full", "small"], default="full")
        ap.add_argument("--out", type=Path, default=DOCS)
        a = ap.parse_args(argv[1:])
        screenshots(a.scale, a.out)
        return 0
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
