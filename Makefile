# Every target sets up .venv (re-installing when pyproject.toml changes) and then runs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench lint clean chromium

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "ccm needs Python 3.11 or newer (set PYTHON=...)")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/ccm demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy connector adapters mappings bench tests

# The browser tests drive Debian's Chromium (Playwright never downloads a browser of its own).
chromium:
	@command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)

# Test files run side by side, three at once (a file's tests stay together on one worker, sharing its
# sandboxes); every PostgreSQL test has a schema of its own, so workers never meet. Three, not one per core: a
# part of the suite waits on simulated clocks, servers and browsers rather than computing (on two cores, about
# a minute less than two workers).
test: lint chromium
	$(BIN)/pytest -n 3 --dist loadfile

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .pytest_cache .ruff_cache
