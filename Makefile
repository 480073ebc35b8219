# Two commands a newcomer needs: `make demo` and `make test`. Both (re)build .venv from requirements.txt first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv chromium airflow-env demo test test-fast lab bench screenshots clean

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name flexops --display-name "flexops (.venv)" >/dev/null
	touch $(STAMP)

venv: $(STAMP)

# Debian's Chromium for the browser tests (Playwright never downloads one). Outside CI a machine that cannot install
# it still runs the other tests (the browser tests then skip, saying why); in CI (CI=true) it is an error.
chromium:
	@bash tools/install_chromium.sh || test "$${CI:-}" != true

# Airflow in its own environment (.cache/airflow-venv, never .venv) for tests/test_airflow.py, as pinned in
# requirements-airflow.txt: installed with uv in about a minute, skipped while that file's sha256 is unchanged.
# Outside CI a machine that cannot install it still runs the other tests (that one skips, saying why).
airflow-env:
	@bash tools/install_airflow.sh || test "$${CI:-}" != true

demo: venv
	$(BIN)/flexops demo

test: venv chromium airflow-env
	$(BIN)/python -m pytest

# The inner loop: the tests that start no kernel, browser or process, in well under a minute. A slow test that
# nobody marked fails here, saying how to mark it (tests/conftest.py).
test-fast: venv
	FLEXOPS_TEST_FAST=1 $(BIN)/python -m pytest -m "not slow" -q

# JupyterLab on notebooks/ with the flexops kernel, on loopback only. Without Twilio credentials the runbooks use the
# local sandbox (.flexops/sandbox.db in this folder); with them (TWILIO_* or a twilio-cli profile) the real account.
lab: venv
	FLEXOPS_SANDBOX_DB="$(CURDIR)/.flexops/sandbox.db" $(BIN)/jupyter lab --ip 127.0.0.1 --no-browser \
		--notebook-dir notebooks --ServerApp.open_browser=False

screenshots: venv chromium
	$(BIN)/python tools/screenshots.py

bench: venv
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .flexops runs out .cache
