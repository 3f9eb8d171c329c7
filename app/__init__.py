"""The izzati service entrypoint: `python -m app` (web) and `python -m app worker`."""
