"""A committed reference run must travel whole: no file a publication holds may match an ignore
rule, or a clean clone lacks it (the runtime stage's ``runtime_*`` figures once did)."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
REFERENCE_RUNS = sorted(p for p in (ROOT / "results").glob("*")
                        if p.is_dir() and not p.name.startswith("."))
GIT = shutil.which("git")


def ignored(paths: list[Path]) -> list[str]:
    """The paths git would leave out of a commit (``--no-index``: tracked or not)."""
    found = subprocess.run([GIT, "check-ignore", "--no-index", "--stdin"], cwd=ROOT,
                           input="\n".join(str(p.relative_to(ROOT)) for p in paths),
                           capture_output=True, text=True)
    assert found.returncode in (0, 1), found.stderr  # 1: none ignored
    return found.stdout.split()


@pytest.mark.skipif(GIT is None or not (ROOT / ".git").exists(), reason="not a git checkout")
@pytest.mark.parametrize("folder", REFERENCE_RUNS, ids=lambda p: p.name)
def test_no_file_of_a_reference_run_is_ignored(folder):
    files = [p for p in folder.rglob("*") if p.is_file() and p.name != ".lock"]
    assert files
    assert ignored(files) == []


@pytest.mark.skipif(GIT is None or not (ROOT / ".git").exists(), reason="not a git checkout")
def test_what_the_explorer_writes_into_a_reference_run_stays_out():
    """05_explore's own figures (and its lock) are the reader's, not the publication's."""
    run = ROOT / "results" / "any-run"
    written = [run / "figures" / "runtime_simulation.png", run / "figures" / "runtime_live.png",
               run / ".lock"]
    assert sorted(ignored(written)) == sorted(str(p.relative_to(ROOT)) for p in written)
    kept = [run / "figures" / "runtime_tradeoff.png", run / "figures" / "runtime_hog_eager.png"]
    assert ignored(kept) == []
