# Front door: `make app` (set up and run the app) and `make test` (set up and run the tests).
# Both create .venv on first use; later runs reuse it until a requirements file or pyproject.toml
# changes. The project itself is installed editable: .venv/bin/ssd is the command line.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: app test setup setup-dev bench data-synth

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.app-installed: requirements.txt pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt $(VENV)/.app-installed
	grep -v -E '^(megadetector|jsonpickle)==' requirements-dev.txt > $(VENV)/requirements-dev-deps.txt
	$(BIN)/python -m pip install --quiet -r $(VENV)/requirements-dev-deps.txt
	$(BIN)/python -m pip install --quiet --no-deps $$(grep -E '^(megadetector|jsonpickle)==' requirements-dev.txt)
	touch $@

setup: $(VENV)/.app-installed
setup-dev: $(VENV)/.dev-installed

app: setup
	$(BIN)/streamlit run app.py

test: setup-dev
	$(BIN)/lint-imports
	$(BIN)/python -m pytest

bench: setup
	$(BIN)/python scripts/benchmark.py
