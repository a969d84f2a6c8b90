"""make lab: JupyterLab works on copies in lab/, so the tracked notebooks never change."""

import hashlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from dyndnn.__main__ import main
from dyndnn.lab import LabError, prepare_lab

ROOT = Path(__file__).resolve().parents[1]
TRACKED = ROOT / "notebooks"


def tracked_state():
    """Every tracked notebook's hash, and what git says of the folder."""
    hashes = {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
              for p in sorted(TRACKED.glob("*.ipynb"))}
    status = subprocess.run(["git", "status", "--porcelain", "--", "notebooks/"], cwd=ROOT,
                            capture_output=True, text=True)
    return hashes, status.stdout if status.returncode == 0 else None


def test_make_lab_copies_the_notebooks_and_leaves_the_tracked_ones_alone(tmp_path, capsys):
    before = tracked_state()
    lab = tmp_path / "lab"
    assert main(["lab", "--dir", str(lab), "--no-launch"]) == 0
    names = sorted(p.name for p in TRACKED.glob("*.ipynb"))
    assert sorted(p.name for p in lab.glob("*.ipynb")) == names
    assert all((lab / n).read_bytes() == (TRACKED / n).read_bytes() for n in names)
    assert f"copied 01_train.ipynb into {lab}" in capsys.readouterr().out
    assert tracked_state() == before  # not one byte, and git sees no new change
    assert main(["lab", "--dir", str(lab), "--no-launch"]) == 0
    assert "up to date" in capsys.readouterr().out


def test_the_lab_folder_is_git_ignored():
    ignored = subprocess.run(["git", "check-ignore", "-q", "lab/01_train.ipynb"], cwd=ROOT)
    assert ignored.returncode == 0


def test_an_edited_copy_is_kept_and_said_so_an_untouched_one_follows_the_source(tmp_path):
    source, lab = tmp_path / "shipped", tmp_path / "lab"
    source.mkdir()
    for name in ("01_train.ipynb", "02_evaluate.ipynb"):
        shutil.copy(TRACKED / name, source / name)
    prepare_lab(lab, source)
    mine = lab / "01_train.ipynb"
    mine.write_text(mine.read_text().replace("groups: int = 4", "groups: int = 2"))
    edited = mine.read_bytes()
    assert prepare_lab(lab, source).report().endswith("up to date")  # the source is unchanged
    assert mine.read_bytes() == edited
    for name in ("01_train.ipynb", "02_evaluate.ipynb"):  # a new version ships
        (source / name).write_text((source / name).read_text().replace("# 0", "# Step 0"))
    done = prepare_lab(lab, source)
    assert done.kept == [mine] and done.updated == [lab / "02_evaluate.ipynb"]
    assert mine.read_bytes() == edited  # never overwritten...
    assert f"kept your copy {mine}" in done.report()  # ...without saying so
    assert (lab / "02_evaluate.ipynb").read_bytes() == (source / "02_evaluate.ipynb").read_bytes()
    mine.unlink()  # what the message says to do to take the new one
    assert prepare_lab(lab, source).copied == [mine]
    assert mine.read_bytes() == (source / "01_train.ipynb").read_bytes()


def test_the_tracked_folder_or_a_file_is_refused_as_the_lab(tmp_path, capsys):
    with pytest.raises(LabError, match="is the folder of the tracked notebooks"):
        prepare_lab(TRACKED)
    (tmp_path / "lab").write_text("")
    assert main(["lab", "--dir", str(tmp_path / "lab"), "--no-launch"]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(url, token, method="GET", body=None):
    request = urllib.request.Request(url, method=method, data=None if body is None else
                                     json.dumps(body).encode(),
                                     headers={"Authorization": f"token {token}",
                                              "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"null")


@pytest.mark.skipif(importlib.util.find_spec("jupyterlab") is None,
                    reason="JupyterLab is not installed (make lab installs it)")
def test_a_notebook_saved_in_jupyterlab_changes_the_copy_only(tmp_path):
    before = tracked_state()
    lab, port, token = tmp_path / "lab", free_port(), "dyndnn-test"
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
           "JUPYTER_CONFIG_DIR": str(tmp_path / "config")}
    server = subprocess.Popen(
        [sys.executable, "-m", "dyndnn", "lab", "--dir", str(lab), "--", "--no-browser",
         f"--port={port}", f"--IdentityProvider.token={token}", "--ServerApp.port_retries=0",
         *(["--allow-root"] if os.geteuid() == 0 else [])],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True)
    base = f"http://127.0.0.1:{port}/api/contents"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                call(base, token)
                break
            except (urllib.error.URLError, ConnectionError):
                assert server.poll() is None and time.monotonic() < deadline, \
                    server.stderr.read().decode()[-2000:] if server.poll() is not None else ""
                time.sleep(0.5)
        model = call(f"{base}/02_evaluate.ipynb", token)
        nb = model["content"]
        nb["cells"][1]["source"] = nb["cells"][1]["source"].replace('"../outputs/interactive"',
                                                                    '"../outputs/mine"')
        nb["cells"][1]["outputs"] = [{"output_type": "stream", "name": "stdout",
                                      "text": "saved output\n"}]
        nb["cells"][1]["execution_count"] = 1
        call(f"{base}/02_evaluate.ipynb", token, "PUT",
             {"type": "notebook", "format": "json", "content": nb})
        saved = json.loads((lab / "02_evaluate.ipynb").read_text())
        assert saved["cells"][1]["outputs"][0]["text"] == ["saved output\n"]  # on disk: lines
        with pytest.raises(urllib.error.HTTPError) as refused:  # notebooks/ is out of reach
            call(f"{base}/..%2Fnotebooks%2F02_evaluate.ipynb", token, "PUT",
                 {"type": "notebook", "format": "json", "content": nb})
        assert b"outside root contents directory" in refused.value.read()
        assert tracked_state() == before
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
