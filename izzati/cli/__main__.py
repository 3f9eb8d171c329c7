"""`python -m izzati.cli`: the `izzati` command."""

import sys

from . import main

sys.exit(main())
