"""The command line starts quickly: only ``bench`` loads Streamlit (and openpyxl), only the
migration commands load Alembic; cron's per-minute ``tick`` loads neither."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Runs each command given as a JSON list of argument lists through the CLI's main, in one fresh
# interpreter, then says which of the heavy packages got imported.
PROBE = """
import json, sys
from lib.tools.cli import main
codes = [main(argv) for argv in json.loads(sys.argv[1])]
print(json.dumps({"codes": codes, "loaded": sorted(
    m for m in ("streamlit", "openpyxl", "alembic") if m in sys.modules)}))
"""


def _probe(commands: list[list[str]], database: Path) -> dict:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{database}", "NOTICE_LOG": str(database) + ".log"}
    env.pop("MIGRATION_DATABASE_URL", None)
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(commands)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_tick_and_check_config_run_without_streamlit_or_alembic(tmp_path, sqlite_template):
    database = tmp_path / "app.db"
    shutil.copy(sqlite_template, database)
    found = _probe([["check-config"], ["tick"], ["list-units"]], database)
    assert found == {"codes": [0, 0, 0], "loaded": []}


def test_migrate_loads_alembic_but_not_streamlit(tmp_path):
    found = _probe([["migrate"]], tmp_path / "new.db")
    assert found == {"codes": [0], "loaded": ["alembic"]}
