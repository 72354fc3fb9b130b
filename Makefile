# Two commands after cloning: `make demo` (the dashboard on a simulated cluster) and `make test` (the whole suite).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: venv demo test unit lab lab-down bench screenshots wheel-check mutants clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

comma := ,
# the demo's size, NODES,SERVICES,TASKS: bad-node is the 200-node heat map; the other scenarios default to 5 nodes
SCALE ?= $(if $(filter bad-node,$(SCENARIO)),200$(comma)300$(comma)5000)

demo: $(STAMP)          ## the dashboard on the embedded simulated cluster (SCENARIO=loss|mtu|node-down|..., SCALE=N,S,T)
	$(BIN)/overlaytui --demo $(SCENARIO) $(if $(SCALE),--demo-scale $(SCALE))

test: $(STAMP)          ## lint, then the whole suite, lab integration tests included (needs root for those)
	$(BIN)/ruff check overlaytui tests bench
	$(BIN)/pytest $(PYTEST_ARGS)

unit: $(STAMP)          ## only the tests that need no lab
	$(BIN)/pytest -m "not lab" $(PYTEST_ARGS)

lab: $(STAMP)           ## a real 3-node swarm on this machine (root)
	$(BIN)/overlaytui lab up

lab-down: $(STAMP)
	$(BIN)/overlaytui lab down

bench: $(STAMP)         ## benchmarks (a lab for the collectors: root); figures in docs/benchmarks.md
	$(BIN)/python -m bench $(BENCH)

screenshots: $(STAMP)   ## screenshots/*.svg from the demo cluster
	$(BIN)/python tools/screenshots.py

wheel-check: $(STAMP)   ## build the wheel, install it in a fresh venv, check the themes ship and the demo starts
	bash tools/wheel-check.sh

mutants: $(STAMP)       ## mutation testing, scores per module (mutmut; hours on 2 cores: one module is `mutmut run "overlaytui.safe*"`)
	$(BIN)/pip install -q 'mutmut>=3.3,<4'
	rm -rf mutants
	$(BIN)/mutmut run --max-children 2; $(BIN)/python tools/mutation-score.py

clean:
	rm -rf $(VENV) build dist .pytest_cache mutants
