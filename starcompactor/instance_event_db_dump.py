"""The original tool's ``python -m starcompactor.instance_event_db_dump`` entry point, same flags.

It runs the same code as ``starcompactor instances --source db``. Defaults follow the original: masking
``sha2-salted``, output in the original's CSV format (``legacy-csv``; ``--jsons`` for JSON lines), user
``root``. ``-p/--password VALUE`` is accepted so that old scripts keep working, with a warning: a password
in argv is visible to every user (``ps``); use ``--defaults-file`` or a bare ``-p`` to be asked.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import List, Optional

from .cli import add_logging_arguments, run
from .instances_cli import add_window_arguments, run_instances
from .mask import METHODS

log = logging.getLogger("starcompactor")

#: ``-p`` given with no value: prompt.
PROMPT = object()


def add_compat_output_arguments(parser: argparse.ArgumentParser) -> None:
    """The original's output and masking flags, plus ours (format, key file, config)."""
    parser.add_argument("--instance-type", choices=("vm", "baremetal"), default="vm",
                        help="vm or baremetal (default vm)")  # fmt: skip
    parser.add_argument("--hashed-masking-method", choices=METHODS, default="sha2-salted",
                        help="default sha2-salted, as the original")  # fmt: skip
    parser.add_argument("--hashed-masking-salt", metavar="SALT",
                        help="the key, as the original took it (visible in ps: prefer --hashed-masking-key-file)")  # fmt: skip
    parser.add_argument("--hashed-masking-key-file", metavar="PATH", help="file holding the masking key")
    parser.add_argument("--jsons", action="store_const", const="jsonl", dest="jsons",
                        help="JSON lines instead of CSV")  # fmt: skip
    parser.add_argument("--format", choices=("csv", "legacy-csv", "jsonl", "parquet"), default=None,
                        help="output format (default legacy-csv: the original's)")  # fmt: skip
    parser.add_argument("--config", metavar="PATH", help="settings file (default ./starcompactor.config)")
    parser.add_argument("--epoch", metavar="ISO", help="trace epoch (overrides [default] epoch)")
    parser.add_argument("--include-unfinished", action="store_true", help="keep events with no finish time")
    parser.add_argument("output", metavar="output_file", help="file to dump results, or -")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m starcompactor.instance_event_db_dump",
        description="Instance events from the Nova databases (the original tool's entry point).",
    )
    parser.add_argument(
        "-u", "--db-user", default=None, help="database user (default: option files, else root)"
    )
    parser.add_argument("-p", "--password", nargs="?", const=PROMPT, default=None,
                        help="DEPRECATED with a value (visible in ps); alone: ask on the terminal")  # fmt: skip
    parser.add_argument("-H", "--host", dest="db_host", default=None, help="database host")
    parser.add_argument("-P", "--port", dest="db_port", type=int, default=None, help="database port")
    parser.add_argument("--db-socket", metavar="PATH", help="server's Unix socket")
    parser.add_argument("--defaults-file", metavar="PATH", help="read only this MySQL option file")
    parser.add_argument("--nova-databases", metavar="LIST", help="comma-separated cell databases")
    add_window_arguments(parser)
    add_compat_output_arguments(parser)
    add_logging_arguments(parser)
    parser.set_defaults(handler=_run, source="db")
    return parser


def _run(args: argparse.Namespace) -> int:
    password = None
    if args.password is PROMPT:
        args.password_prompt = True
    elif args.password is not None:
        log.warning(
            "a password on the command line is visible to other users (ps); use --defaults-file "
            "(a ~/.my.cnf-style file) or -p alone to be asked"
        )
        password = args.password
        if len(password) > 1 and password[0] == password[-1] and password[0] in "'\"":
            password = password[1:-1]  # the original stripped one level of quotes
    if args.db_user is None and not args.defaults_file:
        args.db_user_default = "root"
    if args.format is None and args.jsons is None:
        args.format = "legacy-csv"
    return run_instances(args, password=password)


def main(argv: Optional[List[str]] = None) -> int:
    return run(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
