# Every target bootstraps .venv from nothing (python3 + the package registries).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PARAMS ?= params/demo.yaml

.PHONY: install demo test test-fast bench lab clean-notebooks status clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

## make demo: build the demo league and warehouse, run the whole runbook, print the report path
demo: $(STAMP)
	$(BIN)/runbook demo --params $(PARAMS)

## make test: the whole test suite, notebooks included (nbval); CI runs it (.ci/run). pytest-xdist runs
## the test files in parallel, one file per worker at a time (--dist loadfile), files with slow tests
## first (tests/conftest.py orders them; --no-loadscope-reorder keeps that order). The small demo, the
## derive warehouses and one full run are built once per machine and code version, for all workers and
## later runs (tests/conftest.py shared_build)
test: $(STAMP)
	@command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)
	$(BIN)/python -m pytest -q -n auto --dist loadfile --no-loadscope-reorder -p no:nbval tests
	$(BIN)/runbook demo --build-only --params params/nbval.yaml
	RUNBOOK_PARAMS=params/nbval.yaml $(BIN)/python -m pytest -q --nbval-lax notebooks/

## make test-fast: the inner loop, every module's unit tests (the tests marked neither slow, browser
## nor zetasql: see tests/conftest.py) in about a minute on 2 cores once the shared builds are cached
## (tests/conftest.py shared_build, /tmp/pytest-of-<user>); make test before pushing
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -n auto --dist loadfile --no-loadscope-reorder -p no:nbval -m fast tests

## make bench: one JSON object of timings at full demo scale
bench: $(STAMP)
	$(BIN)/python -m nbcore.bench

## make screenshots: a clean demo (SCALE=full, the default, or small) in build/screenshots, then the report in
## headless Chromium at 1400 and 420 px: docs/report.png, docs/report-420.png and docs/report.json (what they show)
.PHONY: screenshots
screenshots: $(STAMP)
	@command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)
	PYTHONPATH=$(CURDIR) $(BIN)/python tests/browser.py screenshots --scale $(or $(SCALE),full)

## make lab: JupyterLab on notebooks/
lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=notebooks

## make clean-notebooks: strip outputs and execution counts after editing notebooks in JupyterLab
clean-notebooks: $(STAMP)
	$(BIN)/jupyter nbconvert --clear-output --inplace notebooks/*.ipynb

status: $(STAMP)
	$(BIN)/runbook status --params $(PARAMS)

clean:
	rm -rf runs warehouse bucket .pytest_cache
