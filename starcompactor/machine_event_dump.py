"""``python -m starcompactor.machine_event_dump``: the original tool's entry point (see :mod:`starcompactor.cli.compat`)."""

import sys

from .cli.compat import machine_event_dump as main

if __name__ == "__main__":
    sys.exit(main())
