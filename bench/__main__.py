"""``python -m bench``: run every bench/bench_*.py module and print one table."""

from bench._harness import main

raise SystemExit(main())
