"""``ghostcap triage``: analyse a fleet of captures in parallel (local processes or a Dask cluster) into one
SQLite results store, CSV/Parquet exports and a fleet summary page."""
