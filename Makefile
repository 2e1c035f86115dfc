# Two commands: `make demo` and `make test`. Both create .venv if it is missing.
# `make conformance [RECORDS=DIR]` checks every CPU record under DIR (docs/conformance.md).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
N ?= 300
STAMP := $(VENV)/.qgolden-installed
# ExecuTorch (--engine xnnpack) lives in its own venv: it pulls scipy, pandas, coremltools...
XVENV ?= .venv-xnnpack
XPY := $(XVENV)/bin/python
XSTAMP := $(XVENV)/.qgolden-installed
ENGINES ?= pt2e-reference,x86-inductor
ifneq (,$(findstring xnnpack,$(ENGINES)))
FUZZ_PT2E_PY := $(XPY)
FUZZ_PT2E_DEP := $(XSTAMP)
else
FUZZ_PT2E_PY := $(PY)
FUZZ_PT2E_DEP := $(STAMP)
endif

comma := ,

.PHONY: demo test test-xnnpack fuzz fuzz-pt2e fuzz-onnx fuzz-qgp bench conformance install install-xnnpack clean

# $(call venv_with,VENV_DIR,EXTRAS): torch first, pinned: the CPU build 2.13.0 (a looser pin can pull a
# multi-GB CUDA build); then qgolden with EXTRAS; then check that nothing replaced torch
define venv_with
	test -x $(1)/bin/python || $(PYTHON) -m venv $(1)
	$(1)/bin/python -m pip install -q --disable-pip-version-check torch==2.13.0
	$(1)/bin/python -m pip install -q --disable-pip-version-check -e '.[$(2)]'
	$(1)/bin/python -c "import torch, sys; v = torch.__version__; sys.exit(0 if v.startswith('2.13.0') else 'torch was changed to ' + v)"
endef

$(STAMP): pyproject.toml Makefile
	$(call venv_with,$(VENV),dev)
	touch $(STAMP)

install: $(STAMP)

$(XSTAMP): pyproject.toml Makefile
	$(call venv_with,$(XVENV),dev$(comma)xnnpack)
	touch $(XSTAMP)

install-xnnpack: $(XSTAMP)

demo: $(STAMP)
	$(VENV)/bin/qgolden demo

test: $(STAMP)
	$(PY) -m pytest -q -n 2 -p no:cacheprovider

fuzz: $(STAMP)
	$(PY) -m qgolden.fuzz --models $(N) $(if $(ACCUMULATE),--accumulate $(ACCUMULATE))

# make fuzz-onnx N=300: random QOperator / QDQ ONNX models against ONNX Runtime and the reference evaluator
fuzz-onnx: $(STAMP)
	$(PY) -m qgolden.fuzz_onnx --models $(N)

# the tests that run ExecuTorch's .pte (they skip in .venv, which has no executorch)
test-xnnpack: $(XSTAMP)
	$(XPY) -m pytest -q -p no:cacheprovider tests/test_pt2e_xnnpack.py tests/test_pt2e.py

# make fuzz-pt2e N=100 ENGINES=xnnpack   (xnnpack runs in $(XVENV))
fuzz-pt2e: $(FUZZ_PT2E_DEP)
	$(FUZZ_PT2E_PY) -m qgolden.fuzz_pt2e --models $(N) --engines $(ENGINES)

# corrupted .qgp files (bit flips): every one must exit 2 with one line or run, never exit 3 or hang
fuzz-qgp: $(STAMP)
	$(PY) -m qgolden.fuzz_qgp --cases $(or $(CASES),1000)

# every record folder under RECORDS (or RECORDS itself when it is one), each with its own CPU class;
# exits non-zero when any record differs or cannot be checked
RECORDS ?= tests/data/cpu-records
conformance: $(STAMP)
	@status=0; found=0; \
	for d in $(RECORDS) $(RECORDS)/*; do \
	  if [ -f "$$d/ops/manifest.json" ] || [ -f "$$d/inductor/manifest.json" ]; then \
	    found=1; $(PY) -m qgolden.cli conformance check "$$d" || status=1; \
	  fi; \
	done; \
	if [ $$found = 0 ]; then echo "no conformance record under $(RECORDS)"; exit 2; fi; \
	exit $$status

# every speed target of the README, measured on this host (ratios against PyTorch in the same run)
bench: $(STAMP)
	$(PY) bench/bench.py

clean:
	rm -rf $(VENV) $(XVENV) build *.egg-info
