"""The HTML page: one file, no scripts, no links out; plots inline as SVG, their numbers in tables.

Nothing here depends on the time of the run, so the same traces give the same bytes.
"""

from __future__ import annotations

import html
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .aggregate import InstanceSummary, JoinSummary, MachineSummary
from .plots import Plot, Table, rack_label, short
from .read import TraceFile, iso

CSS = """
:root { --ink: #1d2733; --muted: #5b6775; --line: #dde3ea; --band: #f5f7fa; --warn: #b45309; --bad: #b91c1c;
        --ok: #15803d; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif;
       color: var(--ink); background: #fff; }
main { max-width: 1120px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 40px 0 8px; padding-bottom: 4px; border-bottom: 2px solid var(--line); }
h3 { font-size: 16px; margin: 0 0 6px; }
p.sub, figcaption, .note { color: var(--muted); font-size: 13.5px; }
code, .mono { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12.5px; }
nav { margin: 14px 0 0; font-size: 14px; }
nav a { margin-right: 14px; color: #1d4ed8; text-decoration: none; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border-bottom: 1px solid var(--line); padding: 3px 10px 3px 0; text-align: left; vertical-align: top; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
table.summary th[scope=row] { color: var(--muted); font-weight: 500; width: 170px; }
table.summary td { min-width: 260px; }
figure { margin: 22px 0 30px; padding: 14px 16px 10px; border: 1px solid var(--line); border-radius: 6px; }
svg.plot { display: block; width: 100%; height: auto; }
details { margin-top: 8px; }
details > summary { cursor: pointer; color: #1d4ed8; font-size: 13.5px; }
.scroll { max-height: 420px; overflow: auto; margin-top: 6px; border: 1px solid var(--line); padding: 0 8px; }
.scroll table th { position: sticky; top: 0; background: #fff; }
ul.checks { padding-left: 0; list-style: none; }
ul.checks li { padding: 5px 10px; margin: 4px 0; border-left: 4px solid var(--line); background: var(--band); }
ul.checks li.warn { border-color: var(--warn); }
ul.checks li.bad { border-color: var(--bad); }
ul.checks li.ok { border-color: var(--ok); }
table.kv > tbody > tr > td:first-child { color: var(--muted); white-space: nowrap; padding-right: 16px; }
#manifests h3 { margin-top: 26px; }
footer { margin-top: 40px; color: var(--muted); font-size: 12.5px; }
"""


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _number(value: Any) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.6g}"
    return esc(value)


def _cell(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f'<td class="n">{_number(value)}</td>'
    return f"<td>{esc(value)}</td>"


def render_table(table: Table, css: str = "") -> str:
    head = "".join(f"<th>{esc(c)}</th>" for c in table.columns)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in table.rows)
    cls = f' class="{css}"' if css else ""
    return f"<table{cls}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_plot(plot: Plot) -> str:
    parts = [f'<figure id="{esc(plot.key)}"><h3>{esc(plot.title)}</h3>']
    if plot.svg:
        parts.append(plot.svg)
    for note in plot.notes:
        parts.append(f'<p class="note">{esc(note)}</p>')
    if plot.caption:
        parts.append(f"<figcaption>{esc(plot.caption)}</figcaption>")
    if plot.table is not None and plot.table.rows:
        rows = len(plot.table.rows)
        parts.append(
            f"<details><summary>The numbers ({rows:,} row{'s' if rows != 1 else ''})</summary>"
            f'<div class="scroll">{render_table(plot.table)}</div>'
        )
        if plot.table.note:
            parts.append(f'<p class="note">{esc(plot.table.note)}</p>')
        parts.append("</details>")
    parts.append("</figure>")
    return "\n".join(parts)


# -- summary and checks -----------------------------------------------------------------------------


def _range(first: Optional[int], last: Optional[int]) -> str:
    if first is None:
        return "—"
    return f"{iso(first)} → {iso(last)}"


def summary_table(
    traces: Sequence[TraceFile], machines: Optional[MachineSummary], instances: Optional[InstanceSummary]
) -> str:
    rows: List[Tuple[str, List[str]]] = [
        ("file", [f'<span class="mono">{esc(t.name)}</span>' for t in traces]),
        ("trace", [esc(t.kind) for t in traces]),
        ("format", [esc(t.fmt) for t in traces]),
    ]
    events, span, counted, masking, version = [], [], [], [], []
    for trace in traces:
        manifest = trace.manifest or {}
        mask = manifest.get("masking") or {}
        if trace.kind == "machine" and machines is not None:
            events.append(_number(machines.events))
            span.append(esc(_range(machines.first, machines.last)))
            site = "bare metal" if machines.site == "baremetal" else "vm"
            counted.append(
                f"{_number(len(machines.hosts))} hosts ({site}), {_number(len(machines.racks))} racks"
            )
        elif instances is not None:
            events.append(_number(instances.events))
            span.append(esc(_range(instances.first, instances.last)))
            counted.append(
                f"{_number(instances.instances)} instances, {_number(len(instances.projects))} projects, "
                f"{_number(len([h for h in instances.hosts if h]))} hosts"
            )
        if trace.manifest is None:
            masking.append("unknown (no manifest)")
            version.append("—")
        else:
            fingerprint = mask.get("key_fingerprint")
            masking.append(
                esc(mask.get("method", "?"))
                + (f', key <span class="mono">{esc(fingerprint)}</span>' if fingerprint else "")
            )
            version.append(esc(f"{manifest.get('tool', '')} {manifest.get('version', '')}".strip()))
    rows += [("events", events), ("time range (UTC)", span), ("contents", counted), ("masking", masking),
             ("written by", version)]  # fmt: skip
    body = "".join(
        f'<tr><th scope="row">{esc(name)}</th>' + "".join(f"<td>{v}</td>" for v in values) + "</tr>"
        for name, values in rows
    )
    return f'<table class="summary">{body}</table>'


def _day(value: int) -> str:
    return str(iso(value))[:10]


def _list(items: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def checks(
    traces: Sequence[TraceFile], machines: Optional[MachineSummary], instances: Optional[InstanceSummary],
    joined: Optional[JoinSummary],
) -> List[Tuple[str, str]]:  # fmt: skip
    """Things a reader should look at before publishing: (level, text), level ok / info / warn / bad."""
    out: List[Tuple[str, str]] = []
    for trace in traces:
        skipped = (trace.manifest or {}).get("skipped")
        if isinstance(skipped, list) and skipped:
            names = [str(s.get("name", s)) if isinstance(s, dict) else str(s) for s in skipped]
            out.append(
                ("warn", f"{trace.name}: {len(skipped)} dump(s) skipped as unreadable: {_list(names)}")
            )
        if trace.manifest is None:
            out.append(
                ("info", f"{trace.name}: no manifest beside it (tool, masking key and inputs unknown)")
            )
    if machines is not None:
        if machines.anomalies:
            out.append(("bad", f"{len(machines.anomalies)} machine event(s) that do not fit their host's state, "
                               f"e.g. {machines.anomalies[0]}"))  # fmt: skip
        back = machines.recreated_hosts
        if back:
            out.append(
                ("warn", f"{len(back)} host(s) deleted and created again: {_list([short(h) for h in back])}")
            )
        for rack, last in machines.vanished_racks():
            out.append(("warn", f"{rack_label(rack, machines.rack_key)} has no hosts after {iso(last)}"))
        empty = machines.empty_weeks()
        if empty:
            out.append(
                ("info", f"{len(empty)} week(s) without machine events: {_list([_day(w) for w in empty])}")
            )
    if instances is not None:
        empty = instances.empty_weeks()
        if empty:
            out.append(("warn", f"{len(empty)} week(s) without instance events inside the trace's range: "
                                f"{_list([_day(w) for w in empty])}"))  # fmt: skip
        if instances.no_start:
            out.append(("warn", f"{instances.no_start:,} instance event(s) without a START_TIME"))
        if instances.negative_durations:
            out.append(
                ("bad", f"{instances.negative_durations:,} instance event(s) finish before they start")
            )
        if instances.unfinished:
            out.append(("info", f"{instances.unfinished:,} instance event(s) without a FINISH_TIME"))
    if joined is not None:
        if joined.key == "different":
            out.append(("bad", "the traces were masked with different keys: their hosts cannot be joined "
                               f"({joined.joined:,} of {joined.events:,} instance events join)"))  # fmt: skip
        elif joined.unjoined:
            level = "warn" if joined.key == "same" else "info"
            out.append((level, f"{joined.unjoined:,} instance event(s) on {joined.hosts - joined.hosts_joined:,} "
                               "host(s) that are not in the machine trace"))  # fmt: skip
    if not out:
        out.append(("ok", "Nothing unusual found."))
    return out


def render_checks(items: Sequence[Tuple[str, str]]) -> str:
    return (
        '<ul class="checks">'
        + "".join(f'<li class="{esc(level)}">{esc(text)}</li>' for level, text in items)
        + "</ul>"
    )


# -- join and manifests -----------------------------------------------------------------------------


def join_details(joined: JoinSummary) -> str:
    verdict = {
        "same": "same key",
        "different": "different keys",
        "unknown": "unknown (a manifest is missing)",
    }
    rows: List[List[Any]] = [
        ["masking method", joined.methods[0] or "—", joined.methods[1] or "—"],
        ["key fingerprint", joined.fingerprints[0] or "—", joined.fingerprints[1] or "—"],
        ["hosts", joined.machine_hosts, joined.hosts],
        ["hosts in both traces", joined.machine_hosts_used, joined.hosts_joined],
    ]
    table = render_table(Table(["", "machine trace", "instance trace"], rows))
    text = f"<p>Keys: <strong>{esc(verdict[joined.key])}</strong>. {joined.joined:,} of {joined.events:,} instance events join.</p>"
    if joined.unjoined_top:
        missing = render_table(
            Table(
                ["host not in the machine trace", "instance events"], [list(x) for x in joined.unjoined_top]
            )
        )
        text += f"<details><summary>Hosts that join nothing (top {len(joined.unjoined_top)})</summary>{missing}</details>"
    return text + table


def _value(value: Any, depth: int = 0) -> str:
    if isinstance(value, dict):
        if not value:
            return "—"
        rows = "".join(f"<tr><td>{esc(k)}</td><td>{_value(v, depth + 1)}</td></tr>" for k, v in value.items())
        return f'<table class="kv">{rows}</table>'
    if isinstance(value, list):
        if not value:
            return "none"
        if all(isinstance(v, dict) for v in value):
            return _records(value)
        return esc(
            ", ".join(str(v) for v in value[:20]) + (f" … ({len(value)} in all)" if len(value) > 20 else "")
        )
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _number(value)
    return "—" if value is None else esc(value)


def _records(records: List[Dict[str, Any]], head: int = 4, tail: int = 3) -> str:
    columns: List[str] = []
    for record in records:
        columns += [k for k in record if k not in columns]
    shown = records if len(records) <= head + tail + 1 else records[:head] + records[-tail:]
    rows = [[_flat(r.get(c)) for c in columns] for r in shown]
    if len(shown) < len(records):
        rows.insert(head, [f"… {len(records) - len(shown)} more"] + [""] * (len(columns) - 1))
    return f"{len(records)} in all" + render_table(Table(columns, rows))


def _flat(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        import orjson

        return orjson.dumps(value).decode()
    return "" if value is None else value


def manifest_section(trace: TraceFile) -> str:
    title = f'<h3><span class="mono">{esc(trace.name)}</span></h3>'
    if trace.manifest is None:
        return title + f'<p class="note">No manifest ({esc(trace.name)}.manifest.json) beside this trace.</p>'
    keys = ["tool", "version", "trace", "format", "instance_type", "epoch", "masking", "time_range", "events",
            "counts", "skipped", "skipped_unfinished", "config", "backup_dir", "inputs"]  # fmt: skip
    ordered = [k for k in keys if k in trace.manifest] + [k for k in trace.manifest if k not in keys]
    rows = "".join(f"<tr><td>{esc(k)}</td><td>{_value(trace.manifest[k])}</td></tr>" for k in ordered)
    return title + f'<table class="kv">{rows}</table>'


# -- the page ---------------------------------------------------------------------------------------

SECTION_TITLES = {"machines": "Machines", "instances": "Instances", "join": "Both traces"}


def render_page(
    traces: Sequence[TraceFile], sections: Dict[str, List[Plot]], machines: Optional[MachineSummary],
    instances: Optional[InstanceSummary], joined: Optional[JoinSummary], *, title: str, version: str,
) -> str:  # fmt: skip
    nav = ['<a href="#summary">Summary</a>'] + [
        f'<a href="#{key}-section">{esc(SECTION_TITLES[key])}</a>' for key in sections
    ] + ['<a href="#manifests">Manifests</a>']  # fmt: skip
    body = [
        f"<h1>{esc(title)}</h1>",
        '<p class="sub">' + " · ".join(f'<span class="mono">{esc(t.name)}</span>' for t in traces) + "</p>",
        "<nav>" + "".join(nav) + "</nav>",
        '<section id="summary"><h2>Summary</h2>',
        summary_table(traces, machines, instances),
        '<h3 style="margin-top:18px">Worth a look</h3>',
        render_checks(checks(traces, machines, instances, joined)),
        "</section>",
    ]
    for key, plots in sections.items():
        body.append(f'<section id="{key}-section"><h2>{esc(SECTION_TITLES[key])}</h2>')
        if key == "join" and joined is not None:
            body.append(join_details(joined))
        body.extend(render_plot(p) for p in plots)
        body.append("</section>")
    body.append('<section id="manifests"><h2>Manifests</h2>')
    body.extend(manifest_section(t) for t in traces)
    body.append("</section>")
    body.append(f"<footer>Made by starcompactor {esc(version)} from {len(traces)} trace file(s). "
                "Times are UTC. Masked ids are shortened in plots; the tables hold them whole.</footer>")  # fmt: skip
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n"
        + "\n".join(body)
        + "\n</main>\n</body>\n</html>\n"
    )
