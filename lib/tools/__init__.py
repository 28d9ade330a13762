"""Commands run outside the app (``python -m lib``): migrations, reference data, demo data,
backups, the tick, KPI rebuilds and the benchmark."""
