"""Trace writers (SPEC §3): legacy-csv byte for byte, csv, jsonl, parquet, atomic output, manifest."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from starcompactor.events import InstanceEvent, MachineEvent
from starcompactor.traces import base_manifest, open_writer, write_manifest

EPOCH = dt.datetime(2015, 9, 17)
D = dt.datetime
MACHINE = [
    MachineEvent(
        D(2015, 9, 16),
        "h0",
        "CREATE",
        {"rack": 1, "vcpu_capability": 8, "memory_capability_mb": 512, "disk_capability_gb": 1},
    ),
    MachineEvent(
        D(2015, 9, 27),
        "h1",
        "CREATE",
        {"rack": 0, "vcpu_capability": 48, "memory_capability_mb": 196608, "disk_capability_gb": 400},
    ),
    MachineEvent(D(2015, 9, 27, 0, 0, 1, 500000), "h1", "DELETE", {}),
]

#: Written out by hand from the original's formatter: str() of every cell, float seconds, -1 before the
#: epoch, dict repr (quoted by csv because of its commas), "{'rack': None}" on DELETE rows, CRLF.
LEGACY_MACHINE = (
    b"EVENT_TIME,EVENT_TIME_SEC,HOST_NAME (PHYSICAL),EVENT,PROPERTIES\r\n"
    b"2015-09-16T00:00:00,-1,h0,CREATE,\"{'rack': 1, 'vcpu_capability': 8, 'memory_capability_mb': 512, "
    b"'disk_capability_gb': 1}\"\r\n"
    b"2015-09-27T00:00:00,864000.0,h1,CREATE,\"{'rack': 0, 'vcpu_capability': 48, 'memory_capability_mb': 196608, "
    b"'disk_capability_gb': 400}\"\r\n"
    b"2015-09-27T00:00:01.500000,864001.5,h1,DELETE,{'rack': None}\r\n"
)

INSTANCE = InstanceEvent(
    "u-1",
    "compute__do_build_and_run_instance",
    D(2015, 9, 16, 23, 59, 58),
    D(2015, 9, 17, 0, 0, 2),
    None,
    'vm, "one"',
    "user",
    "proj",
    "h1",
    {"memory_mb": 512, "root_gb": 1, "vcpus": 1},
)
LEGACY_INSTANCE = (
    b"INSTANCE_UUID,EVENT,START_TIME,START_SEC,FINISH_TIME,FINISH_SEC,EVENT_DURATION,RESULT,INSTANCE_NAME,USER_ID,"
    b"PROJECT_ID,HOST_NAME (PHYSICAL),PROPERTIES\r\n"
    b"u-1,compute__do_build_and_run_instance,2015-09-16T23:59:58,-2.0,2015-09-17T00:00:02,2.0,4.0,None,"
    b'"vm, ""one""",user,proj,h1,"{\'memory_mb\': 512, \'root_gb\': 1, \'vcpus\': 1}"\r\n'
)


def write(path, kind, fmt, events, rack_key=None):
    with open_writer(str(path), kind, fmt, EPOCH, rack_key=rack_key) as writer:
        writer.write_all(events)
    return writer


def test_legacy_csv_machine_bytes(tmp_path):
    write(tmp_path / "m.csv", "machine", "legacy-csv", MACHINE, rack_key="rack")
    assert (tmp_path / "m.csv").read_bytes() == LEGACY_MACHINE


def test_legacy_csv_instance_bytes(tmp_path):
    write(tmp_path / "i.csv", "instance", "legacy-csv", [INSTANCE])
    assert (tmp_path / "i.csv").read_bytes() == LEGACY_INSTANCE


def test_legacy_properties_eval_back(tmp_path):
    import ast
    import csv

    write(tmp_path / "m.csv", "machine", "legacy-csv", MACHINE, rack_key="rack")
    with open(tmp_path / "m.csv", newline="") as handle:
        rows = list(csv.reader(handle))[1:]
    assert [ast.literal_eval(r[4]) for r in rows] == [
        MACHINE[0].properties,
        MACHINE[1].properties,
        {"rack": None},
    ]


def test_csv_default_mode(tmp_path):
    write(tmp_path / "m.csv", "machine", "csv", MACHINE)
    lines = (tmp_path / "m.csv").read_bytes().split(b"\n")
    assert lines[1] == (
        b'2015-09-16T00:00:00,-1,h0,CREATE,"{""rack"":1,""vcpu_capability"":8,'
        b'""memory_capability_mb"":512,""disk_capability_gb"":1}"'
    )
    assert lines[2].startswith(b"2015-09-27T00:00:00,864000,h1,CREATE,")
    assert lines[3] == b"2015-09-27T00:00:01.500000,864001.5,h1,DELETE,{}"


def test_jsonl(tmp_path):
    write(tmp_path / "m.jsonl", "machine", "jsonl", MACHINE)
    records = [orjson.loads(line) for line in (tmp_path / "m.jsonl").read_bytes().splitlines()]
    assert records[1] == {
        "EVENT_TIME": "2015-09-27T00:00:00",
        "EVENT_TIME_SEC": 864000,
        "HOST_NAME (PHYSICAL)": "h1",
        "EVENT": "CREATE",
        "PROPERTIES": MACHINE[1].properties,
    }


def test_parquet_typed_columns(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    write(tmp_path / "m.parquet", "machine", "parquet", MACHINE)
    table = pq.read_table(tmp_path / "m.parquet")
    assert str(table.schema.field("EVENT_TIME").type).startswith("timestamp")
    assert table.column("EVENT_TIME_SEC").to_pylist() == [-1.0, 864000.0, 864001.5]
    assert orjson.loads(table.column("PROPERTIES").to_pylist()[1]) == MACHINE[1].properties


def test_failed_write_leaves_nothing(tmp_path):
    class Boom(Exception):
        pass

    target = tmp_path / "m.csv"
    with pytest.raises(Boom), open_writer(str(target), "machine", "csv", EPOCH) as writer:
        writer.write(MACHINE[0])
        raise Boom()
    assert list(tmp_path.iterdir()) == []


def test_manifest(tmp_path):
    writer = write(tmp_path / "m.csv", "machine", "csv", MACHINE)
    manifest = base_manifest(
        "machine",
        epoch=EPOCH,
        fmt="csv",
        masking_method="hmac-sha256",
        key_fingerprint="abcd",
        writer=writer,
        inputs=[{"name": "x", "snapshot_time": D(2024, 1, 1)}],
    )
    path = write_manifest(str(tmp_path / "m.csv"), manifest)
    data = orjson.loads(Path(path).read_bytes())
    assert data["counts"] == {"CREATE": 2, "DELETE": 1} and data["events"] == 3
    assert data["time_range"] == {"first": "2015-09-16T00:00:00", "last": "2015-09-27T00:00:01.500000"}
    assert data["inputs"] == [{"name": "x", "snapshot_time": "2024-01-01T00:00:00"}]
    assert data["masking"] == {"method": "hmac-sha256", "key_fingerprint": "abcd"}
    assert write_manifest("-", manifest) is None


# -- the fast csv path against csv.writer --------------------------------------------------------------


_times = st.one_of(
    st.none(),
    st.datetimes(min_value=D(1970, 1, 1), max_value=D(2100, 1, 1)),
    st.datetimes(min_value=D(2015, 9, 16), max_value=D(2015, 9, 18)).map(lambda d: d.replace(microsecond=0)),
)
_texts = st.one_of(
    st.none(), st.text(max_size=12), st.sampled_from(["a,b", 'q"q', "l\nl", "r\rr", "", "Success"])
)
_instance_events = st.builds(
    InstanceEvent,
    _texts,
    _texts,
    _times,
    _times,
    _texts,
    _texts,
    _texts,
    _texts,
    _texts,
    st.one_of(st.just({}), st.dictionaries(st.sampled_from(["memory_mb", "vcpus"]), st.integers(0, 10**6))),
)
_epochs = st.sampled_from([EPOCH, D(2015, 9, 17, 13, 5, 7), D(2015, 9, 17, 0, 0, 0, 250000)])


@settings(max_examples=300, deadline=None)
@given(st.lists(_instance_events, max_size=20), _epochs)
def test_csv_instance_lines_equal_csv_writer_output(events, epoch):
    """csv lines built without csv.writer (and times without isoformat) are what csv.writer writes."""
    import csv
    import io

    from starcompactor.traces.lines import csv_instance_row as _csv_instance_row
    from starcompactor.traces.lines import instance_line_formatter

    expected = []
    for event in events:
        # csv.writer quotes a field holding a line-terminator character: CRLF makes a bare \r count too
        row = io.StringIO()
        csv.writer(row, lineterminator="\r\n").writerow(_csv_instance_row(event, epoch))
        expected.append(row.getvalue()[:-2] + "\n")
    format_lines = instance_line_formatter("csv", epoch)
    assert "".join(format_lines(events)) == "".join(expected)
    assert "".join(format_lines(events)) == "".join(expected)  # again, from the caches


def test_epoch_clock_matches_datetime_arithmetic():
    from starcompactor.times import EpochClock

    for epoch in (EPOCH, D(2015, 9, 17, 13, 5, 7)):
        clock = EpochClock(epoch)
        for time in (D(1999, 12, 31, 23, 59, 59), epoch, D(2015, 9, 17, 13, 5, 6), D(2024, 2, 29, 0, 0, 1)):
            seconds = int((time - epoch).total_seconds())
            assert clock.stamp(time) == (time.isoformat(), -1 if seconds < 0 else seconds, seconds)


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.sampled_from('ab,"\r\n \t\x00é'), min_size=1, max_size=12))
def test_csv_fields_read_back_whatever_they_hold(tmp_path_factory, text):
    """A field with a bare carriage return (or any csv character) is quoted, so the row reads back."""
    import csv

    tmp = tmp_path_factory.mktemp("csv")
    epoch = dt.datetime(2015, 9, 17)
    machine = MachineEvent(dt.datetime(2024, 1, 1), text, "CREATE", {"rack": text})
    instance = InstanceEvent(
        text, "compute_start_instance", dt.datetime(2024, 1, 1), None, text, text, "u", "p", text
    )
    for kind, event, column in (("machine", machine, 2), ("instance", instance, 0)):
        out = tmp / f"{kind}.csv"
        with open_writer(str(out), kind, "csv", epoch) as writer:
            writer.write_all([event])
        with open(out, newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
        assert len(rows) == 2 and rows[1][column] == text


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=10), st.sampled_from(["CREATE", "UPDATE"]), _texts), max_size=12))
def test_machine_csv_lines_from_one_csv_writer_equal_fresh_ones(tmp_path_factory, events):
    """The machine csv writer keeps one csv.writer for all its lines: each is what a fresh one writes."""
    from starcompactor.traces.lines import csv_line_maker, csv_quoted_line

    rows = [[host, event, rack or ""] for host, event, rack in events]
    line = csv_line_maker()
    assert [line(row) for row in rows] == [csv_quoted_line(row) for row in rows]
    out = tmp_path_factory.mktemp("csv") / "machine.csv"
    epoch = dt.datetime(2015, 9, 17)
    machines = [
        MachineEvent(D(2024, 1, 1, 0, i), h or "h", e, {"rack": r}) for i, (h, e, r) in enumerate(events)
    ]
    with open_writer(str(out), "machine", "csv", epoch) as writer:
        writer.write_all(machines)
    written = out.read_bytes().decode("utf-8")
    expected = [
        csv_quoted_line(["EVENT_TIME", "EVENT_TIME_SEC", "HOST_NAME (PHYSICAL)", "EVENT", "PROPERTIES"])
    ]
    for m in machines:
        seconds = int((m.time - epoch).total_seconds())
        expected.append(
            csv_quoted_line(
                [m.time.isoformat(), seconds, m.host, m.event, orjson.dumps(m.properties).decode()]
            )
        )
    assert written == "".join(expected)
