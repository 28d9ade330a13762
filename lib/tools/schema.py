"""The whole schema: every package's tables, registered on one metadata (for Alembic, the
backup, the tests' resets and anything that reads the schema whole). Code that works with a
table imports it from the package that owns it."""

from __future__ import annotations

from sqlmodel import SQLModel

from lib.cases import models as cases  # noqa: F401  (registers the tables)
from lib.core import models as core  # noqa: F401
from lib.kpi import models as kpi  # noqa: F401
from lib.org import models as org  # noqa: F401
from lib.rewards import models as rewards  # noqa: F401

metadata = SQLModel.metadata
