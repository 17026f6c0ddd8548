"""``starcompactor instances``: instance events from Nova's databases (``--source db``) or API (``--source api``).

Thin: parse, build the request, resolve settings, build the source, call
:func:`starcompactor.instances.make_instance_trace`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any, Optional, Tuple

from ..config import Config
from ..errors import ConfigError
from ..parallel import default_workers
from ..times import parse_time
from .common import OutputOptions, add_logging_arguments, add_output_arguments, output_options
from .progress import enabled, progress_bars

log = logging.getLogger("starcompactor")

SOURCES = ("db", "api", "dump", "audit")


@dataclass(frozen=True)
class DatabaseOptions:
    """How to reach the Nova databases (``--source db``); a password is never part of it."""

    defaults_file: Optional[str] = None
    defaults_extra_file: Optional[str] = None
    no_defaults: bool = False
    host: Optional[str] = None
    port: Optional[int] = None
    user: Optional[str] = None
    socket: Optional[str] = None
    password_prompt: bool = False
    nova_databases: Optional[str] = None
    default_user: Optional[str] = None  #: the user when neither flags nor option files name one
    connect_timeout: Optional[float] = None  #: seconds (default: option files' connect-timeout, else 10)
    read_timeout: Optional[float] = None  #: seconds without data before giving up (default 600)


@dataclass(frozen=True)
class ApiOptions:
    """How to reach the Nova API (``--source api``)."""

    os_cloud: Optional[str] = None
    osrc: Optional[str] = None
    concurrency: int = 8


@dataclass(frozen=True)
class AuditOptions:
    """Where the ``openstack_audit`` log is (``--source audit``; the machines command's ``--audit-*``):
    a Parquet export (``directory``) or a live server (``server``: how to reach it)."""

    directory: Optional[str] = None
    server: Optional[DatabaseOptions] = None
    database: str = "openstack_audit"


@dataclass(frozen=True)
class ArchiveOptions:
    """Where the dumps are (``--source dump``)."""

    backup_dir: Optional[str] = None
    backup_file_regex: Optional[str] = None
    all_dumps: bool = True
    cache: Optional[str] = None


@dataclass(frozen=True)
class InstancesRequest:
    """One ``instances`` run, as the command line asked for it."""

    out: OutputOptions
    source: str
    db: DatabaseOptions
    api: ApiOptions
    archive: ArchiveOptions = ArchiveOptions()
    start: Optional[str] = None
    end: Optional[str] = None
    include_unfinished: bool = False
    workers: Optional[int] = None
    audit: Optional[AuditOptions] = None


def add_database_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("database source (--source db)")
    add_connection_arguments(group)
    group.add_argument(
        "--nova-databases",
        metavar="LIST",
        help="comma-separated cell databases (overrides [default] nova_databases)",
    )
    group.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="processes decoding (--source db) or merging (--source dump), masking and formatting rows "
        "(default: one per core, at most 8; 1: none)",
    )


def add_connection_arguments(group: Any) -> None:
    """How to reach a MySQL server: option files, host, port, user, socket, a password prompt (never a
    password in argv). Shared by ``instances --source db`` and the audit log's ``--audit-db``."""
    group.add_argument(
        "--defaults-file",
        metavar="PATH",
        help="read only this MySQL option file ([client] and [mysql] groups, as the mysql client)",
    )
    group.add_argument(
        "--defaults-extra-file",
        metavar="PATH",
        help="read this option file after the global ones, before ~/.my.cnf",
    )
    group.add_argument("--no-defaults", action="store_true", help="read no option file")
    group.add_argument(
        "--db-host", metavar="H", help="server host (default: option files, else the local socket)"
    )
    group.add_argument("--db-port", metavar="P", type=int, help="server port (default 3306)")
    group.add_argument("--db-user", metavar="U", help="user (default: option files, else your login name)")
    group.add_argument("--db-socket", metavar="PATH", help="server's Unix socket")
    group.add_argument(
        "-p",
        "--password-prompt",
        dest="password_prompt",
        action="store_true",
        help="ask for the password on the terminal (a password is never taken from argv)",
    )
    group.add_argument(
        "--connect-timeout",
        metavar="S",
        type=float,
        help="seconds to wait for the server to answer a connection (default: option files, else 10)",
    )
    group.add_argument(
        "--read-timeout",
        metavar="S",
        type=float,
        help="seconds the server may send nothing before the run stops (default 600)",
    )


def add_window_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--start", metavar="ISO", help="only actions created at or after this time (UTC)")
    parser.add_argument("--end", metavar="ISO", help="only actions created at or before this time (UTC)")
    parser.add_argument(
        "--include-unfinished",
        action="store_true",
        help="also write events with no finish time (skipped by default, as the original did)",
    )


def add_audit_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    """``--audit-dir``, ``--audit-db`` (with the connection options) and ``--audit-database``."""
    group = parser.add_argument_group(what)
    group.add_argument(
        "--audit-dir",
        metavar="URI",
        help="a Parquet export of the log: directory or s3:// prefix of openstack_audit.audit_<name>.parquet",
    )
    group.add_argument(
        "--audit-db",
        action="store_true",
        help="read the log from a live server (reached with the connection options)",
    )
    group.add_argument(
        "--audit-database",
        metavar="NAME",
        default="openstack_audit",
        help="the log's database (default %(default)s)",
    )


def audit_options(args: argparse.Namespace) -> Optional[AuditOptions]:
    """The :class:`AuditOptions` of a parser built with :func:`add_audit_arguments`; None for neither."""
    directory = getattr(args, "audit_dir", None)
    server = getattr(args, "audit_db", False)
    if directory and server:
        raise ConfigError("--audit-dir and --audit-db: give one of them")
    if not directory and not server:
        return None
    return AuditOptions(
        directory=directory,
        server=database_options(args) if server else None,
        database=getattr(args, "audit_database", None) or "openstack_audit",
    )


def open_audit_log(options: AuditOptions, *, password: Optional[str] = None) -> Any:
    """The :class:`~starcompactor.audit.AuditLog` the options name."""
    if options.directory:
        from ..audit.parquet import read_parquet_log

        return read_parquet_log(options.directory)
    from ..audit.server import read_server_log

    assert options.server is not None
    return read_server_log(server_settings(options.server, password=password), database=options.database)


def add_api_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("API source (--source api)")
    group.add_argument(
        "--os-cloud", metavar="NAME", help="cloud in clouds.yaml (else OS_* environment variables)"
    )
    group.add_argument(
        "--osrc", metavar="FILE", help="openrc file with OS_* variables (read, not executed by a shell)"
    )
    group.add_argument(
        "--concurrency", metavar="N", type=int, default=8, help="concurrent action requests (default 8)"
    )


def add_archive_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("dump source (--source dump)")
    group.add_argument(
        "--backup-dir",
        metavar="DIR",
        help="directory or URI (s3://bucket/prefix) of the dumps (default: [backup] backup_dir): the newest "
        "dump's live and shadow_* tables, plus the events older dumps hold and the newest no longer does",
    )
    group.add_argument(
        "--backup-file-regex", metavar="RE", help="select dumps whose file name matches RE (as machines)"
    )
    which = group.add_mutually_exclusive_group()
    which.add_argument(
        "--all-dumps",
        dest="all_dumps",
        action="store_true",
        default=True,
        help="read every dump, for the history Nova purged from the newest (the default)",
    )
    which.add_argument(
        "--newest-dump-only",
        dest="all_dumps",
        action="store_false",
        help="read the newest dump only (its live and shadow_* tables): faster, without purged history",
    )
    add_cache_argument(group)


def add_cache_argument(group: Any) -> None:
    group.add_argument(
        "--cache",
        metavar="DIR",
        help="keep what each dump yielded in DIR, so a re-run reads only new or changed dumps",
    )


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "instances",
        help="instance events from Nova (database, API, archived dumps or audit log)",
        description="Instance events (every action on every instance) from the Nova cell databases, the "
        "Nova API, the archived mysqldumps or the openstack_audit log, anonymized.",
    )
    parser.add_argument("--source", choices=SOURCES, default="db", help="where to read (default db)")
    add_database_arguments(parser)
    add_api_arguments(parser)
    add_audit_arguments(parser, "audit log source (--source audit)")
    add_archive_arguments(parser)
    add_window_arguments(parser)
    add_output_arguments(parser, "instance")
    add_logging_arguments(parser)
    parser.set_defaults(handler=handle)
    return parser


def database_options(args: argparse.Namespace, **overrides: Any) -> DatabaseOptions:
    """The :class:`DatabaseOptions` of a parser built with :func:`add_database_arguments` (or only
    :func:`add_connection_arguments`)."""
    values = dict(
        defaults_file=args.defaults_file,
        defaults_extra_file=args.defaults_extra_file,
        no_defaults=args.no_defaults,
        host=args.db_host,
        port=args.db_port,
        user=args.db_user,
        socket=args.db_socket,
        password_prompt=args.password_prompt,
        nova_databases=getattr(args, "nova_databases", None),
        connect_timeout=args.connect_timeout,
        read_timeout=args.read_timeout,
    )
    values.update(overrides)
    return DatabaseOptions(**values)


def server_settings(db: DatabaseOptions, *, password: Optional[str] = None) -> Any:
    """The :class:`~starcompactor.server.settings.DbSettings` the options and option files name."""
    from ..server.settings import resolve_settings

    return resolve_settings(
        defaults_file=db.defaults_file,
        defaults_extra_file=db.defaults_extra_file,
        no_defaults=db.no_defaults,
        host=db.host,
        port=db.port,
        user=db.user,
        socket=db.socket,
        password=password,
        prompt=db.password_prompt,
        default_user=db.default_user,
        connect_timeout=db.connect_timeout,
        read_timeout=db.read_timeout,
    )


def handle(args: argparse.Namespace) -> int:
    request = InstancesRequest(
        out=output_options(args, "instance"),
        source=args.source,
        db=database_options(args),
        api=ApiOptions(os_cloud=args.os_cloud, osrc=args.osrc, concurrency=args.concurrency),
        archive=ArchiveOptions(
            backup_dir=args.backup_dir,
            backup_file_regex=args.backup_file_regex,
            all_dumps=args.all_dumps,
            cache=args.cache,
        ),
        start=args.start,
        end=args.end,
        include_unfinished=args.include_unfinished,
        workers=args.workers,
        audit=audit_options(args),
    )
    return run_instances(request)


def window(request: InstancesRequest) -> Tuple[Optional[dt.datetime], Optional[dt.datetime]]:
    start = parse_time(request.start, "--start") if request.start else None
    end = parse_time(request.end, "--end") if request.end else None
    if start and end and end < start:
        raise ConfigError(f"--end {request.end} is before --start {request.start}")
    return start, end


def database_source(request: InstancesRequest, config: Config, *, password: Optional[str] = None) -> Any:
    from ..instances import DatabaseSource

    db = request.db
    settings = server_settings(db, password=password)
    databases = config.nova_databases
    if db.nova_databases:
        databases = tuple(d.strip() for d in db.nova_databases.split(",") if d.strip())
    start, end = window(request)
    return DatabaseSource(
        settings,
        databases,
        start=start,
        end=end,
        instance_type=request.out.instance_type,
        include_unfinished=request.include_unfinished,
    ).open()


def dump_source(request: InstancesRequest, config: Config) -> Any:
    """The archived dumps as a source (``--source dump``)."""
    from ..dump.cache import DumpCache
    from ..instances.archive import DumpSource
    from ..machines.backups import list_backups

    archive = request.archive
    backup_dir = archive.backup_dir or config.backup_dir
    if not backup_dir:
        raise ConfigError(
            "no backup directory: give --backup-dir DIR or set [backup] backup_dir in the config"
        )
    databases = config.nova_databases
    if request.db.nova_databases:
        databases = tuple(d.strip() for d in request.db.nova_databases.split(",") if d.strip())
    start, end = window(request)
    backups = list_backups(backup_dir, archive.backup_file_regex or config.backup_file_regex)
    return DumpSource(
        backups,
        databases,
        start=start,
        end=end,
        instance_type=request.out.instance_type,
        include_unfinished=request.include_unfinished,
        all_dumps=archive.all_dumps,
        cache=DumpCache(archive.cache) if archive.cache else None,
    )


def api_source(request: InstancesRequest) -> Any:
    from ..instances.api import ApiSource, connect

    start, end = window(request)
    connection = connect(cloud=request.api.os_cloud, osrc=request.api.osrc)
    return ApiSource(
        connection,
        start=start,
        end=end,
        instance_type=request.out.instance_type,
        include_unfinished=request.include_unfinished,
        concurrency=request.api.concurrency,
    )


def audit_source(request: InstancesRequest, *, password: Optional[str] = None) -> Any:
    from ..instances.audit import AuditInstanceSource

    if request.audit is None:
        raise ConfigError("--source audit needs --audit-dir URI or --audit-db")
    start, end = window(request)
    return AuditInstanceSource(
        open_audit_log(request.audit, password=password),
        start=start,
        end=end,
        instance_type=request.out.instance_type,
        include_unfinished=request.include_unfinished,
    )


def instance_workers(request: InstancesRequest) -> int:
    """``--workers`` for the database source and the dumps (API, audit: always 1); default one per core,
    at most 8 (one process cutting packets feeds about that many). From dumps, the processes that merge,
    mask and format the events once the dump is read."""
    if request.source not in ("db", "dump"):
        return 1
    if request.workers is None:
        return min(default_workers(), 8)
    if request.workers < 1:
        raise ConfigError("--workers must be at least 1")
    return request.workers


def run_instances(request: InstancesRequest, *, password: Optional[str] = None) -> int:
    """Run the instances command (``password``: one given the original tool's way, never logged)."""
    from ..instances import make_instance_trace  # here: ``machines`` runs need none of it

    out = request.out
    config = out.resolve_config()
    if request.api.concurrency < 1:
        raise ConfigError("--concurrency must be at least 1")
    if request.source not in SOURCES:
        raise ConfigError(f"unknown source {request.source!r} (choose from {', '.join(SOURCES)})")
    workers = instance_workers(request)
    masker = out.masker()
    if request.source == "db":
        source = database_source(request, config, password=password)
    elif request.source == "audit":
        source = audit_source(request, password=password)
    elif request.source == "dump":
        source = dump_source(request, config)
    else:
        source = api_source(request)
    show = out.output != "-" and enabled(out.quiet)
    try:
        with progress_bars("instance events", show) as on_progress:
            result = make_instance_trace(
                source,
                out.output,
                masker=masker,
                epoch=config.epoch,
                fmt=out.fmt,
                instance_type=out.instance_type,
                on_progress=on_progress,
                workers=workers,
            )
    finally:
        close = getattr(source, "close", None)
        if callable(close):
            close()
    manifest = result.manifest
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
