PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8501
CASES ?= 3000
BENCH_CASES ?= 1000000

.PHONY: run test bench venv setup lint clean screenshots

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

setup: venv
	$(PY) -m lib make-cookie-key
	$(PY) -m lib migrate
	$(PY) -m lib demo --cases $(CASES) --if-empty
	$(PY) -m lib kpi-refresh

run: setup
	$(PY) -m lib check-config
	$(PY) -m streamlit run app.py --server.port $(PORT)

test: venv
	$(VENV)/bin/ruff check lib pages app.py tests
	$(PY) -m pytest -q -n 2 --dist loadgroup --durations=25

# Builds data/bench-N.db (and database bench_N on PostgreSQL) once, then reuses it.
bench: venv
	$(PY) -m lib make-cookie-key
	$(PY) -m lib bench --cases $(BENCH_CASES) --db sqlite
	$(PY) -m lib bench --cases $(BENCH_CASES) --db postgres

# Refresh docs/screenshots/ from a demo database of its own (Playwright and chromium).
screenshots: venv
	$(PY) -m tests.screenshots

lint: venv
	$(VENV)/bin/ruff check lib pages app.py tests


clean:
	rm -f data/app.db data/app.db-wal data/app.db-shm
