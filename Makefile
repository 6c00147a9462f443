# artflow: two commands do everything on a fresh machine.
#   make demo   the main job on offline demo data
#   make test   the test suite
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON_VERSION ?= 3.11
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
ARTFLOW := $(BIN)/artflow
PROFILE ?= smoke
WORKDIR ?= data
export ARTFLOW_PROFILE := $(PROFILE)
export GX_ANALYTICS_ENABLED := false
export TF_CPP_MIN_LOG_LEVEL := 2
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: install demo test test-fast lint lock clean help

help:  ## list targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/'

$(VENV)/.installed: requirements.lock pyproject.toml
	@command -v uv >/dev/null || python3 -m pip install -q uv
	uv venv -q --allow-existing --python $(PYTHON_VERSION) $(VENV)
	@# Precompiled bytecode: where PYTHONDONTWRITEBYTECODE is set, every process would
	@# otherwise recompile TensorFlow & co. on import (~20 s instead of ~8 s per process).
	uv pip install -q --python $(PY) --compile-bytecode -r requirements.lock
	uv pip install -q --python $(PY) --compile-bytecode --no-deps -e .
	touch $@

# The security scanners (checkov, zizmor: tests/infra/test_scanners.py) in their own
# environment: checkov pins versions (networkx<2.7, ...) that the project's lock cannot take.
SCAN_VENV := .venv-scan
$(SCAN_VENV)/.installed: requirements-scan.lock
	@command -v uv >/dev/null || python3 -m pip install -q uv
	uv venv -q --allow-existing --python $(PYTHON_VERSION) $(SCAN_VENV)
	uv pip install -q --python $(SCAN_VENV)/bin/python --compile-bytecode -r requirements-scan.lock
	touch $@

install: $(VENV)/.installed $(SCAN_VENV)/.installed  ## create .venv (and .venv-scan) from the locks (uv)

lock:  ## re-pin the development lock, then the runtime locks (images, Bento) within its pins
	uv pip compile pyproject.toml --extra dev --python-version $(PYTHON_VERSION) \
	  -o requirements.lock --no-header --no-annotate
	@# Runtime only (no test or lint tools): the images (infra/docker/Dockerfile*).
	uv pip compile pyproject.toml -c requirements.lock --python-version $(PYTHON_VERSION) \
	  -o requirements-runtime.lock --no-header --no-annotate
	@# Serving only (bentofile.yaml): infra/docker/serve.in says what the Bento installs.
	uv pip compile infra/docker/serve.in -c requirements-runtime.lock \
	  --python-version $(PYTHON_VERSION) -o requirements-serve.lock --no-header --no-annotate
	@# The scanners alone (requirements-scan.in): their pins need not agree with the project's.
	uv pip compile requirements-scan.in --python-version $(PYTHON_VERSION) \
	  -o requirements-scan.lock --no-header --no-annotate

demo: install  ## offline demo: data stages, training + style pipelines, registry, Bento (smoke)
	$(ARTFLOW) data demo --out $(WORKDIR)/demo_source
	$(ARTFLOW) data ingest --source $(WORKDIR)/demo_source --workdir $(WORKDIR)
	$(ARTFLOW) data validate --workdir $(WORKDIR)
	$(ARTFLOW) data sample --workdir $(WORKDIR)
	$(ARTFLOW) data report --workdir $(WORKDIR)
	$(ARTFLOW) pipeline compile --out build/pipelines
	$(ARTFLOW) pipeline run training --local --workdir $(WORKDIR) --source $(WORKDIR)/demo_source
	$(ARTFLOW) pipeline run style --local --workdir $(WORKDIR) --source $(WORKDIR)/demo_source
	$(ARTFLOW) models compare artflow-artist-classifier --markdown $(WORKDIR)/reports/models.md
	$(ARTFLOW) models list
	$(ARTFLOW) bento build
	@echo
	@echo "demo done. Reports: $(WORKDIR)/validation/report.html, $(WORKDIR)/reports/eda/index.html,"
	@echo "  $(WORKDIR)/reports/models.md; the pipelines' artifacts (data, splits, models, gate reports):"
	@echo "  $(WORKDIR)/pipeline/kfp_local/ (last_run_*.json name each run's folder); runs: .venv/bin/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlflow.db"
	@echo "Serve the champion models:  .venv/bin/artflow serve   (http://127.0.0.1:3000)"

test: lint  ## lint + format check, then the whole suite, slow end-to-end tests included
	@# --durations: the slowest tests in every log, to keep the suite inside its 15-minute budget
	$(BIN)/pytest -q --timeout=900 --durations=30

test-fast: install  ## the suite without the slow end-to-end tests
	$(BIN)/pytest -q -m "not slow"

# The whole project (excludes live in pyproject.toml), so a new folder is never forgotten.
lint: install  ## ruff check and ruff format --check over every Python file
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:  ## remove generated data, runs and builds (keeps .venv)
	rm -rf $(WORKDIR)/demo_source $(WORKDIR)/raw $(WORKDIR)/interim $(WORKDIR)/validation \
	  $(WORKDIR)/splits $(WORKDIR)/reports $(WORKDIR)/pipeline $(WORKDIR)/models \
	  $(WORKDIR)/metrics $(WORKDIR)/serving mlflow.db mlartifacts mlruns build
