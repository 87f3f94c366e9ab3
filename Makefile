# Thin wrappers: each target is one command, and each sets itself up first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
BROWSER_PACKAGES := chromium fonts-wqy-microhei

.PHONY: install browser run test test-postgres lint bench clean

$(BIN)/exchange: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "the exchange needs Python 3.11 or newer (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

install: $(BIN)/exchange

browser:  ## Debian's Chromium and a CJK font, for the console's browser tests
	@dpkg -s $(BROWSER_PACKAGES) >/dev/null 2>&1 || \
		$(SUDO) apt-get install -y -qq $(BROWSER_PACKAGES) || \
		{ $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq $(BROWSER_PACKAGES); }

run: install  ## set up, load the demo, serve on http://127.0.0.1:8000
	$(BIN)/exchange demo
	$(BIN)/exchange serve

test: install browser  ## the whole suite on SQLite (or on EXCHANGE_TEST_DATABASE_URL)
	$(BIN)/pytest

test-postgres: install browser  ## the same suite on PostgreSQL
	EXCHANGE_TEST_DATABASE_URL=$(PG_URL) $(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: install  ## throughput figures against same-run baselines
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) var test-artifacts *.egg-info
