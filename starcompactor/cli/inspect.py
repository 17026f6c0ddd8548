"""``starcompactor inspect DUMP...``: what a dump is before it is trusted.

Per dump: the dumper's flavour and version, the server's, the dump time (trailer), whether it ended
cleanly, its databases and tables with row counts, the Blazar schema it carries and whether it holds the
audit log (``openstack_audit``) and from when. A table for people, ``--json`` for scripts. Exit 1 when a
dump is truncated or cannot be read to its end (what was read is still shown).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from ..dump import TableKey
from ..dump.inspect import DumpSummary, database_tables, summarize
from ..dump.reader import ALL_TABLES, Row
from ..machines.blazar import BLAZAR_LAYOUTS, CAPABILITIES, blazar_schema
from ..times import as_datetime
from .common import add_logging_arguments

DESCRIPTION = (
    "What a mysqldump archive is before you trust it: dumper and server versions, dump time, whether it "
    "ended cleanly, databases and tables with row counts, the Blazar schema and the audit log it holds. "
    "Streams the whole file in bounded memory; values are tokenized only for the Blazar and audit tables."
)
EPILOG = "Exit status 1 when a dump is truncated or cannot be read to its end (what was read is shown)."

#: The audit log's database (SPEC §1.4) and the columns that date it.
AUDIT_DATABASE = "openstack_audit"
AUDIT_TABLE_PREFIX = "audit_"
AUDIT_COLUMNS = ("audit_changed_by", "audit_changed_at", "audit_event_time")
BACKFILL = "backfill"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "inspect",
        help="what a dump holds: versions, time, tables, row counts",
        description=DESCRIPTION,
        epilog=EPILOG,
    )
    parser.add_argument(
        "dumps", nargs="+", metavar="DUMP", help="dump file or URI (any compression), - for stdin"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per dump, in a list")
    add_logging_arguments(parser)
    parser.set_defaults(handler=handle)
    return parser


class _AuditLog:
    """The earliest times of each audit table, gathered row by row."""

    def __init__(self) -> None:
        self.tables: Dict[str, Dict[str, Any]] = {}

    def add(self, db: Optional[str], table: str, row: Row) -> None:
        if db != AUDIT_DATABASE or not table.startswith(AUDIT_TABLE_PREFIX):
            return
        entry = self.tables.setdefault(table, {"rows": 0, "first_backfill": None, "first_event": None})
        entry["rows"] += 1
        by = row.get("audit_changed_by")
        if isinstance(by, bytes):
            by = by.decode("utf-8", "replace")
        if by == BACKFILL:
            _earliest(entry, "first_backfill", as_datetime(row.get("audit_changed_at")))
        _earliest(entry, "first_event", as_datetime(row.get("audit_event_time")))

    def since(self) -> Optional[dt.datetime]:
        """From when the log covers history: its first backfill run, else its first event."""
        backfills = [t["first_backfill"] for t in self.tables.values() if t["first_backfill"]]
        if backfills:
            return min(backfills)
        events = [t["first_event"] for t in self.tables.values() if t["first_event"]]
        return min(events) if events else None

    def since_source(self) -> Optional[str]:
        if any(t["first_backfill"] for t in self.tables.values()):
            return "first backfill (audit_changed_at)"
        if self.since() is not None:
            return "first event (audit_event_time)"
        return None


def _earliest(entry: Dict[str, Any], name: str, value: Optional[dt.datetime]) -> None:
    if value is not None and (entry[name] is None or value < entry[name]):
        entry[name] = value


def inspect_dump(path: str) -> Dict[str, Any]:
    """Everything ``inspect`` says about one dump, as plain data (what ``--json`` prints)."""
    audit = _AuditLog()
    read: List[TableKey] = [CAPABILITIES, (AUDIT_DATABASE, ALL_TABLES)]
    columns = {CAPABILITIES: (), (AUDIT_DATABASE, ALL_TABLES): AUDIT_COLUMNS}
    summary = summarize(path, read=read, columns=columns, on_row=audit.add)
    return describe(summary, audit)


def describe(summary: DumpSummary, audit: _AuditLog) -> Dict[str, Any]:
    info = summary.info
    cap_schema = summary.schemas.get(CAPABILITIES)
    layout = blazar_schema(cap_schema.column_names) if cap_schema is not None else None
    audit_tables = [t for t in summary.tables if t.database == AUDIT_DATABASE]
    for t in audit_tables:  # a table with no rows has no times, but is there
        audit.tables.setdefault(t.table, {"rows": t.rows, "first_backfill": None, "first_event": None})
    return {
        "path": info.path,
        "compression": info.compression,
        "flavor": info.flavor,
        "dump_version": info.dump_version,
        "distribution": info.distribution,
        "server_version": info.server_version,
        "completed_at": _iso(info.completed_at),
        "ended_cleanly": summary.ended_cleanly,
        "error": str(summary.error) if summary.error is not None else None,
        "error_kind": type(summary.error).__name__ if summary.error is not None else None,
        "decompressed_bytes": info.bytes_read,
        "sql_mode": info.sql_mode,
        "character_set": info.character_set,
        "time_zone": info.time_zone,
        "databases": [
            {"name": db, "tables": [{"name": table, "rows": rows} for table, rows in tables]}
            for db, tables in database_tables(summary).items()
        ],
        "row_count": summary.row_count,
        "blazar_schema": (
            None
            if cap_schema is None
            else {
                "layout": layout.name if layout is not None else None,
                "known_layouts": [known.name for known in BLAZAR_LAYOUTS],
                "columns": list(cap_schema.column_names),
            }
        ),
        "audit_log": (
            None
            if not audit_tables
            else {
                "database": AUDIT_DATABASE,
                "since": _iso(audit.since()),
                "since_from": audit.since_source(),
                "tables": {
                    name: {
                        "rows": entry["rows"],
                        "first_backfill": _iso(entry["first_backfill"]),
                        "first_event": _iso(entry["first_event"]),
                    }
                    for name, entry in sorted(audit.tables.items())
                },
            }
        ),
    }


def _iso(value: Optional[dt.datetime]) -> Optional[str]:
    return value.isoformat(sep=" ") if value is not None else None


def render(report: Dict[str, Any]) -> str:
    """The table for people."""
    lines = [report["path"]]

    def field(label: str, value: Any) -> None:
        lines.append(f"  {label:<14}{value}")

    flavor = report["flavor"] or "unknown dumper (no header)"
    if report["dump_version"]:
        flavor += f" dump {report['dump_version']} (distribution {report['distribution']})"
    field("dumper", flavor)
    field("server", report["server_version"] or "unknown")
    field("compression", report["compression"])
    field(
        "dumped at",
        f"{report['completed_at']} (trailer)" if report["completed_at"] else "unknown (no trailer)",
    )
    if report["error"]:
        kind = (
            "TRUNCATED"
            if report["error_kind"] in ("TruncatedDumpError", "CorruptArchiveError")
            else "UNREADABLE"
        )
        field("ended", f"{kind}: {report['error']}")
    elif report["ended_cleanly"]:
        field("ended", "cleanly (trailer present)")
    else:
        field("ended", "unknown: no header or trailer to tell (--compact or --skip-comments)")
    settings = [
        f"SQL_MODE {report['sql_mode']!r}" if report["sql_mode"] is not None else "SQL_MODE not set",
        f"SET NAMES {report['character_set']}" if report["character_set"] else "no SET NAMES",
        f"TIME_ZONE {report['time_zone']}" if report["time_zone"] else "no TIME_ZONE",
    ]
    field("settings", "; ".join(settings))
    blazar = report["blazar_schema"]
    if blazar is None:
        field("Blazar", "no computehost_extra_capabilities table")
    else:
        field("Blazar", blazar["layout"] or f"unknown layout (columns: {', '.join(blazar['columns'])})")
    audit = report["audit_log"]
    if audit is None:
        field("audit log", f"none (no {AUDIT_DATABASE} database)")
    else:
        rows = sum(t["rows"] for t in audit["tables"].values())
        since = f"from {audit['since']} ({audit['since_from']})" if audit["since"] else "no dated rows"
        field("audit log", f"{AUDIT_DATABASE}: {len(audit['tables'])} table(s), {rows} row(s), {since}")
    n_tables = sum(len(d["tables"]) for d in report["databases"])
    field("tables", f"{n_tables} in {len(report['databases'])} database(s), {report['row_count']} row(s)")
    width = max([len(t["name"]) for d in report["databases"] for t in d["tables"]] + [5])
    for database in report["databases"]:
        lines.append(f"    {database['name'] or '(database not named)'}")
        for table in database["tables"]:
            lines.append(f"      {table['name']:<{width}}  {table['rows']:>12,}")
    return "\n".join(lines)


@dataclass(frozen=True)
class InspectRequest:
    """One ``inspect`` run, as the command line asked for it."""

    dumps: Tuple[str, ...]
    as_json: bool = False


def handle(args: argparse.Namespace) -> int:
    return run_inspect(InspectRequest(dumps=tuple(args.dumps), as_json=args.json))


def run_inspect(request: InspectRequest) -> int:
    """Inspect each dump; 1 when any did not read to its end."""
    reports = []
    as_json = request.as_json
    for i, path in enumerate(request.dumps):
        report = inspect_dump(path)
        reports.append(report)
        if not as_json:
            print(("\n" if i else "") + render(report), flush=True)
    if as_json:
        json.dump(reports, sys.stdout, indent=1)
        print()
    failed = [r for r in reports if r["error"]]
    for report in failed:
        print(f"starcompactor: error: {report['error']}", file=sys.stderr)
    return 1 if failed else 0
