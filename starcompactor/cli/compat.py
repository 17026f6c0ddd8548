"""The original tool's entry points and flags, so that its users' scripts run unchanged (SPEC §6).

* ``python -m starcompactor.machine_event_dump``: the MySQL flags (``--db-user/-u --password/-p
  --host/-H --port/-P``) are accepted and ignored, since no MySQL server is needed any more; the backup
  directory comes from ``[backup] backup_dir`` of the config (or ``--backup-dir``). Same code as
  ``starcompactor machines``.
* ``python -m starcompactor.instance_event_db_dump``: same code as ``starcompactor instances --source
  db``; defaults as the original's (masking ``sha2-salted``, its CSV format ``legacy-csv``, user
  ``root``). ``-p/--password VALUE`` still works, with a warning: a password in argv is visible to every
  user (``ps``); a bare ``-p`` asks on the terminal.
* ``python -m starcompactor.instance_event_api_dump``: same code as ``starcompactor instances --source
  api``, with the original's defaults.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Optional, Sequence

from . import machines
from .common import add_logging_arguments, add_output_arguments, output_options
from .instances import (
    ApiOptions,
    DatabaseOptions,
    InstancesRequest,
    add_window_arguments,
    run_instances,
)
from .main import run

log = logging.getLogger("starcompactor")

MYSQL_FLAGS = (("--db-user", "-u"), ("--password", "-p"), ("--host", "-H"), ("--port", "-P"))

#: ``-p`` given with no value: prompt.
PROMPT = "\x00prompt"

#: The original's output defaults: its CSV format and its masking method.
ORIGINAL_FORMAT = "legacy-csv"
ORIGINAL_METHOD = "sha2-salted"
FORMAT_HELP = "output format (default legacy-csv: the original's)"


# -- machine_event_dump -------------------------------------------------------------------------------


def machine_event_dump_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m starcompactor.machine_event_dump",
        description=machines.DESCRIPTION + " Compatible with the original tool's flags.",
        epilog=machines.EPILOG,
    )
    group = parser.add_argument_group("MySQL (accepted for compatibility, ignored: no server is needed)")
    for long, short in MYSQL_FLAGS:
        group.add_argument(
            long,
            short,
            dest="mysql_" + long[2:].replace("-", "_"),
            metavar="VALUE",
            help=argparse.SUPPRESS if long == "--password" else "ignored",
        )
    machines.add_machine_arguments(parser)
    add_output_arguments(parser, "machine")
    parser.add_argument(
        "--verbose", action="store_const", const=logging.INFO, dest="loglevel", help="say what is being done"
    )
    parser.add_argument(
        "--debug", action="store_const", const=logging.DEBUG, dest="loglevel", help="debug logging"
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no progress bar, warnings and errors only"
    )
    parser.set_defaults(handler=_machine_event_dump)
    return parser


def _machine_event_dump(args: argparse.Namespace) -> int:
    given = [
        long for long, _ in MYSQL_FLAGS if getattr(args, "mysql_" + long[2:].replace("-", "_")) is not None
    ]
    if given:
        print(
            f"starcompactor: note: {', '.join(given)} ignored: dumps are read directly, no MySQL server is used",
            file=sys.stderr,
        )
    return machines.run_machines(machines.machines_request(args))


def machine_event_dump(argv: Optional[Sequence[str]] = None) -> int:
    return run(machine_event_dump_parser(), argv)


# -- instance_event_db_dump / instance_event_api_dump ---------------------------------------------------


def _compat_output_arguments(parser: argparse.ArgumentParser) -> None:
    """The original's output and masking flags, with its defaults, plus ours (format, key file, config)."""
    add_output_arguments(
        parser,
        "instance",
        default_method=ORIGINAL_METHOD,
        format_help=FORMAT_HELP,
        output_metavar="output_file",
        output_required=True,
    )
    add_window_arguments(parser)
    add_logging_arguments(parser)


def instance_event_db_dump_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m starcompactor.instance_event_db_dump",
        description="Instance events from the Nova databases (the original tool's entry point).",
    )
    parser.add_argument(
        "-u", "--db-user", default=None, help="database user (default: option files, else root)"
    )
    parser.add_argument(
        "-p",
        "--password",
        nargs="?",
        const=PROMPT,
        default=None,
        help="DEPRECATED with a value (visible in ps); alone: ask on the terminal",
    )
    parser.add_argument("-H", "--host", dest="db_host", default=None, help="database host")
    parser.add_argument("-P", "--port", dest="db_port", type=int, default=None, help="database port")
    parser.add_argument("--db-socket", metavar="PATH", help="server's Unix socket")
    parser.add_argument("--defaults-file", metavar="PATH", help="read only this MySQL option file")
    parser.add_argument("--nova-databases", metavar="LIST", help="comma-separated cell databases")
    _compat_output_arguments(parser)
    parser.set_defaults(handler=_instance_event_db_dump)
    return parser


def _instance_event_db_dump(args: argparse.Namespace) -> int:
    password = None
    if args.password is not None and args.password != PROMPT:
        log.warning(
            "a password on the command line is visible to other users (ps); use --defaults-file "
            "(a ~/.my.cnf-style file) or -p alone to be asked"
        )
        password = args.password
        if len(password) > 1 and password[0] == password[-1] and password[0] in "'\"":
            password = password[1:-1]  # the original stripped one level of quotes
    request = InstancesRequest(
        out=output_options(args, "instance", default_format=ORIGINAL_FORMAT),
        source="db",
        db=DatabaseOptions(
            defaults_file=args.defaults_file,
            host=args.db_host,
            port=args.db_port,
            user=args.db_user,
            socket=args.db_socket,
            password_prompt=args.password == PROMPT,
            nova_databases=args.nova_databases,
            default_user="root" if args.db_user is None and not args.defaults_file else None,
        ),
        api=ApiOptions(),
        start=args.start,
        end=args.end,
        include_unfinished=args.include_unfinished,
    )
    return run_instances(request, password=password)


def instance_event_db_dump(argv: Optional[Sequence[str]] = None) -> int:
    return run(instance_event_db_dump_parser(), argv)


def instance_event_api_dump_parser() -> argparse.ArgumentParser:
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
    _compat_output_arguments(parser)
    parser.set_defaults(handler=_instance_event_api_dump)
    return parser


def _instance_event_api_dump(args: argparse.Namespace) -> int:
    request = InstancesRequest(
        out=output_options(args, "instance", default_format=ORIGINAL_FORMAT),
        source="api",
        db=DatabaseOptions(),
        api=ApiOptions(os_cloud=args.os_cloud, osrc=args.osrc, concurrency=args.concurrency),
        start=args.start,
        end=args.end,
        include_unfinished=args.include_unfinished,
    )
    return run_instances(request)


def instance_event_api_dump(argv: Optional[Sequence[str]] = None) -> int:
    return run(instance_event_api_dump_parser(), argv)
