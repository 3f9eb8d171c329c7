"""`python -m bench [--quick] [--only W1,W2] ...`: the benchmark suite, see docs/performance.md."""

import sys

from bench.runner import main

sys.exit(main())
