"""``starcompactor report``: one HTML page of plots from the traces (:func:`starcompactor.report.make_report`)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .common import add_logging_arguments

DESCRIPTION = (
    "One self-contained HTML page (opens offline: no server, no scripts, plots inline as SVG) of plots of "
    "a machine trace, an instance trace, or both: hosts and capacity over time, events per week and per "
    "day, a timeline per host, instances alive, durations, errors, projects, whether the traces join, and "
    "what their manifests say."
)
EPILOG = (
    "Any format the trace commands write (csv, legacy-csv, jsonl, parquet) is read, with the "
    "OUTPUT.manifest.json beside it when there is one. Needs: pip install 'starcompactor[report]'."
)


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("report", help="an HTML page of plots of the traces",
                                   description=DESCRIPTION, epilog=EPILOG)  # fmt: skip
    parser.add_argument("traces", nargs="+", metavar="TRACE",
                        help="a machine trace, an instance trace, or one of each")  # fmt: skip
    parser.add_argument("-o", "--output", default="report.html", metavar="PATH",
                        help="the page to write, or - for stdout (default report.html)")  # fmt: skip
    parser.add_argument("--json", dest="json_output", metavar="PATH",
                        help="also write every number behind the plots as JSON")  # fmt: skip
    parser.add_argument("--title", help="the page's title (default 'Trace report')")
    parser.add_argument("--rack-key", metavar="NAME",
                        help="the machine PROPERTIES key holding the rack (default: 'rack', else one ending in 'rack')")  # fmt: skip
    parser.add_argument("--max-hosts", type=int, default=300, metavar="N",
                        help="hosts in the per-host timeline (default 300)")  # fmt: skip
    add_logging_arguments(parser)
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    """Run the report command with parsed arguments."""
    from ..report import make_report

    result = make_report(
        args.traces, args.output, json_output=args.json_output, title=args.title, rack_key=args.rack_key,
        max_hosts=args.max_hosts,
    )  # fmt: skip
    if not args.quiet and args.output != "-":
        kinds = " and ".join(f"{t.kind} trace {t.name}" for t in result.traces)
        print(
            f"starcompactor: wrote {args.output} ({result.size / 1e6:.1f} MB) from the {kinds}",
            file=sys.stderr,
        )
    return 0
