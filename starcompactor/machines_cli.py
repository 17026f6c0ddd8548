"""``starcompactor machines``: the machine-event trace from a directory of mysqldump archives."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Optional, Sequence

from . import cli

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


def add_machine_arguments(parser: argparse.ArgumentParser, *, backup_dir_required: bool = False) -> None:
    """Options of the machines command (shared with ``python -m starcompactor.machine_event_dump``)."""
    group = parser.add_argument_group("input")
    group.add_argument("--backup-dir", metavar="DIR", required=backup_dir_required,
                       help="directory or URI (s3://bucket/prefix) of the dumps (default: [backup] backup_dir)")  # fmt: skip
    group.add_argument("--backup-file-regex", metavar="RE",
                       help="select dumps whose file name matches RE (default: [backup] backup_file_regex "
                            "when the config file sets it, else common dump suffixes)")  # fmt: skip
    group.add_argument("--skip-bad-files", action="store_true",
                       help="leave out unreadable dumps (as missing data) instead of stopping")  # fmt: skip
    group = parser.add_argument_group("workers")
    group.add_argument("--workers", type=int, metavar="N", help="worker processes (default: one per core)")
    group.add_argument("--executor", metavar="URL",
                       help="process (default), thread, or dask://HOST:PORT to use a Dask cluster")  # fmt: skip


def add_parser(subparsers: "argparse._SubParsersAction") -> argparse.ArgumentParser:
    parser = subparsers.add_parser("machines", help="machine events from mysqldump archives",
                                   description=DESCRIPTION, epilog=EPILOG)  # fmt: skip
    configure(parser)
    return parser


def configure(parser: argparse.ArgumentParser) -> None:
    add_machine_arguments(parser)
    cli.add_output_arguments(parser, "machine_events.csv")
    cli.add_logging_arguments(parser)
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    """Run the machines command with parsed arguments."""
    from .errors import ConfigError
    from .machines import make_machine_trace
    from .progress import enabled

    config = cli.resolve_config(args)
    backup_dir = args.backup_dir or config.backup_dir
    if not backup_dir:
        raise ConfigError(
            "no backup directory: give --backup-dir DIR or set [backup] backup_dir in the config"
        )
    fmt = cli.output_format(args)
    masker = cli.resolve_masker(args)
    result = make_machine_trace(
        backup_dir,
        args.output,
        instance_type=args.instance_type,
        config=config,
        fmt=fmt,
        masker=masker,
        backup_file_regex=args.backup_file_regex,
        workers=args.workers,
        executor=args.executor,
        skip_bad_files=args.skip_bad_files,
        progress=enabled(args.quiet),
    )
    for failure in result.skipped:
        print(f"starcompactor: skipped {failure.message}", file=sys.stderr)
    counts = ", ".join(f"{n} {kind}" for kind, n in sorted(result.counts.items())) or "no events"
    where = "stdout" if args.output == "-" else args.output
    log.info(
        "%d event(s) (%s) from %d snapshot(s) written to %s",
        len(result.events),
        counts,
        len(result.snapshots),
        where,
    )
    return cli.EXIT_OK


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m starcompactor.machines_cli``: the machines command alone."""
    parser = argparse.ArgumentParser(prog="starcompactor machines", description=DESCRIPTION, epilog=EPILOG)
    configure(parser)
    return cli.run(parser, argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
