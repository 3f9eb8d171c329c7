"""The benchmark suite (not part of the tests): `bench/run` or `python -m bench`; see docs/performance.md."""
