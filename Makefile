# crossborder — two commands set everything up: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
FONTS := src/crossborder/web/static/vendor/fonts/.stamp
export CROSSBORDER_TEST_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
PORT ?= 8000

.PHONY: install run demo-federation test test-sqlite test-postgres check format clean i18n-extract i18n-update

install: $(STAMP) $(FONTS)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "crossborder needs Python 3.11"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

$(FONTS): scripts/vendor_assets.py | $(STAMP)
	$(BIN)/python scripts/vendor_assets.py

## run: install, migrate a SQLite database under ./var, load the demo once, serve on 127.0.0.1:$(PORT)
run: install
	@CROSSBORDER_DEMO_MODE=true $(BIN)/crossborder demo
	@echo "crossborder is serving on http://127.0.0.1:$(PORT)/  (Ctrl-C to stop)"
	@CROSSBORDER_DEMO_MODE=true $(BIN)/crossborder serve --port $(PORT)

## demo-federation: three nodes on loopback walk a preservation request (exit 1 if they disagree)
demo-federation: install
	$(BIN)/crossborder demo federation

## test: the whole suite on SQLite, then on PostgreSQL when one answers
test: install
	@$(MAKE) --no-print-directory test-sqlite
	@if $(BIN)/python scripts/pg_available.py "$$CROSSBORDER_TEST_POSTGRES_URL"; then \
		$(MAKE) --no-print-directory test-postgres; \
	else \
		echo "SKIPPED the PostgreSQL run: no server answers at $$CROSSBORDER_TEST_POSTGRES_URL (set CROSSBORDER_TEST_POSTGRES_URL)"; \
	fi

test-sqlite: install
	@echo "== test suite on SQLite =="
	CROSSBORDER_TEST_DATABASE_URL=sqlite:// $(BIN)/pytest $(PYTEST_ARGS)

test-postgres: install
	@echo "== test suite on PostgreSQL =="
	CROSSBORDER_TEST_DATABASE_URL="$$CROSSBORDER_TEST_POSTGRES_URL" $(BIN)/pytest $(PYTEST_ARGS)

check: install
	$(BIN)/ruff format --check src tests scripts
	$(BIN)/ruff check src tests scripts
	$(BIN)/mypy

format: install
	$(BIN)/ruff format src tests scripts
	$(BIN)/ruff check --fix src tests scripts

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache src/crossborder/web/static/vendor

LANGS := vi bn
POT := src/crossborder/web/translations/messages.pot

## i18n-extract: collect every translatable string into messages.pot
i18n-extract: install
	$(BIN)/pybabel extract -F babel.cfg --no-location --sort-output -k N_ -k gettext:2 -o $(POT) src

## i18n-update: merge messages.pot into each language's catalog
i18n-update: i18n-extract
	for l in $(LANGS); do $(BIN)/pybabel update -i $(POT) -d src/crossborder/web/translations -l $$l --no-fuzzy-matching; done
