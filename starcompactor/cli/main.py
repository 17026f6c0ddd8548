"""``starcompactor COMMAND …``: the parser of every subcommand, and how a run ends.

Thin by design: parse arguments, build the command's typed request, call the library, map our exceptions
to exit codes (0 ok, 1 error, 2 usage, 130 interrupted, 143 terminated) and print one line
``starcompactor: error: …`` on failure (a traceback only with ``--debug``). Every message goes through
:func:`~starcompactor.errors.printable`: credentials in URIs redacted, control characters escaped.

SIGTERM ends a run as Ctrl-C does: the exception unwinds through the writers, which remove their temporary
files, and the exit status is 143 (128 + 15, what a shell reports for a process killed by SIGTERM).
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import signal
import sys
import threading
from typing import Any, Callable, Dict, List, Optional, Sequence

from .._version import __version__
from ..errors import StarCompactorError, printable
from . import inspect, instances, machines, report
from .common import configure_logging

log = logging.getLogger("starcompactor")

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


class Terminated(BaseException):
    """SIGTERM arrived: unwind like KeyboardInterrupt (temporary outputs are removed on the way)."""


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


def _on_sigterm(main_pid: int) -> Callable[[int, Any], None]:
    def handler(signum: int, frame: Any) -> None:
        if os.getpid() != main_pid:  # a forked worker inherited this handler: die as SIGTERM means
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        for child in multiprocessing.active_children():  # pool workers would finish their dump first
            child.terminate()
        raise Terminated()

    return handler


def run(parser: argparse.ArgumentParser, argv: Optional[Sequence[str]] = None) -> int:
    """Parse ``argv`` with ``parser`` and run the chosen handler (``args.handler``).

    The signal handlers set for the run are put back afterwards, so that a program (or a test) calling
    this in-process keeps its own.
    """
    previous: Dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        if hasattr(signal, "SIGPIPE"):
            previous[signal.SIGPIPE] = signal.signal(
                signal.SIGPIPE, signal.SIG_DFL
            )  # `… - | head` ends quietly
        previous[signal.SIGTERM] = signal.signal(signal.SIGTERM, _on_sigterm(os.getpid()))
    try:
        args = parser.parse_args(argv)
        configure_logging(args)
        return _run(args)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _run(args: argparse.Namespace) -> int:
    try:
        return int(args.handler(args) or EXIT_OK)
    except StarCompactorError as exc:
        if args.loglevel == logging.DEBUG:
            log.exception("failed")
        print(f"starcompactor: error: {printable(str(exc))}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:  # not one of ours: still one line, naming the file when the error does
        if args.loglevel == logging.DEBUG:
            log.exception("failed")
        print(f"starcompactor: error: {printable(_os_error(exc))}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("starcompactor: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Terminated:
        print("starcompactor: terminated", file=sys.stderr)
        return EXIT_TERMINATED


def _os_error(exc: OSError) -> str:
    detail = exc.strerror or str(exc) or type(exc).__name__
    return f"{exc.filename}: {detail}" if exc.filename is not None else detail


def main(argv: Optional[Sequence[str]] = None) -> int:
    return run(build_parser(), argv)
