"""The original tool's ``python -m starcompactor.instance_event_api_dump`` entry point, same flags.

It runs the same code as ``starcompactor instances --source api``; defaults as the original's
(``sha2-salted``, its CSV format).
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from .cli import add_logging_arguments, run
from .instance_event_db_dump import add_compat_output_arguments
from .instances_cli import add_window_arguments, run_instances


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m starcompactor.instance_event_api_dump",
        description="Instance events from the Nova API (the original tool's entry point).",
    )
    parser.add_argument(
        "--osrc", metavar="FILE", help="RC file containing OS_* variables (read, not executed)"
    )
    parser.add_argument("--os-cloud", metavar="NAME", help="cloud in clouds.yaml")
    parser.add_argument(
        "--concurrency", metavar="N", type=int, default=8, help="concurrent requests (default 8)"
    )
    add_window_arguments(parser)
    add_compat_output_arguments(parser)
    add_logging_arguments(parser)
    parser.set_defaults(handler=_run, source="api")
    return parser


def _run(args: argparse.Namespace) -> int:
    if args.format is None and args.jsons is None:
        args.format = "legacy-csv"
    return run_instances(args)


def main(argv: Optional[List[str]] = None) -> int:
    return run(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
