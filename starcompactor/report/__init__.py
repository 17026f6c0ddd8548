"""Traces → one self-contained HTML page of plots (``starcompactor report``).

:func:`make_report` reads a machine trace, an instance trace or both (any format, with their
manifests), aggregates them while reading (:mod:`.read`, :mod:`.aggregate`), draws the plots as inline
SVG (:mod:`.plots`) and writes the page (:mod:`.page`) atomically, plus, on request, every number behind
the plots as JSON. Needs the ``report`` extra (pyarrow, numpy, matplotlib), imported only when used.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

from .read import CHUNK_BYTES, TraceFile, TraceReadError

log = logging.getLogger(__name__)

__all__ = ["CHUNK_BYTES", "ReportResult", "Summaries", "TraceReadError", "make_report", "summarize"]


@dataclass
class ReportResult:
    """What a report holds: the page written, and the numbers behind it (as in ``--json``)."""

    output: str
    json_output: Optional[str]
    traces: List[TraceFile]
    machines: Any  #: MachineSummary or None
    instances: Any  #: InstanceSummary or None
    join: Any  #: JoinSummary or None
    numbers: Dict[str, Any]
    size: int


@dataclass
class Summaries:
    """The traces read and aggregated: what every plot and number of the page comes from."""

    traces: List[TraceFile]
    machines: Any  #: MachineSummary or None
    instances: Any  #: InstanceSummary or None
    join: Any  #: JoinSummary or None


def summarize(
    traces: Sequence[str],
    *,
    rack_key: Optional[str] = None,
    max_hosts: int = 300,
    chunk_bytes: int = CHUNK_BYTES,
) -> Summaries:
    """Read and aggregate ``traces`` (paths: at most one machine and one instance trace), no plotting."""
    from ..errors import StarCompactorError
    from .aggregate import InstanceAggregator, aggregate_machines, join_traces
    from .read import arrow, instance_tables, machine_records, open_trace

    arrow()
    if not traces:
        raise StarCompactorError("report: give a machine trace, an instance trace, or both")
    if max_hosts < 1:
        raise StarCompactorError(f"report: --max-hosts must be at least 1, not {max_hosts}")
    files = [open_trace(path) for path in traces]
    for kind in ("machine", "instance"):
        same = [f.path for f in files if f.kind == kind]
        if len(same) > 1:
            raise StarCompactorError(
                f"{same[1]}: a second {kind} trace (after {same[0]}): give at most one of each"
            )
    machine_file = next((f for f in files if f.kind == "machine"), None)
    instance_file = next((f for f in files if f.kind == "instance"), None)
    machines = instances = joined = None
    if machine_file is not None:
        log.info("reading the machine trace %s", machine_file.path)
        machines = aggregate_machines(
            machine_records(machine_file, chunk_bytes), manifest=machine_file.manifest, rack_key=rack_key,
            max_hosts=max_hosts,
        )  # fmt: skip
    if instance_file is not None:
        log.info("reading the instance trace %s", instance_file.path)
        aggregator = InstanceAggregator()
        for table in instance_tables(instance_file, aggregator.columns, chunk_bytes):
            aggregator.add(table)
        instances = aggregator.finish()
    if machines is not None and instances is not None:
        joined = join_traces(
            machines, instances, machine_file.manifest if machine_file else None,
            instance_file.manifest if instance_file else None,
        )  # fmt: skip
    return Summaries(files, machines, instances, joined)


def make_report(
    traces: Sequence[str],
    output: str = "report.html",
    *,
    json_output: Optional[str] = None,
    title: Optional[str] = None,
    rack_key: Optional[str] = None,
    max_hosts: int = 300,
    chunk_bytes: int = CHUNK_BYTES,
) -> ReportResult:
    """Write the report page of ``traces`` (paths: at most one machine and one instance trace) to
    ``output`` (``-``: stdout), and the numbers to ``json_output`` when given. Nothing is written when
    a trace cannot be read."""
    from .._version import __version__
    from ..traces.atomic import atomic_output
    from .page import checks, render_page
    from .plots import all_plots, matplotlib_modules

    matplotlib_modules()  # the missing-extra error before any reading
    found = summarize(traces, rack_key=rack_key, max_hosts=max_hosts, chunk_bytes=chunk_bytes)
    files, machines, instances, joined = found.traces, found.machines, found.instances, found.join
    sections = all_plots(machines, instances, joined)
    page = render_page(
        files, sections, machines, instances, joined,
        title=title or "Trace report", version=__version__,
    )  # fmt: skip
    numbers: Dict[str, Any] = {
        "tool": {"name": "starcompactor", "version": __version__},
        "traces": [
            {"file": f.name, "trace": f.kind, "format": f.fmt, "bytes": f.size, "manifest": f.manifest}
            for f in files
        ],
        "machines": machines.to_json() if machines is not None else None,
        "instances": instances.to_json() if instances is not None else None,
        "join": joined.to_json() if joined is not None else None,
        "checks": [
            {"level": level, "text": text} for level, text in checks(files, machines, instances, joined)
        ],
    }
    data = page.encode("utf-8")
    if json_output is not None:
        import orjson

        with atomic_output(json_output, binary=True) as handle:
            handle.write(orjson.dumps(numbers, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE))
    with atomic_output(output, binary=True) as handle:
        handle.write(data)
    log.info("wrote %s (%d bytes)", output, len(data))
    return ReportResult(output, json_output, files, machines, instances, joined, numbers, len(data))
