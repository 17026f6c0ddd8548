"""Backup listing, file selection and snapshot time from names (SPEC §1.1)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from starcompactor.config import DEFAULTS
from starcompactor.errors import ConfigError, NoBackupsError
from starcompactor.machines.backups import (
    default_name_pattern,
    effective_regex,
    list_backups,
    time_from_name,
)

D = dt.datetime


@pytest.mark.parametrize(
    "name, expected",
    [
        ("mysqldump-2024-01-05T03:00:00Z.mysql.gz", D(2024, 1, 5, 3)),
        ("mysql_backup_20240105-030000.sql.bz2", D(2024, 1, 5, 3)),
        ("nova-2024-01-05_03-00-00.sql", D(2024, 1, 5, 3)),
        ("dump-2024-01-05T05:00:00+02:00.sql.gz", D(2024, 1, 5, 3)),  # converted to UTC
        ("dump-20240105T030000Z.sql.xz", D(2024, 1, 5, 3)),
        ("nightly.sql.gz", None),
        ("dump-2024-13-45T03:00:00Z.sql", None),  # not a date
    ],
)
def test_time_from_name(name, expected):
    assert time_from_name(name) == expected


def test_time_from_named_groups():
    import re

    pattern = re.compile(r"db_(?P<day>\d\d)(?P<month>\d\d)(?P<year>\d{4})_(?P<hour>\d\d)\.sql")
    name = "db_05012024_03.sql"
    assert time_from_name(name, pattern.match(name)) == D(2024, 1, 5, 3)
    pattern = re.compile(r"x-(?P<date>\d{4}-\d\d-\d\d)-(?P<time>\d\d\d\d\d\d)\.sql")
    assert time_from_name("x-2024-01-05-030000.sql", pattern.match("x-2024-01-05-030000.sql")) == D(
        2024, 1, 5, 3
    )


@settings(max_examples=60, deadline=None)
@given(st.datetimes(min_value=D(1990, 1, 1), max_value=D(2100, 1, 1)).map(lambda t: t.replace(microsecond=0)))
def test_both_field_names_round_trip(t):
    assert time_from_name(f"mysqldump-{t:%Y-%m-%dT%H:%M:%S}Z.mysql.gz") == t
    assert time_from_name(f"mysql_backup_{t:%Y%m%d-%H%M%S}.sql.bz2") == t


def test_default_selection_takes_dump_suffixes(tmp_path):
    names = [
        "mysqldump-2024-01-05T03:00:00Z.mysql.gz",
        "mysql_backup_20240105-030000.sql.bz2",
        "a.sql",
        "b.dump.zst",
        "README",
        "trace.csv",
        "x.sql.gz.manifest.json",
    ]
    for n in names:
        (tmp_path / n).write_bytes(b"-- x\n")
    (tmp_path / "sub.sql").mkdir()
    got = [b.name for b in list_backups(str(tmp_path))]
    assert got == sorted(names[:4])
    # the config default regex means "not set": same selection
    assert [b.name for b in list_backups(str(tmp_path), DEFAULTS["backup"]["backup_file_regex"])] == got
    assert effective_regex(None) == default_name_pattern()


def test_explicit_regex_selects_with_match(tmp_path):
    for n in ("mysql_backup_20240105-030000.sql.bz2", "old_mysql_backup_20240105-030000.sql.bz2", "x.sql"):
        (tmp_path / n).write_bytes(b"")
    got = list_backups(str(tmp_path), r"mysql_backup_(\d{8})-(\d{6})\.sql\.bz2")
    assert [b.name for b in got] == ["mysql_backup_20240105-030000.sql.bz2"]
    assert got[0].name_time == D(2024, 1, 5, 3)
    assert got[0].size == 0 and got[0].mtime is not None


def test_empty_and_missing_directories_are_clear_errors(tmp_path):
    with pytest.raises(NoBackupsError, match=r"no backup files \(no files"):
        list_backups(str(tmp_path))
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(NoBackupsError, match="1 file"):
        list_backups(str(tmp_path))
    with pytest.raises(ConfigError, match="does not exist"):
        list_backups(str(tmp_path / "nope"))
    with pytest.raises(ConfigError, match="not a regex|regex"):
        list_backups(str(tmp_path), "(")
    with pytest.raises(ConfigError, match="cannot list a ftp://"):
        list_backups("ftp://host/dir")
