# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CONN ?= conn.json

.PHONY: run test lint bench bytecode dist install-kernelspec e2e e2e-deps clean
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

## bytecode: compile the package's modules once, as installing a wheel does (an editable
## install compiles them at every start where PYTHONDONTWRITEBYTECODE is set: ~25 ms each
## for the supervisor and the fork server); a source newer than its .pyc is still read
bytecode: $(STAMP)
	$(PY) -m compileall -q supervisor worker

## run: set up, then start `kernelsvc start --connection-file conn.json` in the foreground
run: $(STAMP) bytecode
	@echo "kernelsvc: starting on $(CONN); connect from another terminal with:"
	@echo "    $(VENV)/bin/jupyter console --existing $(abspath $(CONN))"
	@echo "Ctrl-C interrupts a running cell; with no cell running it stops the service."
	exec $(VENV)/bin/kernelsvc start --connection-file $(CONN)

## test: set up, lint, run the whole suite
test: $(STAMP) bytecode
	$(VENV)/bin/ruff check supervisor worker tests bench
	$(PY) -m pytest

## lint: ruff over the code, tests and benchmarks
lint: $(STAMP)
	$(VENV)/bin/ruff check supervisor worker tests bench

## bench: kernelsvc and ipykernel side by side, then the restart figures (bench/README.md)
bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[bench]'
	$(MAKE) --no-print-directory bytecode
	$(PY) bench/harness.py
	$(PY) bench/restart.py 20
	$(PY) bench/restart_manager.py 20

## dist: build the wheel and sdist into dist/
dist: $(STAMP)
	$(PY) -m build --outdir dist .

## install-kernelspec: a kernelspec for this venv's kernelsvc in the user's Jupyter dir
install-kernelspec: $(STAMP)
	$(VENV)/bin/kernelsvc install --user

## e2e-deps: Debian's chromium and chromium-driver, installed with apt-get when missing
## (root or sudo); without apt-get or sudo it stops with an error, it never skips
e2e-deps:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
	  if ! command -v apt-get >/dev/null 2>&1; then \
	    echo "make e2e: /usr/bin/chromium or /usr/bin/chromedriver is missing and apt-get is" \
	      "not available: install Chromium and its chromedriver there" >&2; exit 1; fi; \
	  if [ -n "$(SUDO)" ] && ! command -v sudo >/dev/null 2>&1; then \
	    echo "make e2e: installing chromium and chromium-driver needs root or sudo" >&2; \
	    exit 1; fi; \
	  set -x; \
	  $(SUDO) apt-get update && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y \
	    chromium chromium-driver || exit 1; fi
	@test -x /usr/bin/chromium && test -x /usr/bin/chromedriver || \
	  { echo "make e2e: no /usr/bin/chromium or /usr/bin/chromedriver after apt-get" >&2; exit 1; }

## e2e: kernelsvc in JupyterLab, in headless Chromium (tests/e2e/README.md)
e2e: $(STAMP) e2e-deps
	$(PY) -m pip install --quiet 'jupyterlab>=4.6,<4.7' 'selenium>=4.20,<5'
	KERNELSVC_E2E_REQUIRED=1 $(PY) -m pytest tests/e2e -q

clean:
	rm -rf $(VENV) build dist *.egg-info
