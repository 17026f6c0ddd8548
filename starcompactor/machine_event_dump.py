"""``python -m starcompactor.machine_event_dump``: the original tool's entry point and flags.

Scripts written for the original keep working: the MySQL flags (``--db-user/-u --password/-p --host/-H
--port/-P``) are accepted and ignored, since no MySQL server is needed any more; ``--hashed-masking-salt``
is accepted with a warning; the backup directory comes from ``[backup] backup_dir`` of the config
(or ``--backup-dir``). It runs the same code as ``starcompactor machines``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from . import cli, machines_cli

MYSQL_FLAGS = (("--db-user", "-u"), ("--password", "-p"), ("--host", "-H"), ("--port", "-P"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m starcompactor.machine_event_dump",
        description=machines_cli.DESCRIPTION + " Compatible with the original tool's flags.",
        epilog=machines_cli.EPILOG,
    )
    group = parser.add_argument_group("MySQL (accepted for compatibility, ignored: no server is needed)")
    for long, short in MYSQL_FLAGS:
        group.add_argument(long, short, dest="mysql_" + long[2:].replace("-", "_"), metavar="VALUE",
                           help=argparse.SUPPRESS if long == "--password" else "ignored")  # fmt: skip
    machines_cli.add_machine_arguments(parser)
    cli.add_output_arguments(parser, "machine_events.csv")
    parser.add_argument(
        "--verbose", action="store_const", const=20, dest="loglevel", help="say what is being done"
    )
    parser.add_argument("--debug", action="store_const", const=10, dest="loglevel", help="debug logging")
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no progress bar, warnings and errors only"
    )
    parser.set_defaults(handler=handle)
    return parser


def handle(args: argparse.Namespace) -> int:
    given = [
        long for long, _ in MYSQL_FLAGS if getattr(args, "mysql_" + long[2:].replace("-", "_")) is not None
    ]
    if given:
        print(
            f"starcompactor: note: {', '.join(given)} ignored: dumps are read directly, no MySQL server is used",
            file=sys.stderr,
        )
    return machines_cli.handle(args)


def main(argv: Optional[Sequence[str]] = None) -> int:
    return cli.run(build_parser(), argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
