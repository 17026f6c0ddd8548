"""``starcompactor report``: the numbers behind every plot, from traces of known shape, in every format.

Machine traces come from the checked-in fixture histories (tests/fixtures/machines, whose events
test_machines.py spells out); instance traces are written by the real writers from events laid out
by hand below (and, once, read from a real MariaDB through the database source). The expected numbers
are worked out by hand from those shapes, not taken from this code.
"""

from __future__ import annotations

import builtins
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional

import orjson
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from starcompactor.config import load_config
from starcompactor.errors import MissingDependencyError, StarCompactorError
from starcompactor.events import InstanceEvent
from starcompactor.instances import make_instance_trace
from starcompactor.machines import make_machine_trace
from starcompactor.mask import Masker, MaskingKey
from starcompactor.report import TraceReadError, make_report, summarize
from starcompactor.report.aggregate import (
    BUILD,
    TERMINATE,
    InstanceAggregator,
    duration_edges,
    time_grid,
)
from starcompactor.report.read import instance_tables, open_trace, text_chunks, to_micros
from tests.support.paths import MACHINE_FIXTURES, REPO

D = dt.datetime
EPOCH = D(2015, 9, 17)
FORMATS = ("csv", "legacy-csv", "jsonl", "parquet")
EXT = {"csv": "csv", "legacy-csv": "csv", "jsonl": "jsonl", "parquet": "parquet"}
VM_CONFIG = """\
[default]
nova_databases = nova,nova_cell0,nova_cell1
[kvm]
hypervisor_hostname_regex = ^(r\\d+)-n\\d+
rack_extract_group = 1
"""
#: the vm fixture's hosts (tests/test_machines.py) and their racks' ranks (r2 → 0, r9 → 1, r10 → 2)
A, B, C, DH, E, F = (
    "r2-n01.vm.example", "r10-n02.vm.example", "r9-n03.vm.example", "r10-n04.vm.example",
    "r2-n05.vm.example", "r9-n06.vm.example",
)  # fmt: skip
KEY = MaskingKey(b"report-test-key", "test")
OTHER_KEY = MaskingKey(b"another-key", "test")
REQUIRE_BROWSER = os.environ.get("CI", "").lower() == "true"


def us(*args: int) -> int:
    return to_micros(D(*args))


@pytest.fixture(autouse=True)
def _quiet(monkeypatch):
    monkeypatch.setenv("TQDM_DISABLE", "1")


# -- traces of known shape ---------------------------------------------------------------------------


def machine_trace(
    directory: Path, fmt: str = "csv", masker: Optional[Masker] = None, history: str = "vm"
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    out = directory / f"machines-{history}-{fmt}.{EXT[fmt]}"
    if history == "vm":
        (directory / "vm.config").write_text(VM_CONFIG)
        config, kind = load_config(str(directory / "vm.config")), "vm"
    else:
        config, kind = None, "baremetal"
    make_machine_trace(
        str(MACHINE_FIXTURES / history), str(out), instance_type=kind, config=config, fmt=fmt,
        masker=masker or Masker("none"), workers=1,
    )  # fmt: skip
    return out


def ev(uuid, event, start, finish, result, project, host) -> InstanceEvent:
    return InstanceEvent(uuid, event, start, finish, result, f"name-{uuid}", "user", project, host,
                         {"memory_mb": 2048, "root_gb": 20, "vcpus": 2})  # fmt: skip


S = "Success"
SCHEDULE = "conductor_schedule_and_build_instances"
#: Seven instances (see the module docstring): I1 built and deleted; I2 a failed build, then built on
#: another host; I3's build failed, then it was deleted (never alive); I4 and I5 were there before the
#: trace (no build in it), I4 deleted; I6 built, a failed delete, then deleted; I7 an unfinished event.
EVENTS = [
    ev("i1", SCHEDULE, D(2024, 1, 1, 10), D(2024, 1, 1, 10, 0, 2), S, "p1", A),
    ev("i1", BUILD, D(2024, 1, 1, 10, 0, 5), D(2024, 1, 1, 10, 0, 35), S, "p1", A),
    ev("i2", BUILD, D(2024, 1, 1, 11), D(2024, 1, 1, 11, 1), "Error", "p1", B),
    ev("i2", BUILD, D(2024, 1, 1, 11, 2), D(2024, 1, 1, 11, 3), S, "p1", A),
    ev("i3", SCHEDULE, D(2024, 1, 1, 12), D(2024, 1, 1, 12, 0, 1), S, "p1", C),
    ev("i3", BUILD, D(2024, 1, 1, 12, 0, 5), D(2024, 1, 1, 12, 0, 50), "Error", "p1", C),
    ev("i3", TERMINATE, D(2024, 1, 1, 13), D(2024, 1, 1, 13, 0, 4), S, "p1", C),
    ev("i1", "compute_reboot_instance", D(2024, 1, 2, 8), D(2024, 1, 2, 8, 0, 20), S, "p1", A),
    ev("i4", "compute_reboot_instance", D(2024, 1, 2, 9), D(2024, 1, 2, 9), S, "p2", DH),
    ev("i5", "compute_stop_instance", D(2024, 1, 2, 10), D(2024, 1, 2, 10, 0, 10), "Error", "p2", None),
    ev("i6", BUILD, D(2024, 1, 3, 9), D(2024, 1, 3, 9, 1), S, "p3", E),
    ev("i6", TERMINATE, D(2024, 1, 3, 10), D(2024, 1, 3, 10, 0, 3), "Error", "p3", E),
    ev("i6", TERMINATE, D(2024, 1, 3, 10, 5), D(2024, 1, 3, 10, 5, 2), S, "p3", E),
    ev("i1", TERMINATE, D(2024, 1, 3, 12), D(2024, 1, 3, 12, 0, 5), S, "p1", A),
    ev("i4", TERMINATE, D(2024, 1, 4), D(2024, 1, 4, 0, 0, 10), S, "p2", DH),
    ev("i7", "compute_resize_instance", D(2024, 1, 4, 1), None, None, "p3", "conductor-1"),
]
#: instances alive at an instant, by hand: I4, I5, I7 from the trace's first event (2024-01-01 10:00)
ALIVE = [
    (D(2024, 1, 1, 9, 59, 59), 0),
    (D(2024, 1, 1, 10), 3),
    (D(2024, 1, 1, 10, 0, 34), 3),
    (D(2024, 1, 1, 10, 0, 35), 4),  # I1's build finished
    (D(2024, 1, 1, 12, 0, 30), 5),  # + I2 (11:03); I3 never
    (D(2024, 1, 3, 9, 30), 6),  # + I6
    (D(2024, 1, 3, 10, 5, 2), 5),  # I6 deleted (its first delete failed)
    (D(2024, 1, 3, 12, 0, 5), 4),  # I1 deleted
    (D(2024, 1, 4, 0, 0, 10), 3),  # I4 deleted
    (D(2024, 1, 9), 3),
]


def instance_trace(directory: Path, fmt: str = "csv", masker: Optional[Masker] = None, events=EVENTS) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    out = directory / f"instances-{fmt}.{EXT[fmt]}"
    make_instance_trace(list(events), str(out), masker=masker or Masker("none"), epoch=EPOCH, fmt=fmt)
    return out


@pytest.fixture(scope="module")
def traces(tmp_path_factory):
    """Traces of the module, made once each: ``traces("machine", "csv")``, ``traces("instance", "jsonl")``."""
    made: Dict[tuple, Path] = {}

    def get(kind: str, fmt: str, history: str = "vm") -> Path:
        key = (kind, fmt, history)
        if key not in made:
            where = tmp_path_factory.mktemp(f"{kind}-{fmt}")
            made[key] = (
                machine_trace(where, fmt, history=history)
                if kind == "machine"
                else instance_trace(where, fmt)
            )
        return made[key]

    return get


@pytest.fixture(scope="module")
def vm_csv(traces) -> Path:
    return traces("machine", "csv")


@pytest.fixture(scope="module")
def both_report(tmp_path_factory):
    """One report over the vm machine trace and the instance trace, both masked with one key."""
    tmp = tmp_path_factory.mktemp("both")
    machines = machine_trace(tmp, "csv", Masker("hmac-sha256", KEY))
    instances = instance_trace(tmp, "csv", Masker("hmac-sha256", KEY))
    result = make_report(
        [str(machines), str(instances)], str(tmp / "report.html"), json_output=str(tmp / "report.json")
    )
    return tmp, result


# -- machines ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_hosts_alive_on_a_date_by_state_and_rack(traces, fmt):
    m = summarize([str(traces("machine", fmt))]).machines
    assert m.site == "vm" and m.rack_key == "rack" and m.events == 19
    # 2024-01-04 00:00: A, C, F enabled; B disabled since Jan 3; E deleted Jan 3 15:00; D not yet created
    t = us(2024, 1, 4)
    assert m.hosts_at(t) == {"enabled": 3, "disabled": 1, "deleted": 1}
    assert m.racks_at(t) == {("enabled", "0"): 1, ("enabled", "1"): 2, ("disabled", "2"): 1}
    # the same numbers in the plotted series (hourly here: 25 days)
    assert m.grid_step == 3600 * 10**6
    i = m.grid.index(t)
    assert {r: v[i] for r, v in m.by_state["enabled"].items()} == {"0": 1, "1": 2, "2": 0}
    # (SPEC §2 as revised: a host first seen enabled is ENABLEd at its CREATE, so only B was ever disabled)
    assert {r: v[i] for r, v in m.by_state["disabled"].items()} == {"2": 1}
    # 2024-01-06 12:00: E re-created and enabled at once, F deleted Jan 5, D enabled since Jan 4
    t = us(2024, 1, 6, 12)
    assert m.hosts_at(t) == {"enabled": 5, "disabled": 0, "deleted": 1}
    # before S1 every host created so far is enabled since its CREATE
    assert m.hosts_at(us(2023, 12, 31)) == {"enabled": 5, "disabled": 0, "deleted": 0}
    # the period runs to the last snapshot (the manifest's inputs), past the last event
    assert m.grid[-1] == us(2024, 1, 9, 3)


def test_capacity_at_an_instant(vm_csv):
    m = summarize([str(vm_csv)]).machines
    t = us(2024, 1, 4)
    # A 48/196608/400, B 32/131072/200 (disabled), C 64/262144/800, F 8/32768/50
    assert m.capacity_at(t) == {"vcpus": 152, "memory_mb": 622592, "disk_gb": 1450}
    assert m.capacity_at(t, enabled_only=True) == {"vcpus": 120, "memory_mb": 491520, "disk_gb": 1250}
    i = m.grid.index(t)
    assert [m.capacity[k][i] for k in ("vcpus_alive", "memory_mb_alive", "disk_gb_alive")] == [
        152,
        622592,
        1450,
    ]
    assert m.capacity["vcpus_enabled"][i] == 120
    # after A's UPDATE (48 → 56 vCPUs) and E's return with 24: A56 B32 C64 D16 E24, E enabled at its CREATE
    t = us(2024, 1, 6, 12)
    assert m.capacity_at(t)["vcpus"] == 192
    assert m.capacity["vcpus_alive"][m.grid.index(t)] == 192
    assert m.capacity["vcpus_enabled"][m.grid.index(t)] == 192


def test_events_per_week_by_type(vm_csv):
    m = summarize([str(vm_csv)]).machines
    weeks = [D(2023, 12, 11), D(2023, 12, 18), D(2023, 12, 25), D(2024, 1, 1)]  # Mondays
    assert m.weeks == [to_micros(w) for w in weeks]
    assert m.per_week == {
        "CREATE": [3, 2, 0, 2], "DELETE": [0, 0, 0, 2], "DISABLE": [0, 0, 0, 1], "ENABLE": [3, 2, 0, 3],
        "UPDATE": [0, 0, 0, 1],
    }  # fmt: skip
    assert m.empty_weeks() == [to_micros(D(2023, 12, 25))]


def test_host_timeline_strips(vm_csv):
    m = summarize([str(vm_csv)]).machines
    rows = {h.host: h for h in m.timeline}
    assert len(rows) == 6
    e = rows[E]
    assert [(s.start, s.end, s.state) for s in e.segments] == [  # enabled at each CREATE (SPEC §2)
        (us(2023, 12, 18, 11), us(2024, 1, 3, 15), "enabled"),
        (us(2024, 1, 3, 15), us(2024, 1, 6, 12), "deleted"),
        (us(2024, 1, 6, 12), None, "enabled"),
    ]
    assert m.recreated_hosts == [E]
    assert [h.host for h in m.timeline] == [A, E, C, F, B, DH]  # by rack (natural order), then creation
    limited = summarize([str(vm_csv)], max_hosts=2).machines
    assert [h.host for h in limited.timeline] == [A, E]
    assert limited.to_json()["timeline"] == {
        "shown": 2, "hosts": 6, "rows": limited.to_json()["timeline"]["rows"],
    }  # fmt: skip


def test_bare_metal_nodes_by_type(traces):
    m = summarize([str(traces("machine", "parquet", "bm_upstream"))]).machines
    assert m.site == "baremetal" and m.rack_key == "placement.rack"
    t = us(2024, 1, 4)  # N1 in maintenance since Jan 2, N3 never enabled yet, N2 and N4 enabled
    assert m.hosts_at(t) == {"enabled": 2, "disabled": 2, "deleted": 0}
    i = m.grid.index(t)
    assert {k: v[i] for k, v in m.node_types.items()} == {
        "compute_haswell": 1,
        "compute_skylake": 2,
        "storage": 1,
    }
    t = us(2024, 1, 6, 12)  # N2 deleted at the first snapshot without it (Jan 6 03:00)
    i = m.grid.index(t)
    assert {k: v[i] for k, v in m.node_types.items()} == {
        "compute_haswell": 0,
        "compute_skylake": 2,
        "storage": 1,
    }
    # N1 moved from rack 2 (rank 0) to rack 10 (rank 2) on Jan 6 10:00
    assert m.racks_at(t) == {("enabled", "2"): 1, ("enabled", "0"): 1, ("disabled", "2"): 1}


# -- instances --------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_instances_alive_at_an_instant(traces, fmt):
    s = summarize([str(traces("instance", fmt))]).instances
    assert [(when, s.alive_at(to_micros(when))) for when, _ in ALIVE] == ALIVE
    assert (s.instances, s.built, s.failed_builds, s.alive_at_start, s.deleted) == (7, 3, 1, 3, 3)
    # the plotted series: hourly from 2024-01-01 10:00 to 2024-01-04 01:00
    assert s.grid[0] == us(2024, 1, 1, 10) and s.grid[-1] == us(2024, 1, 4, 1)
    assert s.alive[s.grid.index(us(2024, 1, 1, 13))] == 5
    assert s.alive[s.grid.index(us(2024, 1, 3, 10))] == 6
    assert s.alive[s.grid.index(us(2024, 1, 3, 11))] == 5


@pytest.mark.parametrize("fmt", FORMATS)
def test_instance_events_per_day_errors_projects(traces, fmt):
    s = summarize([str(traces("instance", fmt))]).instances
    assert s.events == 16 and s.unfinished == 1 and s.no_start == 0
    assert s.days == [us(2024, 1, d) for d in (1, 2, 3, 4)]
    assert s.per_day == {
        BUILD: [4, 0, 1, 0],
        TERMINATE: [1, 0, 3, 1],
        SCHEDULE: [2, 0, 0, 0],
        "compute_reboot_instance": [0, 2, 0, 0],
        "compute_resize_instance": [0, 0, 0, 1],
        "compute_stop_instance": [0, 1, 0, 0],
    }
    assert s.event_names[:4] == [BUILD, TERMINATE, "compute_reboot_instance", SCHEDULE]  # ties by name
    assert s.results_per_day == [7, 3, 4, 1]  # I7's event has no result
    assert s.errors_per_day == [2, 1, 1, 0]
    assert s.results == {"Success": 11, "Error": 4, "(none)": 1}
    assert s.top_projects() == [("p1", 9), ("p3", 4), ("p2", 3)]
    assert s.empty_weeks() == []


def test_duration_distribution(traces):
    s = summarize([str(traces("instance", "csv"))]).instances
    edges = duration_edges()
    assert edges[23] == pytest.approx(10**1.4) and edges[24] == pytest.approx(10**1.6)
    builds = s.durations[BUILD]
    # builds took 30 s (I1) and 60, 60, 45, 60 s: one in [25.1, 39.8), four in [39.8, 63.1)
    assert (builds[23], builds[24], sum(builds)) == (1, 4, 5)
    assert s.durations["compute_reboot_instance"][0] == 1  # I4's reboot took 0 s
    assert "compute_resize_instance" not in s.durations  # unfinished: no duration
    assert s.quantile(BUILD, 0.5) == pytest.approx(10**1.8)  # the upper edge of [39.8, 63.1)
    assert s.negative_durations == 0


# -- both -------------------------------------------------------------------------------------------


def test_join_with_the_same_key(both_report):
    _, result = both_report
    j = result.join
    # I5's event has no host, I7's ran on a conductor: every other event's host is a machine host
    assert (j.events, j.joined, j.unjoined, j.no_host) == (16, 14, 1, 1)
    assert j.key == "same" and j.fingerprints == (KEY.fingerprint, KEY.fingerprint)
    assert (j.machine_hosts, j.hosts, j.hosts_joined) == (6, 6, 5)
    assert j.unjoined_top == [(Masker("hmac-sha256", KEY)("conductor-1"), 1)]


def test_join_with_different_keys_says_so(tmp_path, both_report):
    machines = next(both_report[0].glob("machines-*.csv"))
    instances = instance_trace(tmp_path, "jsonl", Masker("hmac-sha256", OTHER_KEY))
    result = make_report([str(instances), str(machines)], str(tmp_path / "r.html"))
    j = result.join
    assert (j.joined, j.unjoined, j.no_host, j.key) == (0, 15, 1, "different")
    assert j.fingerprints == (KEY.fingerprint, OTHER_KEY.fingerprint)
    assert any(level == "bad" and "different keys" in text for level, text in
               [(c["level"], c["text"]) for c in result.numbers["checks"]])  # fmt: skip
    page = Path(result.output).read_text()
    assert OTHER_KEY.fingerprint in page and "different keys" in page


def test_json_summary_holds_the_numbers(both_report):
    tmp, result = both_report
    data = json.loads((tmp / "report.json").read_text())
    assert data == json.loads(orjson.dumps(result.numbers))
    assert data["join"]["joined"] == 14
    m = data["machines"]
    i = m["hosts_over_time"]["times"].index("2024-01-04T00:00:00")
    assert m["hosts_over_time"]["by_state"]["enabled"]["1"][i] == 2
    assert m["events_per_week"]["counts"]["ENABLE"] == [3, 2, 0, 3]
    ins = data["instances"]
    assert ins["events_per_day"]["days"] == ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"]
    assert ins["errors_per_day"]["rate"][0] == pytest.approx(2 / 7)
    assert ins["instances"] == {
        "seen": 7,
        "built_in_trace": 3,
        "failed_builds": 1,
        "alive_at_start": 3,
        "deleted": 3,
    }
    assert [t["manifest"]["masking"]["key_fingerprint"] for t in data["traces"]] == [KEY.fingerprint] * 2


# -- the page ---------------------------------------------------------------------------------------


def svgs(page: str) -> List[str]:
    return re.findall(r"<svg .*?</svg>", page, re.S)


def test_page_is_self_contained_with_titled_plots_units_and_tables(both_report):
    tmp, result = both_report
    page = Path(result.output).read_text()
    assert page.startswith("<!DOCTYPE html>")
    # offline: nothing to fetch, no scripts
    assert "<script" not in page and "<link" not in page and "<img" not in page
    assert not re.search(r"""(?:src|href)=["']?(?:https?:)?//|url\((?:["']?)(?:https?:)?//|@import""", page)
    figures = re.findall(r'<figure id="([^"]+)"><h3>([^<]+)</h3>(.*?)</figure>', page, re.S)
    keys = [k for k, _, _ in figures]
    assert keys == ["hosts", "capacity", "machine-weeks", "timeline", "alive", "instance-days", "durations",
                    "errors", "projects", "join"]  # fmt: skip
    for key, title, body in figures:
        assert title.strip(), key
        svg = re.search(r"<svg .*?</svg>", body, re.S).group(0)
        root = ET.fromstring(svg)  # well-formed XML
        texts = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
        assert "<table>" in body and "<td" in body, key  # the numbers under the plot
        units = {
            "hosts": ["hosts", "time (UTC)"], "capacity": ["vCPUs", "RAM (GiB)", "disk (TB)"],
            "machine-weeks": ["events per week"], "timeline": ["time (UTC)"], "alive": ["instances"],
            "instance-days": ["events per day"], "durations": ["duration (log scale", "1 s", "1 min"], "errors": ["(%)"],
            "projects": ["events"], "join": ["instance events"],
        }[key]  # fmt: skip
        for unit in units:
            assert unit in texts, (key, unit)
    # svg ids are unique across the page (several SVGs share one document)
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids))
    # the summary table comes first
    assert page.index('id="summary"') < page.index('id="hosts"')


def test_same_traces_give_the_same_bytes(tmp_path, both_report):
    tmp, first = both_report
    paths = [str(t.path) for t in first.traces]
    again = make_report(paths, str(tmp_path / "again.html"), json_output=str(tmp_path / "again.json"))
    assert Path(again.output).read_bytes() == Path(first.output).read_bytes()
    assert (tmp_path / "again.json").read_bytes() == (tmp / "report.json").read_bytes()


def test_page_stays_small_on_a_busy_year(tmp_path):
    """A year of 12,000 events: the page holds aggregates, not events."""
    import random

    rnd = random.Random(7)
    events = []
    for n in range(1200):
        start = D(2023, 1, 1) + dt.timedelta(seconds=rnd.randrange(365 * 86400))
        events.append(ev(f"u{n}", BUILD, start, start + dt.timedelta(seconds=40), S, f"p{n % 50}", A))
        for k in range(9):
            at = start + dt.timedelta(hours=k + 1)
            events.append(
                ev(f"u{n}", "compute_reboot_instance", at, at + dt.timedelta(seconds=k), S, f"p{n % 50}", B)
            )
    result = make_report([str(instance_trace(tmp_path, events=events))], str(tmp_path / "r.html"))
    assert result.instances.events == 12000 and len(result.instances.days) == 366
    assert result.size < 600_000


# -- reading ----------------------------------------------------------------------------------------


def test_parquet_row_groups_too_big_to_read_whole_are_read_in_batches(traces, monkeypatch):
    from starcompactor.report import read

    whole = summarize([str(traces("instance", "parquet"))]).instances
    monkeypatch.setattr(read, "PARQUET_GROUP_ROWS", 2)
    batched = summarize([str(traces("instance", "parquet"))]).instances
    assert batched.to_json() == whole.to_json()
    assert batched.alive_at(us(2024, 1, 3, 9, 30)) == 6


def test_format_and_kind_are_told_by_the_file(traces, vm_csv):
    for fmt in FORMATS:
        trace = open_trace(str(traces("instance", fmt)))
        assert (trace.kind, trace.fmt) == ("instance", fmt)
        assert trace.manifest is not None and trace.manifest["trace"] == "instance"
    assert open_trace(str(vm_csv)).kind == "machine"


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty file"),
        (b"a,b,c\n1,2,3\n", "not a starcompactor trace"),
        (b'{"x": 1}\n', "not a starcompactor trace"),
        (b"{not json\n", "not a jsonl trace"),
    ],
)
def test_what_is_not_a_trace_is_one_line_naming_the_file(tmp_path, content, message):
    path = tmp_path / "thing.csv"
    path.write_bytes(content)
    with pytest.raises(TraceReadError) as info:
        make_report([str(path)], str(tmp_path / "r.html"))
    text = str(info.value)
    assert text.startswith(str(path)) and message in text and "\n" not in text
    assert not (tmp_path / "r.html").exists()


def test_missing_directory_and_bad_manifest(tmp_path, vm_csv):
    with pytest.raises(TraceReadError, match="no such file"):
        open_trace(str(tmp_path / "nope.csv"))
    with pytest.raises(TraceReadError, match="is a directory"):
        open_trace(str(tmp_path))
    trace = tmp_path / "m.csv"
    shutil.copy(vm_csv, trace)
    Path(str(trace) + ".manifest.json").write_text("{broken")
    with pytest.raises(TraceReadError, match=r"m\.csv\.manifest\.json: manifest is not JSON"):
        open_trace(str(trace))
    Path(str(trace) + ".manifest.json").write_text('{"trace": "instance"}')
    with pytest.raises(TraceReadError, match="says a instance trace, the columns say machine"):
        open_trace(str(trace))


def test_a_bad_row_names_the_file_and_leaves_no_page(tmp_path):
    trace = instance_trace(tmp_path)
    with open(trace, "a") as handle:
        handle.write("only,three,fields\n")
    out = tmp_path / "r.html"
    out.write_text("the previous report")
    with pytest.raises(TraceReadError) as info:
        make_report([str(trace)], str(out))
    assert str(info.value).startswith(f"{trace}: cannot read csv trace")
    assert out.read_text() == "the previous report"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temporary left


def test_legacy_properties_are_read_as_literals_never_run(tmp_path, traces):
    legacy = tmp_path / "legacy.csv"
    text = traces("machine", "legacy-csv").read_bytes().decode()
    assert "{'rack': " in text and "\r\n" in text
    marker = tmp_path / "ran"
    evil = text.replace("{'rack': 0", f"__import__('os').system('touch {marker}') or {{'rack': 0", 1)
    legacy.write_bytes(evil.encode())
    with pytest.raises(
        TraceReadError, match=r"legacy\.csv: row \d+: PROPERTIES is not a Python dict literal"
    ):
        summarize([str(legacy)])
    assert not marker.exists()


def test_two_traces_of_one_kind_are_refused(tmp_path, vm_csv):
    other = tmp_path / "again.csv"
    shutil.copy(vm_csv, other)
    with pytest.raises(StarCompactorError, match="a second machine trace"):
        summarize([str(vm_csv), str(other)])


@hsettings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    # no bare CR: the csv writer leaves one unquoted (Python's csv quotes only its line terminator)
    names=st.lists(st.text(alphabet='ab,"\n x', max_size=8), min_size=1, max_size=12),
    chunk=st.integers(min_value=1, max_value=700),
)
def test_pieces_never_cut_a_quoted_field(tmp_path, names, chunk):
    """Unmasked names may hold commas, quotes and line ends: every piece ends outside quotes, and the
    rows read back are the rows written, whatever the piece size."""
    events = [
        ev(f"u{i}", BUILD, D(2024, 1, 1, 0, i), D(2024, 1, 1, 0, i, 5), S, "p", "h")
        for i in range(len(names))
    ]
    events = [e._replace(instance_name=n or None) for e, n in zip(events, names)]
    trace = instance_trace(tmp_path / f"c{chunk}", "csv", events=events)
    body = trace.read_bytes().split(b"\n", 1)[1]
    pieces = [bytes(p) for p in text_chunks(str(trace), chunk, skip_header=True, quotes=True)]
    assert b"".join(pieces) == body
    assert all(p.count(b'"') % 2 == 0 for p in pieces)
    read = open_trace(str(trace))
    tables = list(instance_tables(read, ["INSTANCE_UUID", "INSTANCE_NAME"], chunk_bytes=chunk))
    got = [(u, n) for t in tables for u, n in zip(t.column(0).to_pylist(), t.column(1).to_pylist())]
    assert got == [(e.instance_uuid, e.instance_name) for e in events]


def reference_alive(events: List[InstanceEvent], when: dt.datetime) -> int:
    """The documented rule, written plainly: alive from the first successful build's finish to the first
    successful terminate's finish; no creation step in the trace: from the trace's first event."""
    first = min(e.start_time for e in events if e.start_time is not None)
    alive = 0
    for uuid in {e.instance_uuid for e in events}:
        mine = [e for e in events if e.instance_uuid == uuid]

        def done(e):
            return e.finish_time or e.start_time

        created = any(e.event in (BUILD, SCHEDULE) for e in mine)
        builds = [done(e) for e in mine if e.event == BUILD and e.result == S and done(e)]
        ends = [done(e) for e in mine if e.event == TERMINATE and e.result == S and done(e)]
        if created and not builds:
            continue
        born = min(builds) if created else first
        dead = max(min(ends), born) if ends else None
        if born <= when and (dead is None or when < dead):
            alive += 1
    return alive


@hsettings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(
        st.tuples(
            st.integers(0, 5), st.sampled_from([BUILD, SCHEDULE, TERMINATE, "compute_reboot_instance"]),
            st.integers(0, 4 * 86400), st.one_of(st.none(), st.integers(0, 7200)),
            st.sampled_from([S, "Error", None]),
        ),
        min_size=1, max_size=25,
    ),
    probes=st.lists(st.integers(-3600, 5 * 86400), min_size=1, max_size=6),
    group=st.integers(1, 8),
)  # fmt: skip
def test_alive_and_day_counts_match_a_plain_count(tmp_path, rows, probes, group):
    base = D(2024, 3, 1)
    events = [
        ev(f"u{u}", name, base + dt.timedelta(seconds=s), None if f is None else base + dt.timedelta(seconds=s + f),
           result, "p", "h")
        for u, name, s, f, result in rows
    ]  # fmt: skip
    trace = open_trace(str(instance_trace(tmp_path / "h", "csv", events=events)))
    aggregator = InstanceAggregator(group_rows=group)  # small groups: the per-instance merge runs often
    for table in instance_tables(trace, aggregator.columns, chunk_bytes=300):
        aggregator.add(table)
    s = aggregator.finish()
    for probe in probes:
        when = base + dt.timedelta(seconds=probe)
        assert s.alive_at(to_micros(when)) == reference_alive(events, when)
    per_day = Counter((e.start_time.date(), e.event) for e in events)
    got = {(dt.date(1970, 1, 1) + dt.timedelta(days=d // (86400 * 10**6)), name): n
           for name, values in s.per_day.items() for d, n in zip(s.days, values) if n}  # fmt: skip
    assert got == dict(per_day)


def test_time_grid_steps():
    hour, day, week = 3600 * 10**6, 86400 * 10**6, 7 * 86400 * 10**6
    step, grid = time_grid(us(2024, 1, 1, 10, 30), us(2024, 1, 2, 1))
    assert step == hour and grid[0] == us(2024, 1, 1, 10) and grid[-1] == us(2024, 1, 2, 1)
    step, grid = time_grid(us(2020, 1, 1), us(2023, 1, 1, 5))
    assert step == day and grid[-1] == us(2023, 1, 2)
    step, grid = time_grid(us(2010, 1, 6), us(2024, 1, 1))
    assert step == week and dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=grid[0]) == D(
        2010, 1, 4
    )  # a Monday


# -- the database path ------------------------------------------------------------------------------


@pytest.mark.mariadb
def test_a_trace_from_the_database_reads_back(mariadb, tmp_path):
    """The database source formats rows without making events (its own line path): the report reads its
    trace back to the numbers of the rows inserted."""
    from starcompactor.instances import DatabaseSource, DbSettings

    cell = "report_nova"
    mariadb.sql(f"DROP DATABASE IF EXISTS `{cell}`")
    mariadb.load_schema("nova.sql", database=cell)
    try:
        mariadb.sql(
            f"INSERT INTO `{cell}`.instances (id, uuid, hostname, user_id, project_id, host, node, memory_mb, "
            "root_gb, vcpus, deleted) VALUES (1, 'j1', 'a', 'u', 'pa', 'c1', 'c1.example', 1, 1, 1, 0), "
            "(2, 'j2', 'b', 'u', 'pb', 'c1', 'c1.example', 1, 1, 1, 0);"
            f"INSERT INTO `{cell}`.instance_actions (id, created_at, instance_uuid, request_id) VALUES "
            "(1, '2024-02-01', 'j1', 'r1'), (2, '2024-02-02', 'j1', 'r2'), (3, '2024-02-01', 'j2', 'r3');"
            f"INSERT INTO `{cell}`.instance_actions_events (id, event, action_id, start_time, finish_time, result) VALUES "
            f"(1, '{BUILD}', 1, '2024-02-01 00:00:00', '2024-02-01 00:00:30', 'Success'), "
            f"(2, '{TERMINATE}', 2, '2024-02-02 12:00:00', '2024-02-02 12:00:05', 'Success'), "
            f"(3, '{BUILD}', 3, '2024-02-01 06:00:00', '2024-02-01 06:01:00', 'Error');"
        )
        out = tmp_path / "db.csv"
        source = DatabaseSource(DbSettings(socket=mariadb.socket, user="root"), [cell])
        make_instance_trace(source, str(out), masker=Masker("hmac-sha256", KEY), epoch=EPOCH, fmt="csv")
        s = summarize([str(out)]).instances
    finally:
        mariadb.sql(f"DROP DATABASE IF EXISTS `{cell}`")
    assert (s.events, s.instances, s.built, s.failed_builds, s.deleted) == (3, 2, 1, 1, 1)
    assert s.alive_at(us(2024, 2, 1, 0, 0, 30)) == 1
    assert s.alive_at(us(2024, 2, 2, 12, 0, 5)) == 0
    assert s.per_day == {BUILD: [2, 0], TERMINATE: [0, 1]}
    assert s.errors_per_day == [1, 0]
    assert s.top_projects() == [(Masker("hmac-sha256", KEY)("pa"), 2), (Masker("hmac-sha256", KEY)("pb"), 1)]


# -- command line, extras, browser ------------------------------------------------------------------


def test_cli_writes_the_page_and_json(both_report, tmp_path, capsys):
    from starcompactor.cli import main

    tmp, _ = both_report
    machines = next(tmp.glob("machines-*.csv"))
    instances = next(tmp.glob("instances-*.csv"))
    code = main(["report", str(machines), str(instances), "-o", str(tmp_path / "p.html"),
                 "--json", str(tmp_path / "p.json"), "--title", "Chameleon <test>"])  # fmt: skip
    assert code == 0
    assert "wrote" in capsys.readouterr().err
    page = (tmp_path / "p.html").read_text()
    assert "<title>Chameleon &lt;test&gt;</title>" in page
    assert json.loads((tmp_path / "p.json").read_text())["join"]["joined"] == 14
    with pytest.raises(SystemExit) as exit_:
        main(["report", "--help"])
    assert exit_.value.code == 0 and capsys.readouterr().out.startswith("usage: starcompactor report")


def test_cli_error_is_one_line_and_writes_nothing(tmp_path, capsys):
    from starcompactor.cli import main

    assert main(["report", str(tmp_path / "missing.csv"), "-o", str(tmp_path / "p.html")]) == 1
    assert capsys.readouterr().err == f"starcompactor: error: {tmp_path / 'missing.csv'}: no such file\n"
    assert list(tmp_path.iterdir()) == []


def test_missing_matplotlib_names_the_extra(monkeypatch, tmp_path, vm_csv):
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(MissingDependencyError) as info:
        make_report([str(vm_csv)], str(tmp_path / "r.html"))
    assert "pip install 'starcompactor[report]'" in str(info.value)
    assert not (tmp_path / "r.html").exists()


def test_import_stays_light():
    code = "import sys, starcompactor.cli, starcompactor.report; print([m for m in ('pyarrow', 'numpy', 'matplotlib') if m in sys.modules])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def _chromium() -> Optional[str]:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if shutil.which(name):
            return name
    return None


def test_the_page_opens_in_a_headless_browser(both_report, tmp_path):
    """scripts/screenshot_report.py: no console message, every SVG built by the browser, a non-blank
    screenshot. Skipped where no Chromium is installed, except in CI (.ci/run installs it)."""
    if _chromium() is None:
        reason = "no chromium installed (apt-get install chromium)"
        if REQUIRE_BROWSER:
            pytest.fail(f"{reason}, but CI=true")
        pytest.skip(reason)
    tmp, result = both_report
    png = tmp_path / "report.png"
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "screenshot_report.py"), result.output, "-o", str(png)],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    found: Dict[str, object] = json.loads(done.stdout)
    assert found["problems"] == [] and found["console"] == []
    assert found["elements"] == {
        "svg": 10,
        "figure": 10,
        "path": Path(result.output).read_text().count("<path"),
    }
    assert png.stat().st_size > 10_000 and found["colours"] > 100  # type: ignore[operator]
