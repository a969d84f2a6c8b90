"""A manual check of the explorer in a real browser (not collected by pytest: see README.md).

Starts a headless JupyterLab on a copy of notebooks/05_explore.ipynb pointed at a copy of a
run folder (the folder given is only read), runs every cell, then moves the batch picker and
the latency slider as a user would, and after each step saves a screenshot of the explorer and
of the page, and what the widget shows in words (``steps.json``: picker values, each slider's
span and readout, the status text; whether the notebook opened marked modified), for a
person to look at; JupyterLab's log is
``lab.log`` beside them:

    .venv/bin/python tests/browser_check.py outputs/<run> /tmp/shots

Needs Debian's chromium (``apt-get install chromium``), the ``playwright`` Python package
(never ``playwright install``: the system browser is used) and JupyterLab (``make lab``).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
TIMEOUT_MS = 240_000

# JupyterLab's notebook panel, reached through the app object the server exposes
_PANEL = "window.jupyterapp && window.jupyterapp.shell.currentWidget"
KERNEL_IDLE = f"""() => {{ const w = {_PANEL};
  const k = w && w.sessionContext && w.sessionContext.session &&
            w.sessionContext.session.kernel;
  return k && k.status === 'idle'; }}"""
ALL_RUN = f"""() => {{ const w = {_PANEL};
  return w && w.content.widgets.every(c => c.model.type !== 'code' ||
                                         c.model.executionCount !== null) &&
         w.sessionContext.session.kernel.status === 'idle'; }}"""
# what the explorer shows, read from the page: the explorer is the VBox holding the sliders
STATE = """() => {
  const box = [...document.querySelectorAll('.widget-vbox')]
      .find(b => b.querySelector('.widget-slider') && b.querySelector('select'));
  if (!box) return null;
  const pickers = {};
  box.querySelectorAll('.widget-dropdown').forEach(d => {
    pickers[d.querySelector('label').innerText] = d.querySelector('select').value; });
  const sliders = [...box.querySelectorAll('.widget-hslider')].map(s => {
    const h = s.querySelector('.noUi-handle');
    return {label: s.querySelector('label').innerText, disabled: h.hasAttribute('disabled'),
            min: h.getAttribute('aria-valuemin'), max: h.getAttribute('aria-valuemax'),
            now: h.getAttribute('aria-valuenow'),
            readout: s.parentElement.querySelector('.widget-html-content').innerText}; });
  const html = [...box.querySelectorAll('.widget-html-content')].map(e => e.innerText);
  return {pickers, sliders, status: html.find(t => t.includes('configuration')) ||
                                    html.find(t => t.includes('operating point')) || ''};
}"""


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
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return path


def _wait_for_server(url: str, server: subprocess.Popen, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and server.poll() is None:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"JupyterLab did not answer at {url} (exit status {server.poll()}; "
                       "its log says why)")


def _explorer(page: Any) -> Any:
    return page.locator(".widget-vbox", has=page.locator(".widget-slider")).filter(
        has=page.locator("select")).first


def _step(page: Any, out: Path, name: str, steps: list[dict]) -> None:
    """Wait for the kernel, then save both screenshots and what the widget says."""
    page.wait_for_function(KERNEL_IDLE, timeout=TIMEOUT_MS)
    time.sleep(1.5)  # the kernel's widget messages reach the page
    news = page.get_by_role("button", name="No", exact=True)
    if news.count():  # JupyterLab asks once whether to fetch its news: it covered the page
        news.first.click()
    box = _explorer(page)
    box.scroll_into_view_if_needed()
    box.screenshot(path=out / f"{name}-explorer.png")
    page.screenshot(path=out / f"{name}-page.png")
    steps.append({"step": name, **(page.evaluate(STATE) or {"error": "no explorer found"})})


def _latency_handle(page: Any) -> Any:
    slider = _explorer(page).locator(".widget-hslider").filter(has_text="latency").first
    return slider.locator(".noUi-handle").first


def main(run: str, shots: str) -> int:
    """Run the check; screenshots and ``steps.json`` land in ``shots``."""
    from playwright.sync_api import sync_playwright  # the check's own dependency only

    out = Path(shots)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="dyndnn-browser-"))
    run_copy = Path(shutil.copytree(run, work / "run"))  # the run folder itself is only read
    notebook = _notebook(work, run_copy)
    port = _free_port()
    log = (out / "lab.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}",
         "--ServerApp.token=", "--ServerApp.password=", f"--ServerApp.root_dir={work}",
         "--LabApp.expose_app_in_browser=True",
         *(["--allow-root"] if os.geteuid() == 0 else [])],  # containers often run as root
        stdout=subprocess.DEVNULL, stderr=log)
    steps: list[dict] = []
    errors: list[str] = []
    dirty_on_open = None
    try:
        _wait_for_server(f"http://127.0.0.1:{port}/lab", server)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
            page = browser.new_page(viewport={"width": 1280, "height": 1400})
            page.goto(f"http://127.0.0.1:{port}/lab/tree/{notebook.name}")
            page.wait_for_selector(".jp-Notebook", timeout=TIMEOUT_MS)
            page.wait_for_function(KERNEL_IDLE, timeout=TIMEOUT_MS)
            time.sleep(2)  # the kernel's info reaches the model
            # opened and untouched, the notebook must not be marked modified
            dirty_on_open = page.evaluate(f"{_PANEL}.context.model.dirty")
            # the notebook at the page's width, as on a laptop with the file browser closed
            page.evaluate("window.jupyterapp.commands.execute('application:toggle-left-area')")
            page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
            page.wait_for_function(ALL_RUN, timeout=TIMEOUT_MS, polling=1000)
            page.wait_for_selector(".widget-slider", timeout=TIMEOUT_MS)
            errors[:] = page.locator(".jp-OutputArea-output[data-mime-type="
                                  "'application/vnd.jupyter.stderr']").all_inner_texts()
            _step(page, out, "1-initial", steps)
            batch = _explorer(page).locator(".widget-dropdown", has_text="batch").locator(
                "select")
            offered = batch.locator("option").all_inner_texts()
            batch.select_option(label=offered[-1])  # the largest batch
            _step(page, out, "2-largest-batch", steps)
            handle = _latency_handle(page)
            handle.focus()
            for _ in range(6):  # five steps a press: about 15 % of the track
                page.keyboard.press("PageDown")
            _step(page, out, "3-latency-budget", steps)
            _latency_handle(page).focus()
            for _ in range(50):  # past the right end (noUiSlider's End key goes left)
                page.keyboard.press("PageUp")
            _step(page, out, "4-latency-at-end", steps)
            batch.select_option(label=offered[0])
            _step(page, out, "5-smallest-batch", steps)
            page.evaluate(f"""() => {{ const n = {_PANEL}.content;
                n.activeCellIndex = n.widgets.length - 1;
                return n.scrollToCell(n.activeCell); }}""")
            time.sleep(1)
            page.screenshot(path=out / "6-notebook-end-page.png")
            browser.close()
    finally:  # what was seen so far is kept, also when a step failed
        server.terminate()
        server.wait(timeout=30)
        log.close()
        (out / "steps.json").write_text(json.dumps({"dirty_on_open": dirty_on_open,
                                                    "stderr_outputs": errors, "steps": steps},
                                                   indent=1, ensure_ascii=False))
        shutil.rmtree(work, ignore_errors=True)  # the run's copy and the notebook's
    print(f"screenshots, steps.json and JupyterLab's log (lab.log) in {out}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
