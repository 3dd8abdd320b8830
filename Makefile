# Every target that needs the package first makes sure .venv is installed.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
SYNTH  ?= noisemaker
PARAM  ?= cutoff
TUNE_ARGS ?=
# extra options of python -m synth_probe.bench.match_eval, e.g. MATCH_ARGS="--posterior --posterior-model neighbours"
MATCH_ARGS ?=
JOBS   ?= 2

.PHONY: install test sensitivity bench bench-render bench-generate bench-train bench-progress predictability identifiability tune match-eval clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@# torch first and pinned: 2.13.0 is the CPU wheel on this disk; a bare "torch" would pull CUDA builds
	$(PY) -m pip install -q --disable-pip-version-check torch==2.13.0
	$(PY) -m pip install -q --disable-pip-version-check -e ".[test]"
	@touch $@

# installs the Debian packages the tests need when it can (root); with all of them there nothing may skip
test: $(STAMP)
	@if sh tests/system_packages.sh; then SYNTH_PROBE_SYSTEM_TESTS=required $(PY) -m pytest -q tests; \
	else $(PY) -m pytest -q tests; fi

sensitivity: $(STAMP)
	$(VENV)/bin/synth-probe sensitivity $(SYNTH) --jobs $(JOBS) --out reports/

bench: bench-render bench-generate bench-train

# the emulation before its calibration on the real engine (#16): bench-render prints the speed ratio against it
BENCH_AGAINST ?= 5860016

bench-render: $(STAMP)
	$(PY) -m synth_probe.bench.render --batches 3 --against $(BENCH_AGAINST)

bench-generate: $(STAMP)
	$(PY) -m synth_probe.bench.generate

bench-train: $(STAMP)
	$(PY) -m synth_probe.bench.train

bench-progress: $(STAMP)
	$(PY) -m synth_probe.bench.progress --jobs $(JOBS)

predictability: $(STAMP)
	$(VENV)/bin/synth-probe predictability $(SYNTH) --jobs $(JOBS) --out reports/

identifiability: $(STAMP)
	$(VENV)/bin/synth-probe identifiability $(SYNTH) --jobs $(JOBS) --out reports/

match-eval: $(STAMP)
	$(PY) -m synth_probe.bench.match_eval $(MATCH_ARGS)

tune: $(STAMP)
	$(VENV)/bin/synth-probe tune $(SYNTH) --param $(PARAM) --out reports/ $(TUNE_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
