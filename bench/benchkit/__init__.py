"""Building blocks of ``bench/run.py``: processes, servers, Redis, the Node load generator, scenarios, the report."""
