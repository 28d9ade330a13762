PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8501
CASES ?= 3000

.PHONY: run test venv setup lint clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

setup: venv
	$(PY) -m lib.cli make-cookie-key
	$(PY) -m lib.cli migrate
	$(PY) -m lib.cli demo --cases $(CASES) --if-empty

run: setup
	$(PY) -m lib.cli check-config
	$(PY) -m streamlit run app.py --server.port $(PORT)

test: venv
	$(VENV)/bin/ruff check lib pages app.py tests
	$(PY) -m pytest -q

lint: venv
	$(VENV)/bin/ruff check lib pages app.py tests


clean:
	rm -f data/app.db data/app.db-wal data/app.db-shm
