"""The benchmark suite (not part of the tests): `python -m bench [COMMAND]` from the repository root.

See bench/__main__.py for the commands and docs/performance.md for what they measure.
"""
