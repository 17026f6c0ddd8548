"""``starcompactor instances``: instance events from Nova's databases (``--source db``) or API (``--source api``).

Thin: parse, resolve settings, build the source, call :func:`starcompactor.instances.make_instance_trace`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any, Callable, Optional

from .cli import add_logging_arguments, add_output_arguments, output_format, resolve_config, resolve_masker
from .config import Config, parse_time
from .errors import ConfigError

log = logging.getLogger("starcompactor")

DEFAULT_OUTPUT = "instance_events.csv"


def add_database_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("database source (--source db)")
    group.add_argument("--defaults-file", metavar="PATH",
                       help="read only this MySQL option file ([client] and [mysql] groups, as the mysql client)")  # fmt: skip
    group.add_argument("--defaults-extra-file", metavar="PATH",
                       help="read this option file after the global ones, before ~/.my.cnf")  # fmt: skip
    group.add_argument("--no-defaults", action="store_true", help="read no option file")
    group.add_argument(
        "--db-host", metavar="H", help="server host (default: option files, else the local socket)"
    )
    group.add_argument("--db-port", metavar="P", type=int, help="server port (default 3306)")
    group.add_argument("--db-user", metavar="U", help="user (default: option files, else your login name)")
    group.add_argument("--db-socket", metavar="PATH", help="server's Unix socket")
    group.add_argument("-p", "--password-prompt", dest="password_prompt", action="store_true",
                       help="ask for the password on the terminal (a password is never taken from argv)")  # fmt: skip
    group.add_argument("--nova-databases", metavar="LIST",
                       help="comma-separated cell databases (overrides [default] nova_databases)")  # fmt: skip
    group.add_argument("--workers", type=int, metavar="N",
                       help="processes decoding, masking and formatting rows (default: one per core, at most 8; 1: none)")  # fmt: skip
    group.add_argument("--include-unfinished", action="store_true",
                       help="also write events with no finish time (skipped by default, as the original did)")  # fmt: skip


def add_window_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--start", metavar="ISO", help="only actions created at or after this time (UTC)")
    parser.add_argument("--end", metavar="ISO", help="only actions created at or before this time (UTC)")


def add_api_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("API source (--source api)")
    group.add_argument(
        "--os-cloud", metavar="NAME", help="cloud in clouds.yaml (else OS_* environment variables)"
    )
    group.add_argument("--osrc", metavar="FILE",
                       help="openrc file with OS_* variables (read, not executed by a shell)")  # fmt: skip
    group.add_argument("--concurrency", metavar="N", type=int, default=8,
                       help="concurrent action requests (default 8)")  # fmt: skip


def add_parser(subparsers: "argparse._SubParsersAction") -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "instances",
        help="instance events from Nova (database or API)",
        description="Instance events (every action on every instance) from the Nova cell databases or the "
        "Nova API, anonymized.",
    )
    parser.add_argument("--source", choices=("db", "api"), default="db", help="where to read (default db)")
    add_database_arguments(parser)
    add_api_arguments(parser)
    add_window_arguments(parser)
    add_output_arguments(parser, DEFAULT_OUTPUT)
    add_logging_arguments(parser)
    parser.set_defaults(handler=run_instances)
    return parser


def _window(args: argparse.Namespace) -> tuple:
    start = parse_time(args.start, "--start") if getattr(args, "start", None) else None
    end = parse_time(args.end, "--end") if getattr(args, "end", None) else None
    if start and end and end < start:
        raise ConfigError(f"--end {args.end} is before --start {args.start}")
    return start, end


def database_source(args: argparse.Namespace, config: Config, *, password: Optional[str] = None) -> Any:
    from .instances_db import DatabaseSource, resolve_settings

    settings = resolve_settings(
        defaults_file=getattr(args, "defaults_file", None),
        defaults_extra_file=getattr(args, "defaults_extra_file", None),
        no_defaults=getattr(args, "no_defaults", False),
        host=getattr(args, "db_host", None),
        port=getattr(args, "db_port", None),
        user=getattr(args, "db_user", None),
        socket=getattr(args, "db_socket", None),
        password=password,
        prompt=getattr(args, "password_prompt", False),
        default_user=getattr(args, "db_user_default", None),
    )
    databases = config.nova_databases
    if getattr(args, "nova_databases", None):
        databases = tuple(d.strip() for d in args.nova_databases.split(",") if d.strip())
    start, end = _window(args)
    return DatabaseSource(
        settings,
        databases,
        start=start,
        end=end,
        instance_type=args.instance_type,
        include_unfinished=getattr(args, "include_unfinished", False),
    ).open()


def api_source(args: argparse.Namespace) -> Any:
    from .instances_api import ApiSource, connect

    start, end = _window(args)
    connection = connect(cloud=getattr(args, "os_cloud", None), osrc=getattr(args, "osrc", None))
    return ApiSource(
        connection,
        start=start,
        end=end,
        instance_type=args.instance_type,
        include_unfinished=getattr(args, "include_unfinished", False),
        concurrency=getattr(args, "concurrency", 8),
    )


def progress_callback(args: argparse.Namespace) -> Optional[Callable[[int], None]]:
    """A tqdm counter on stderr when it is a terminal (not ``--quiet``, ``TQDM_DISABLE`` or stdout output)."""
    from .progress import enabled

    if args.output == "-" or not enabled(getattr(args, "quiet", False)):
        return None
    from tqdm import tqdm

    bar = tqdm(unit=" events", desc="instance events", file=sys.stderr, disable=False)
    return bar.update


def instance_workers(args: argparse.Namespace) -> int:
    """``--workers`` for the database source (API: always 1); default one per core, at most 8 (one
    process cutting packets feeds about that many)."""
    if args.source != "db":
        return 1
    workers = getattr(args, "workers", None)
    if workers is None:
        from .parallel import default_workers

        return min(default_workers(), 8)
    if workers < 1:
        raise ConfigError("--workers must be at least 1")
    return workers


def run_instances(args: argparse.Namespace, *, password: Optional[str] = None) -> int:
    from .instances import make_instance_trace

    config = resolve_config(args)
    if getattr(args, "concurrency", 8) is not None and getattr(args, "concurrency", 8) < 1:
        raise ConfigError("--concurrency must be at least 1")
    workers = instance_workers(args)
    masker = resolve_masker(args)
    source = database_source(args, config, password=password) if args.source == "db" else api_source(args)
    fmt = output_format(args)
    try:
        manifest = make_instance_trace(
            source,
            args.output,
            masker=masker,
            epoch=config.epoch,
            fmt=fmt,
            instance_type=args.instance_type,
            progress=progress_callback(args),
            workers=workers,
        )
    finally:
        close = getattr(source, "close", None)
        if callable(close):
            close()
    skipped = manifest.get("skipped_unfinished") or 0
    if skipped:
        log.info("%d events without a finish time skipped (--include-unfinished keeps them)", skipped)
    failed = manifest.get("failed_servers") or 0
    if failed:
        log.warning(
            "%d servers' actions could not be fetched after retries; they are listed in the manifest "
            "(failed_servers)",
            failed,
        )
    return 0
