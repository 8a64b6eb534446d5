# pedidos: run the development cluster, test, lint.
#
#   make run     every node of settings.toml, one process each (Ctrl-C stops them all)
#   make test    the whole pytest suite, on WORKERS processes (default: one per core);
#                PYTEST_ARGS="-k cli -x" narrows it, WORKERS=0 runs it in one process
#   make lint    ruff and mypy, each if installed (.venv/bin/pip install ruff mypy)
#   make bench   every figure of bench/: rates, lag, catch-up, list, escrow (about five minutes)
#   make soak    partition-and-heal run: SEED=7 DURACION=300 (seconds of faults), NODOS=, FALTAS=aislar,matar
#   make clean   caches and data/ (the development cluster's databases); distclean also drops .venv
#
# .venv is built with python3 from requirements.txt, and rebuilt whenever
# requirements.txt is newer than the stamp the last install left behind.
# Run by hand, the targets' commands need that interpreter too, not the
# system's (which lacks uvicorn): .venv/bin/python -m servidor --all,
# .venv/bin/python -m bench, .venv/bin/python -m tests.caos --semilla 7.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.requirements-installed
PYTEST_ARGS ?=
WORKERS ?= auto
SEED ?= 7
DURACION ?= 300
NODOS ?=
FALTAS ?=

.PHONY: venv run test lint bench soak clean distclean

venv: $(STAMP)

$(STAMP): requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check --quiet -r requirements.txt
	@touch $@

run: $(STAMP)
	@echo "Development token (role admin, loopback only): dev-token-change-me"
	@echo "  curl -H 'authorization: Bearer dev-token-change-me' http://127.0.0.1:5000/api/pedidos"
	$(PY) -m servidor --all

# pytest exits 5 when it collected no test: a failure here, and said so.
test: $(STAMP)
	@$(PY) -m pytest -n $(WORKERS) $(PYTEST_ARGS); estado=$$?; \
	if [ $$estado -eq 5 ]; then echo "make test: pytest collected no tests" >&2; fi; \
	exit $$estado

bench: $(STAMP)
	$(PY) -m bench

# Exits 1, with the command that replays it, when the checker finds a violation.
soak: $(STAMP)
	$(PY) -m tests.caos --semilla $(SEED) --duracion $(DURACION) $(if $(NODOS),--nodos $(NODOS)) $(if $(FALTAS),--faltas $(FALTAS))

# Each tool is used if installed, in .venv or on PATH; neither is in requirements.txt.
RUFF = $(firstword $(wildcard $(VENV)/bin/ruff) $(shell command -v ruff))
MYPY = $(firstword $(wildcard $(VENV)/bin/mypy) $(shell command -v mypy))

lint: $(STAMP)
	@estado=0; \
	$(if $(RUFF),$(RUFF) check . || estado=1;,echo "make lint: ruff not installed; skipped ($(VENV)/bin/pip install ruff)";) \
	$(if $(MYPY),$(MYPY) servidor esquema sync tests || estado=1;,echo "make lint: mypy not installed; skipped ($(VENV)/bin/pip install mypy)";) \
	exit $$estado

clean:
	rm -rf data .pytest_cache .mypy_cache .ruff_cache .hypothesis tests/e2e/capturas
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
