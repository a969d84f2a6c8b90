"""A manual check of the explorer in a real browser (not collected by pytest: see README.md).

Starts a headless JupyterLab on a copy of notebooks/05_explore.ipynb pointed at a copy of a
run folder, runs every cell, moves the batch picker and the latency slider, and saves a
screenshot after each step, for a person to look at:

    .venv/bin/python tests/browser_check.py outputs/<run> /tmp/shots

Needs Debian's chromium (``apt-get install chromium``), the ``playwright`` Python package
(never ``playwright install``: the system browser is used) and JupyterLab (``make lab``).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _notebook(work: Path, run_dir: Path) -> Path:
    """05_explore with run_dir set to the copied run and the live demo off."""
    nb = json.loads((REPO / "notebooks" / "05_explore.ipynb").read_text())
    cell = next(c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", []))
    lines = [line for line in "".join(cell["source"]).splitlines()
             if not line.startswith(("run_dir", "live_demo_s"))]
    cell["source"] = "\n".join([f"run_dir = {str(run_dir)!r}", "live_demo_s = 0.0", *lines])
    path = work / "05_explore.ipynb"
    path.write_text(json.dumps(nb))
    return path


def _wait_for_server(url: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"JupyterLab did not answer at {url}")


def main(run: str, shots: str) -> int:
    """Run the check; screenshots land in ``shots``."""
    out = Path(shots)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="dyndnn-browser-"))
    run_copy = shutil.copytree(run, work / "run")
    notebook = _notebook(work, run_copy)
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}",
         "--ServerApp.token=", "--ServerApp.password=", f"--ServerApp.root_dir={work}",
         "--LabApp.expose_app_in_browser=True", "--allow-root"],
        stdout=subprocess.DEVNULL, stderr=open(work / "lab.log", "w"))
    try:
        _wait_for_server(f"http://127.0.0.1:{port}/lab")
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"http://127.0.0.1:{port}/lab/tree/{notebook.name}")
            page.wait_for_selector(".jp-Notebook", timeout=60_000)
            page.wait_for_function("window.jupyterapp !== undefined", timeout=60_000)
            time.sleep(3)  # the kernel starts
            page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
            page.wait_for_selector(".widget-slider", timeout=240_000)
            time.sleep(5)
            widget = page.locator(".jupyter-widgets").first
            widget.scroll_into_view_if_needed()
            page.screenshot(path=out / "1-explorer.png")
            batches = page.locator(".widget-dropdown select")
            for i in range(batches.count()):
                options = batches.nth(i).locator("option").all_inner_texts()
                if options and all(o.strip().isdigit() for o in options) and len(options) > 1:
                    batches.nth(i).select_option(label=options[-1])
                    break
            time.sleep(3)
            page.screenshot(path=out / "2-batch-changed.png")
            handle = page.locator(".widget-slider .noUi-handle, .widget-slider .ui-slider-handle")
            handle.first.focus()
            for _ in range(15):
                page.keyboard.press("ArrowLeft")
            time.sleep(3)
            page.screenshot(path=out / "3-latency-tightened.png")
            page.locator(".jp-Notebook").first.evaluate("n => n.scrollTop = n.scrollHeight")
            time.sleep(2)
            page.screenshot(path=out / "4-notebook-end.png")
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"screenshots in {out}; JupyterLab's log in {work / 'lab.log'}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
