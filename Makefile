# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CONN ?= conn.json

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	@echo "kernelsvc: starting on $(CONN); connect from another terminal with:"
	@echo "    $(VENV)/bin/jupyter console --existing $(abspath $(CONN))"
	@echo "Ctrl-C interrupts a running cell; with no cell running it stops the service."
	exec $(VENV)/bin/kernelsvc start --connection-file $(CONN)

test: $(STAMP)
	$(VENV)/bin/ruff check supervisor worker tests
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check supervisor worker tests

clean:
	rm -rf $(VENV) build dist *.egg-info
