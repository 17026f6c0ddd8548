"""The audit rows' own rules: time text, JSON values, row making, backfill runs (property tests)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from starcompactor.audit.records import (
    AuditLog,
    AuditRow,
    TableLayout,
    in_batches,
    json_time,
    json_value,
    parse_time_text,
    row_maker,
)
from starcompactor.errors import AuditLogError

D = dt.datetime
times = st.datetimes(min_value=D(1971, 1, 1), max_value=D(2100, 1, 1))
ints = st.integers(min_value=-(2**63), max_value=2**63 - 1)  # what JSON columns and orjson hold
zones = st.integers(min_value=-14 * 60, max_value=14 * 60).map(lambda m: dt.timezone(dt.timedelta(minutes=m)))


@given(times, st.sampled_from([" ", "T"]))
def test_time_text_as_servers_write_it(value, sep):
    assert parse_time_text(value.isoformat(sep=sep)) == value
    # MySQL 8 writes JSON datetimes with six digits always
    assert parse_time_text(value.strftime(f"%Y-%m-%d{sep}%H:%M:%S.%f")) == value


@given(times, zones, st.booleans())
def test_zoned_time_text_becomes_naive_utc(value, zone, zulu):
    aware = value.replace(tzinfo=dt.timezone.utc).astimezone(zone)
    text = aware.isoformat()
    if zulu:
        text = value.isoformat() + "Z"
    assert parse_time_text(text) == value


@given(st.text(max_size=20).filter(lambda t: not t[:1].isdigit()))
def test_text_that_is_not_a_time(text):
    assert parse_time_text(text) is None
    assert json_time(text) is None


def test_json_time_passes_null_and_datetimes():
    assert json_time(None) is None
    assert json_time(D(2024, 1, 1)) == D(2024, 1, 1)
    assert json_time(5) is None
    assert json_time("2024-03-06 00:21:00") == D(2024, 3, 6, 0, 21)


@given(times)
def test_json_value_of_a_time_reads_back(value):
    assert json_time(json_value(value)) == value


def test_json_value_like_json_object():
    assert json_value(D(2024, 1, 1, 3)) == "2024-01-01 03:00:00"
    assert json_value(dt.date(2024, 1, 1)) == "2024-01-01"
    assert json_value(Decimal("1.0")) == 1 and json_value(Decimal("1.5")) == 1.5
    assert json_value(b"abc") == "abc" and json_value(None) is None and json_value(7) == 7


COLUMNS_JSON = [
    "audit_id",
    "id",
    "audit_event_type",
    "audit_event_time",
    "audit_changed_by",
    "audit_changed_at",
    "data",
]


@given(
    st.integers(min_value=1, max_value=2**31),
    st.one_of(st.none(), ints, st.text(max_size=36)),
    st.sampled_from(["INSERT", "UPDATE", "DELETE"]),
    times,
    times,
    st.dictionaries(
        st.text(min_size=1, max_size=8),
        st.one_of(st.none(), ints, st.text(max_size=8)),
        min_size=1,
        max_size=5,
    ),
)
def test_row_maker_json_and_column_wise_agree(audit_id, ident, kind, event_time, changed_at, data):
    """The same change stored with a data column and column-wise gives the same row (less event time)."""
    import orjson

    data = {k: v for k, v in data.items() if k not in COLUMNS_JSON} or {"x": 1}
    data_form = TableLayout.of("src", "t", COLUMNS_JSON)
    row = row_maker(data_form, "src")(
        [audit_id, ident, kind, event_time, "u", changed_at, orjson.dumps(data)]
    )
    assert row == AuditRow(
        "t", audit_id, None if ident is None else str(ident), kind, event_time, "u", changed_at, data
    )
    captured = ["audit_id", "id", *data, "audit_event_type", "audit_changed_by", "audit_changed_at"]
    early = TableLayout.of("src", "t", captured)
    assert early.select == (
        "audit_id",
        "id",
        "audit_event_type",
        "audit_changed_by",
        "audit_changed_at",
        "id",
        *data,
    )
    values = [audit_id, ident, kind, "u", changed_at, ident, *data.values()]
    early_row = row_maker(early, "src")(values)
    assert early_row.event_time == changed_at
    assert early_row.data == {"id": ident, **data}


def test_layouts_that_are_not_audit_tables():
    with pytest.raises(
        AuditLogError, match="src: table openstack_audit.audit_t: not an audit table: no column audit_id"
    ):
        TableLayout.of("src", "t", ["id", "audit_event_type", "audit_changed_at", "data"])
    with pytest.raises(AuditLogError, match="no data column and no captured columns"):
        TableLayout.of("src", "t", ["audit_id", "id", "audit_event_type", "audit_changed_at"])


def _log(rows):
    layout = TableLayout.of("src", "t", COLUMNS_JSON)
    return AuditLog("src", "test", {"t": layout}, lambda _layout: in_batches(rows, 3))


def _row(i, by, at):
    return AuditRow("t", i, str(i), "INSERT", at, by, at, {})


@given(
    st.lists(st.tuples(st.booleans(), st.integers(min_value=0, max_value=30 * 24 * 60)), max_size=60),
    st.integers(min_value=1, max_value=600),
)
def test_backfill_runs_partition_the_backfill_writes(writes, gap_minutes):
    start, gap = D(2024, 1, 1), dt.timedelta(minutes=gap_minutes)
    rows = [
        _row(i, "backfill" if b else "nova@h", start + dt.timedelta(minutes=m))
        for i, (b, m) in enumerate(writes)
    ]
    log = _log(rows)
    runs = log.backfill_runs(gap)
    stamps = sorted(r.changed_at for r in rows if r.is_backfill)
    assert sum(r.rows for r in runs) == len(stamps)
    for run in runs:
        inside = [s for s in stamps if run.started <= s <= run.ended]
        assert len(inside) == run.rows
        assert all(b - a <= gap for a, b in zip(inside, inside[1:]))
    assert all(b.started - a.ended > gap for a, b in zip(runs, runs[1:]))
    firsts = [r.changed_at for r in rows]
    if stamps:
        assert log.coverage_start == stamps[0]
    else:
        assert log.coverage_start == (min(firsts) if firsts else None)


def test_missing_and_absent_tables():
    log = _log([_row(1, "backfill", D(2024, 1, 1))])
    assert log.tables == ("t",) and "nova_services" in log.missing
    assert list(log.batches("nova_services")) == [] and log.table_coverage("nova_services") is None
    assert log.lacks("t", "x") == ("x",) and "t" in log
    assert log.table_coverage("t") == D(2024, 1, 1)
