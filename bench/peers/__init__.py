"""`python -m bench peers`: izzati beside LitServe, BentoML and a hand-written FastAPI (bench/peers/cli.py).

- cli.py: the command, the order of the runs;
- tools.py: the peers' pinned versions and their venvs under .cache/;
- workloads.py: P1, P2, P3, their one JSON body each, and the reply checker;
- targets.py: how each tool's server starts (bench/targets/peer_*.py);
- vision.py: P4, LitServe's parity test; theirload.py: its load generator's method; ceiling.py:
  the same work in a plain loop;
- report.py: the tables, ratios and goals, the saved report;
- perprocess.py: P4's latencies per server process; queuesim.py: P4's batching schedules as a
  model (no HTTP), what the queues alone do to the tail.
"""

__all__: list[str] = []
