"""``python -m routilux_kernel.cli``: the same as the ``routilux`` script."""

import sys

from routilux_kernel.cli import main

if __name__ == "__main__":
    sys.exit(main())
