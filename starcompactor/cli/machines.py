"""``starcompactor machines``: the machine-event trace from a directory of mysqldump archives."""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from typing import Any, Optional

from ..errors import ConfigError
from ..machines import make_machine_trace
from ..machines.trace import AuditSource
from .common import OutputOptions, add_logging_arguments, add_output_arguments, output_options
from .instances import (
    AuditOptions,
    add_audit_arguments,
    add_connection_arguments,
    audit_options,
    open_audit_log,
)
from .progress import enabled, progress_bars

log = logging.getLogger("starcompactor")

DESCRIPTION = (
    "Machine events (CREATE, UPDATE, DELETE, ENABLE, DISABLE of each physical host) from a directory of "
    "nightly mysqldump archives, read straight from the compressed files: no MySQL server needed."
)
EPILOG = (
    "With no --backup-file-regex and none in the config file, every file named *.sql, *.mysql or *.dump "
    "(optionally .gz/.bz2/.xz/.zst) is read. A snapshot's time comes from its file name, else the dump's "
    "'-- Dump completed' trailer, else its modification time."
)


@dataclass(frozen=True)
class MachinesRequest:
    """One ``machines`` run, as the command line asked for it."""

    out: OutputOptions
    backup_dir: Optional[str]
    backup_file_regex: Optional[str]
    skip_bad_files: bool
    workers: Optional[int]
    executor: Optional[str]
    audit_log: bool = True  #: read the log the dumps carry
    audit: Optional[AuditOptions] = None  #: an export or a live server instead
    cache: Optional[str] = None


def add_machine_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the machines command (shared with ``python -m starcompactor.machine_event_dump``)."""
    group = parser.add_argument_group("input")
    group.add_argument(
        "--backup-dir",
        metavar="DIR",
        help="directory or URI (s3://bucket/prefix) of the dumps (default: [backup] backup_dir)",
    )
    group.add_argument(
        "--backup-file-regex",
        metavar="RE",
        help="select dumps whose file name matches RE (default: [backup] backup_file_regex "
        "when the config file sets it, else common dump suffixes)",
    )
    group.add_argument(
        "--skip-bad-files",
        action="store_true",
        help="leave out unreadable dumps (as missing data) instead of stopping",
    )
    group.add_argument(
        "--cache",
        metavar="DIR",
        help="keep each dump's snapshot in DIR, so a re-run reads only new or changed dumps",
    )
    group = parser.add_argument_group("workers")
    group.add_argument("--workers", type=int, metavar="N", help="worker processes (default: one per core)")
    group.add_argument(
        "--executor",
        metavar="URL",
        help="process (default), thread, or dask://HOST:PORT to use a Dask cluster",
    )


def add_machine_audit_arguments(parser: argparse.ArgumentParser) -> None:
    """The audit log's options (SPEC §1.4): off, an export, or a live server and how to reach it."""
    add_audit_arguments(parser, "audit log (openstack_audit: exact event times)")
    group = parser.add_argument_group("audit log server (--audit-db)")
    add_connection_arguments(group)
    parser.add_argument(
        "--no-audit-log",
        action="store_true",
        help="ignore the openstack_audit log the dumps carry (snapshots only)",
    )


def configure(parser: argparse.ArgumentParser) -> None:
    add_machine_arguments(parser)
    add_machine_audit_arguments(parser)
    add_output_arguments(parser, "machine")
    add_logging_arguments(parser)
    parser.set_defaults(handler=handle)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "machines", help="machine events from mysqldump archives", description=DESCRIPTION, epilog=EPILOG
    )
    configure(parser)
    return parser


def machines_request(args: argparse.Namespace, out: Optional[OutputOptions] = None) -> MachinesRequest:
    return MachinesRequest(
        out=out or output_options(args, "machine"),
        backup_dir=args.backup_dir,
        backup_file_regex=args.backup_file_regex,
        skip_bad_files=args.skip_bad_files,
        workers=args.workers,
        executor=args.executor,
        audit_log=not getattr(args, "no_audit_log", False),
        audit=audit_options(args),
        cache=getattr(args, "cache", None),
    )


def handle(args: argparse.Namespace) -> int:
    return run_machines(machines_request(args))


def run_machines(request: MachinesRequest) -> int:
    """Run the machines command."""
    out = request.out
    config = out.resolve_config()
    # with an export or a server named, the dumps are the ones named here (none: the log alone)
    backup_dir = request.backup_dir or (config.backup_dir if request.audit is None else None)
    if not backup_dir and request.audit is None:
        raise ConfigError(
            "no backup directory: give --backup-dir DIR (or set [backup] backup_dir in the config), "
            "or an audit log with --audit-dir or --audit-db"
        )
    if request.audit is not None and not request.audit_log:
        raise ConfigError("--no-audit-log with --audit-dir or --audit-db: give one or the other")
    audit = AuditSource(dumps=request.audit_log and request.audit is None)
    if request.audit is not None:
        audit = AuditSource(dumps=False, log=open_audit_log(request.audit))
    masker = out.masker()
    with progress_bars("dumps", enabled(out.quiet)) as on_progress:
        result = make_machine_trace(
            backup_dir,
            out.output,
            instance_type=out.instance_type,
            config=config,
            fmt=out.fmt,
            masker=masker,
            backup_file_regex=request.backup_file_regex,
            workers=request.workers,
            executor=request.executor,
            skip_bad_files=request.skip_bad_files,
            on_progress=on_progress,
            audit=audit,
            cache=request.cache,
        )
    counts = ", ".join(f"{n} {kind}" for kind, n in sorted(result.counts.items())) or "no events"
    where = "stdout" if out.output == "-" else out.output
    by_source = result.manifest.get("events_by_source") or {}
    log.info(
        "%d event(s) (%s) from %d snapshot(s)%s written to %s",
        result.event_count,
        counts,
        len(result.snapshots),
        f" and the audit log ({by_source.get('audit-log', 0)} of them)"
        if result.manifest.get("audit_log")
        else "",
        where,
    )
    return 0
