# Everything a user or CI runs goes through here; see README.md.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO ?= demo-$(shell date +%Y%m%d-%H%M%S).h5

.PHONY: install demo test lint bench bench-decode bench-e2e

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/palpation record --simulate --headless --duration 30 --out $(DEMO)
	$(VENV)/bin/palpation info $(DEMO)

test: $(STAMP)
	$(PY) -m pytest
	$(VENV)/bin/ruff check .

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: bench-decode bench-e2e

bench-decode: $(STAMP)
	$(PY) bench/bench_decode.py

bench-e2e: $(STAMP)
	$(PY) bench/bench_e2e.py
