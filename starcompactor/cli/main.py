"""``starcompactor COMMAND …``: the parser of every subcommand, and how a run ends.

Thin by design: parse arguments, build the command's typed request, call the library, map our exceptions
to exit codes (0 ok, 1 error, 2 usage, 130 interrupted) and print one line ``starcompactor: error: …`` on
failure (a traceback only with ``--debug``).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from typing import Callable, List, Optional, Sequence

from .._version import __version__
from ..errors import StarCompactorError
from . import inspect, instances, machines, report
from .common import configure_logging

log = logging.getLogger("starcompactor")

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

#: Each adds one subcommand (its parser sets ``handler``); a new command is one module and one entry.
SUBCOMMANDS: List[Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], object]] = [
    machines.add_parser,
    instances.add_parser,
    inspect.add_parser,
    report.add_parser,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="starcompactor",
        description="Anonymized OpenStack workload traces: machine events from mysqldump archives, "
        "instance events from Nova.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for add in SUBCOMMANDS:
        add(subparsers)
    return parser


def run(parser: argparse.ArgumentParser, argv: Optional[Sequence[str]] = None) -> int:
    """Parse ``argv`` with ``parser`` and run the chosen handler (``args.handler``)."""
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `… - | head` ends quietly
    args = parser.parse_args(argv)
    configure_logging(args)
    try:
        return int(args.handler(args) or EXIT_OK)
    except StarCompactorError as exc:
        if args.loglevel == logging.DEBUG:
            log.exception("failed")
        print(f"starcompactor: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("starcompactor: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def main(argv: Optional[Sequence[str]] = None) -> int:
    return run(build_parser(), argv)
