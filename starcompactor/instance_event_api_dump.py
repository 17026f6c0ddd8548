"""``python -m starcompactor.instance_event_api_dump``: the original tool's entry point (see :mod:`starcompactor.cli.compat`)."""

import sys

from .cli.compat import instance_event_api_dump as main

if __name__ == "__main__":
    sys.exit(main())
