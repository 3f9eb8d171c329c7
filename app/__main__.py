"""Run the web process (`python -m app`) or the worker (`python -m app worker`) from settings."""

from __future__ import annotations

import sys

from app.main import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
