"""Make a large instance trace (csv, our format) of N events directly, for ``benchmarks/report.py``.

Going through a database takes minutes per million events; the report reads the *file*, so this writes
the file: instance lifecycles are drawn with numpy (a build, a scheduling step, a few reboots / stops /
starts / resizes, most ending in a terminate), sorted by start time as the database path writes them,
and formatted a million rows at a time with pyarrow's string kernels. The first rows are checked
against ``starcompactor.traces.lines.instance_csv_lines`` (the writer itself), so the file is byte for byte
what ``starcompactor instances`` writes for the same events. Masked columns are 32 hex digits, as
hmac-sha256 gives; the manifest says ``hmac-sha256`` with a made-up key fingerprint.

Files are cached in ``benchmarks/data/`` keyed by N, seed and generator version.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Callable, Dict, List

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
GEN_VERSION = 2

EPOCH = dt.datetime(2015, 9, 17)
START = dt.datetime(2022, 1, 1)
SPAN_DAYS = 730
HOSTS = 300
PROJECTS = 400
USERS = 1500
CHUNK = 1_000_000

#: event name, median duration (s), error share
BUILD = ("compute__do_build_and_run_instance", 35.0, 0.04)
SCHEDULE = ("conductor_schedule_and_build_instances", 2.0, 0.01)
TERMINATE = ("compute_terminate_instance", 6.0, 0.005)
MIDDLE = [
    ("compute_reboot_instance", 25.0, 0.01),
    ("compute_stop_instance", 12.0, 0.005),
    ("compute_start_instance", 8.0, 0.005),
    ("compute_resize_instance", 90.0, 0.03),
    ("compute_snapshot_instance", 180.0, 0.02),
]
EVENTS = [BUILD, SCHEDULE, TERMINATE, *MIDDLE]
FLAVORS = [(2048, 20, 1), (4096, 40, 2), (8192, 80, 4), (16384, 160, 8), (32768, 320, 16)]


def trace_path(events: int, seed: int = 1) -> Path:
    return DATA / f"instances-{events}-s{seed}-v{GEN_VERSION}.csv"


def _hex_ids(rng, count: int) -> List[str]:
    raw = rng.integers(0, 256, size=(count, 16), dtype="uint8")
    return [row.tobytes().hex() for row in raw]


def generate(path: Path, events: int, seed: int = 1, log: Callable[[str], None] = print) -> Dict[str, int]:
    """Write an instance trace of exactly ``events`` events to ``path`` (and its manifest)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from starcompactor.traces import INSTANCE_COLUMNS
    from starcompactor.traces.lines import instance_csv_lines

    rng = np.random.default_rng(seed)
    instances = max(events // 10, 1)
    span = SPAN_DAYS * 86400
    birth = np.sort(rng.uniform(0, span, instances)).astype(np.int64)
    life = np.exp(rng.normal(np.log(3 * 86400), 2.0, instances)).astype(np.int64) + 120
    terminated = (rng.random(instances) < 0.9) & (birth + life < span)  # the others outlive the trace
    death = np.where(terminated, birth + life, np.int64(span))
    middle = events - 2 * instances - int(terminated.sum())
    if middle < 0:
        raise SystemExit(f"{events} events are too few for {instances} instances")
    inst = np.concatenate([
        np.arange(instances), np.arange(instances), np.flatnonzero(terminated),
        rng.integers(0, instances, middle),
    ])  # fmt: skip
    kind = np.concatenate([
        np.full(instances, 1, np.int8), np.zeros(instances, np.int8), np.full(int(terminated.sum()), 2, np.int8),
        rng.integers(3, 3 + len(MIDDLE), middle).astype(np.int8),
    ])  # fmt: skip
    medians = np.array([e[1] for e in EVENTS])
    duration = np.maximum(np.exp(rng.normal(np.log(medians[kind]), 0.8)).astype(np.int64), 0)
    start = birth[inst].copy()
    start[kind == 0] += 3  # the build follows the scheduling step
    is_term = kind == 2
    start[is_term] = death[inst[is_term]]
    mid = kind >= 3
    low, high = birth[inst[mid]] + 60, np.minimum(death[inst[mid]], span)
    start[mid] = low + (rng.random(int(mid.sum())) * np.maximum(high - low, 1)).astype(np.int64)
    errors = rng.random(events) < np.array([e[2] for e in EVENTS])[kind]
    order = np.argsort(start, kind="stable")
    inst, kind, start, duration, errors = (
        inst[order],
        kind[order],
        start[order],
        duration[order],
        errors[order],
    )
    log(f"{instances:,} instances, {events:,} events; formatting …")

    uuids = pa.array(_hex_ids(rng, instances))
    names = pa.array(_hex_ids(rng, instances))
    host_ids = pa.array(_hex_ids(rng, HOSTS))
    project_ids = pa.array(_hex_ids(rng, PROJECTS))
    user_ids = pa.array(_hex_ids(rng, USERS))
    # Zipf-like projects: a few big ones, a long tail
    project_of = np.minimum(rng.zipf(1.6, instances) - 1, PROJECTS - 1)
    user_of = (project_of * 7 + rng.integers(0, 4, instances)) % USERS
    host_of = rng.integers(0, HOSTS, instances)
    flavor_of = rng.integers(0, len(FLAVORS), instances)
    flavor_text = pa.array([
        '"' + json.dumps({"memory_mb": m, "root_gb": r, "vcpus": v}, separators=(",", ":")).replace('"', '""') + '"'
        for m, r, v in FLAVORS
    ])  # fmt: skip
    event_names = pa.array([e[0] for e in EVENTS])
    base = int((START - EPOCH).total_seconds())
    unix = int((START - dt.datetime(1970, 1, 1)).total_seconds())
    header = ",".join(c if "," not in c else f'"{c}"' for c in INSTANCE_COLUMNS) + "\n"
    counts: Dict[str, int] = {}
    tmp = path.with_name(path.name + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(tmp, "wb") as out:
        out.write(header.encode())
        for lo in range(0, events, CHUNK):
            sl = slice(lo, lo + CHUNK)
            i, k, s, d, e = inst[sl], kind[sl], start[sl], duration[sl], errors[sl]
            ts = pa.array(s + unix, pa.timestamp("s"))
            tf = pa.array(s + d + unix, pa.timestamp("s"))
            fmt = "%Y-%m-%dT%H:%M:%S"
            cols = [
                uuids.take(pa.array(i)), event_names.take(pa.array(k)),
                pc.strftime(ts, format=fmt), pa.array(s + base).cast(pa.string()),
                pc.strftime(tf, format=fmt), pa.array(s + d + base).cast(pa.string()),
                pa.array(d).cast(pa.string()), pc.if_else(pa.array(e), "Error", "Success"),
                names.take(pa.array(i)), user_ids.take(pa.array(user_of[i])),
                project_ids.take(pa.array(project_of[i])), host_ids.take(pa.array(host_of[i])),
                flavor_text.take(pa.array(flavor_of[i])),
            ]  # fmt: skip
            lines = pc.binary_join_element_wise(*cols, ",")
            lines = pc.binary_join_element_wise(lines, pa.scalar("\n"), "")
            if lo == 0:  # the first rows: the writer's own lines, byte for byte
                _check(lines[:2000].to_pylist(), cols, instance_csv_lines(EPOCH))
            for chunk in lines.chunks if isinstance(lines, pa.ChunkedArray) else [lines]:
                out.write(_string_bytes(chunk))
            for name, n in zip(*np.unique(k, return_counts=True)):
                key = EVENTS[int(name)][0]
                counts[key] = counts.get(key, 0) + int(n)
            log(f"  {min(lo + CHUNK, events):,} events")
    os.replace(tmp, path)
    first = START + dt.timedelta(seconds=int(start[0]))
    last = START + dt.timedelta(seconds=int(start[-1]))
    manifest = {
        "tool": "starcompactor", "version": "benchmark", "trace": "instance", "format": "csv",
        "epoch": EPOCH.isoformat(), "masking": {"method": "hmac-sha256", "key_fingerprint": "0123456789abcdef"},
        "inputs": [{"generator": "benchmarks/_trace_gen.py", "seed": seed}], "counts": dict(sorted(counts.items())),
        "events": events, "time_range": {"first": first.isoformat(), "last": last.isoformat()},
        "instance_type": "vm",
    }  # fmt: skip
    Path(str(path) + ".manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return counts


def _string_bytes(array) -> bytes:
    """The concatenated values of a string array (its data buffer between the first and last offset)."""
    import numpy as np

    offsets = np.frombuffer(array.buffers()[1], dtype=np.int32)[array.offset : array.offset + len(array) + 1]
    return array.buffers()[2].to_pybytes()[offsets[0] : offsets[-1]]


def _check(rows: List[str], cols, line: Callable[..., str]) -> None:
    """The first rows as the real writer formats them: the same bytes."""
    for n, row in enumerate(rows):
        uuid, event, start, _, finish, _, _, result, name, user, project, host, props = (
            c[n].as_py() for c in cols
        )
        properties = json.loads(props[1:-1].replace('""', '"'))
        expected = line(
            uuid, event, dt.datetime.fromisoformat(start), dt.datetime.fromisoformat(finish), result, name,
            user, project, host, properties,
        )  # fmt: skip
        if expected != row:
            raise SystemExit(f"generator row {n} differs from the writer's:\n{row!r}\n{expected!r}")


def ensure_instance_trace(events: int, seed: int = 1, log: Callable[[str], None] = print) -> Path:
    """The cached trace of ``events`` events (generated on first use)."""
    path = trace_path(events, seed)
    if not path.exists():
        log(f"generating {path} …")
        generate(path, events, seed, log)
    return path
