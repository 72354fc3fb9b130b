# Two commands after cloning: `make lab` (a real swarm to look at) and `make test` (the whole suite).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: venv test unit lab lab-down bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

test: $(STAMP)          ## lint, then the whole suite, lab integration tests included (needs root for those)
	$(BIN)/ruff check overlaytui tests bench
	$(BIN)/pytest $(PYTEST_ARGS)

unit: $(STAMP)          ## only the tests that need no lab
	$(BIN)/pytest -m "not lab" $(PYTEST_ARGS)

lab: $(STAMP)           ## a real 3-node swarm on this machine (root)
	$(BIN)/overlaytui lab up

lab-down: $(STAMP)
	$(BIN)/overlaytui lab down

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) build dist .pytest_cache
