# Every target installs what it needs first; `make setup` returns at once when nothing changed.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
LAB_STAMP := $(VENV)/.installed-lab
CONFIG ?= configs/quick.yaml

PAPER_RUN ?= outputs/cpu-paper
PAPER_RESULTS ?= results/cpu-paper

.PHONY: setup run test bench lab lint paper clean-venv

setup: $(STAMP)

# Keyed on the dependency files: editing either re-runs the install, nothing else does.
$(STAMP): pyproject.toml requirements-torch.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-torch.txt
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -c "import torch, torchvision; torchvision.ops.nms(torch.zeros(1, 4), torch.zeros(1), 0.5); print('torch', torch.__version__, 'torchvision', torchvision.__version__, 'OK')"
	touch $(STAMP)

run: setup
	$(PY) -m dyndnn run --config $(CONFIG)

# Two workers, one torch thread each (a test's kernels and subprocesses inherit it): on two
# cores the suite's imports, kernel starts and process launches then overlap with compute
# (measured: 626 s serial, 360-381 s this way; tests/README.md). A file's tests share a worker,
# so a module's expensive fixture is built once; the slowest files go first (tests/conftest.py's
# SLOWEST_FIRST, xdist's own reordering off) so both workers end together.
# TEST_WORKERS=0: one process (still one thread).
TEST_WORKERS ?= 2
test: setup
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

bench: setup
	$(PY) -m dyndnn.bench

# The paper's comparison at its scale (hours on 2 cores). Stopped (Ctrl-C, SIGTERM), it resumes
# from the last finished epoch when run again; each later stage runs again on the folder.
paper: setup
	$(PY) -m dyndnn train --config paper --out $(PAPER_RUN)
	$(PY) -m dyndnn evaluate --out $(PAPER_RUN)
	$(PY) -m dyndnn profile --out $(PAPER_RUN)
	$(PY) -m dyndnn analyse --out $(PAPER_RUN)
	$(PY) -m dyndnn runtime --out $(PAPER_RUN)
	$(PY) -m dyndnn publish --out $(PAPER_RUN) --to $(PAPER_RESULTS)

lint: setup
	$(PY) -m ruff check lib tests notebooks data

$(LAB_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e ".[dev,lab]"
	touch $(LAB_STAMP)

# JupyterLab on working copies in lab/ (python -m dyndnn lab): the tracked notebooks/ never change
lab: $(LAB_STAMP)
	$(PY) -m dyndnn lab

clean-venv:
	rm -rf $(VENV)
