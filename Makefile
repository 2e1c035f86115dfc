# Two commands: `make demo` and `make test`. Both create .venv if it is missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
N ?= 300
STAMP := $(VENV)/.qgolden-installed

.PHONY: demo test fuzz fuzz-pt2e bench install clean

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch first, pinned: the CPU build 2.13.0 (a looser pin can pull a multi-GB CUDA build)
	$(PY) -m pip install -q --disable-pip-version-check torch==2.13.0
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	$(PY) -c "import torch, sys; v = torch.__version__; sys.exit(0 if v.startswith('2.13.0') else 'torch was changed to ' + v)"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/qgolden demo

test: $(STAMP)
	$(PY) -m pytest -q -n 2 -p no:cacheprovider

fuzz: $(STAMP)
	$(PY) -m qgolden.fuzz --models $(N) $(if $(ACCUMULATE),--accumulate $(ACCUMULATE))

fuzz-pt2e: $(STAMP)
	$(PY) -m qgolden.fuzz_pt2e --models $(N)

bench: $(STAMP)
	$(PY) bench/bench_run.py
	$(PY) bench/bench_export.py

clean:
	rm -rf $(VENV) build *.egg-info
