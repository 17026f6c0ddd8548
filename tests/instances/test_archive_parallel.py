"""``instances --source dump`` in parts: once the newest dump is spilled, forked processes merge, mask and
format one start-time range each (with what older dumps alone hold in that range), and the parts are
joined in order. The trace and its manifest must be exactly those of one process, whatever the split (tiny
runs and run lines here, so that every range starts in the middle of a run file), with or without a
cache."""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import signal
from pathlib import Path
from typing import Any, Dict

import orjson
import pytest

from starcompactor.errors import StarCompactorError
from starcompactor.instances import archive
from starcompactor.instances import trace as instance_trace
from starcompactor.instances.archive import DumpSource
from starcompactor.machines.backups import list_backups
from starcompactor.mask import Masker, MaskingKey
from tests.instances import test_archive
from tests.instances.test_archive import (
    SHADOW_A,
    STATE_A,
    STATE_B,
    A,
    B,
    action,
    event,
    instance,
    load,
    move_shadow_into_live,
    write_dump,
    write_history,
)

# the MariaDB cells and the dump of the archive tests (module fixtures: made again for this module)
cells = test_archive.cells
one_dump = test_archive.one_dump

EPOCH = dt.datetime(2015, 9, 17)
U = "12345678-0000-4000-8000-0000000000aa"


@pytest.fixture
def small_parts(monkeypatch):
    """Split any trace, in runs of 3 events written 2 to a line; count the forked processes."""
    monkeypatch.setattr(instance_trace, "SPLIT_MINIMUM", 0)
    monkeypatch.setattr(archive, "RUN_SIZE", 3)
    monkeypatch.setattr(archive, "RUN_BATCH", 2)
    forks = []
    real = instance_trace.forked

    def counted(fn):
        forks.append(fn)
        return real(fn)

    monkeypatch.setattr(instance_trace, "forked", counted)
    return forks


def write(directory: Path, out: Path, fmt: str, workers: int, source_class: Any = DumpSource, **options):
    source = source_class(list_backups(str(directory)), [A, B], **options)
    return instance_trace.make_instance_trace(
        source,
        str(out),
        masker=Masker("hmac-sha256", MaskingKey(b"k", "test")),
        epoch=EPOCH,
        fmt=fmt,
        workers=workers,
    )


def manifest(out: Path) -> Dict[str, Any]:
    data = orjson.loads(Path(str(out) + ".manifest.json").read_bytes())
    data.pop("created_at", None)
    return data


def same_as_one_process(directory: Path, tmp_path: Path, forks: list, workers: int = 2, **options) -> int:
    """Write every line format with one process and with ``workers``; returns the events."""
    events = 0
    for fmt in ("csv", "legacy-csv", "jsonl"):
        one, parts = tmp_path / f"one.{fmt}", tmp_path / f"parts.{fmt}"
        write(directory, one, fmt, 1, **options)
        before = len(forks)
        write(directory, parts, fmt, workers, **options)
        assert len(forks) > before  # the trace was written in parts
        assert parts.read_bytes() == one.read_bytes()
        assert manifest(parts) == manifest(one)
        events = manifest(one)["events"]
    assert sorted(os.listdir(tmp_path)) == sorted(
        f"{name}.{fmt}{suffix}"
        for name in ("one", "parts")
        for fmt in ("csv", "legacy-csv", "jsonl")
        for suffix in ("", ".manifest.json")
    )  # no part or run left behind
    return events


@pytest.mark.parametrize("include_unfinished", [False, True])
@pytest.mark.parametrize("workers", [2, 3])
def test_parts_give_the_bytes_and_manifest_of_one_process(
    one_dump, tmp_path, small_parts, include_unfinished, workers
):
    _server, directory = one_dump
    events = same_as_one_process(
        directory, tmp_path, small_parts, workers=workers, include_unfinished=include_unfinished
    )
    assert events == (10 if include_unfinished else 9)


def test_parts_with_a_window(one_dump, tmp_path, small_parts):
    _server, directory = one_dump
    window = dict(start=dt.datetime(2024, 1, 1, 0, 0, 0, 500000), end=dt.datetime(2024, 1, 2, 10))
    assert 0 < same_as_one_process(directory, tmp_path, small_parts, **window) < 9


@pytest.fixture(scope="module")
def one_second_dump(cells, tmp_path_factory):
    """Every event at one start time, in one cell; the other cell has the tables and no rows."""
    server = cells
    load(
        server,
        A,
        {
            "instances": [instance(U, "same-second")],
            "instance_actions": [action(i, U, "2024-01-01 00:00:00") for i in range(1, 6)],
            "instance_actions_events": [
                event(i, 1 + i % 5, f"compute_{i % 3}", "2024-01-01 00:00:00", "2024-01-01 00:00:09")
                for i in range(1, 41)
            ],
        },
    )
    load(server, B, {})
    directory = tmp_path_factory.mktemp("one-second")
    write_dump(server, directory, 1)
    yield directory
    load(server, A, STATE_A, SHADOW_A)  # as the other tests of the cells expect them
    load(server, B, STATE_B)
    for database in (A, B):
        move_shadow_into_live(server, database)


def test_every_event_at_one_start_time_and_a_cell_without_events(one_second_dump, tmp_path, small_parts):
    assert same_as_one_process(one_second_dump, tmp_path, small_parts, workers=3) == 40


def test_a_small_trace_stays_in_one_process(one_dump, tmp_path, small_parts, monkeypatch):
    _server, directory = one_dump
    monkeypatch.setattr(instance_trace, "SPLIT_MINIMUM", 1000)
    write(directory, tmp_path / "out.csv", "csv", 2)
    assert small_parts == []


class FailingPart(DumpSource):
    """A dump source whose part 1 (a forked process) fails as ``how`` says."""

    how = "error"

    def row_batches(self, masker, part=None):
        if part == 1:
            if self.how == "killed":
                os.kill(os.getpid(), signal.SIGKILL)  # as the kernel's OOM killer would
            raise StarCompactorError("part 1: cannot go on")
        if part == 0 and self.how == "interrupted":
            raise KeyboardInterrupt
        return super().row_batches(masker, part)


@pytest.mark.parametrize("how", ["error", "killed", "interrupted"])
def test_a_failing_part_is_one_line_and_no_output(one_dump, tmp_path, small_parts, how):
    _server, directory = one_dump
    out = tmp_path / "out.csv"
    source_class = type("Failing", (FailingPart,), {"how": how})
    expected = KeyboardInterrupt if how == "interrupted" else StarCompactorError
    with pytest.raises(expected) as failure:
        write(directory, out, "csv", 2, source_class)
    assert small_parts  # the failure happened in the parts
    if how != "interrupted":
        message = str(failure.value)
        assert len(message.splitlines()) == 1
        assert ("cannot go on" if how == "error" else "worker process died") in message
    assert os.listdir(tmp_path) == []  # no trace, no manifest, no part left


def test_the_command_splits_unless_workers_is_1(one_dump, tmp_path, small_parts, monkeypatch):
    from starcompactor.cli.main import main

    _server, directory = one_dump
    monkeypatch.chdir(tmp_path)
    (tmp_path / "key").write_text("the-key\n")
    base = ["instances", "--source", "dump", "--backup-dir", str(directory), "--nova-databases", f"{A},{B}"]
    base += ["--hashed-masking-key-file", "key", "--quiet"]
    logger = logging.getLogger("starcompactor")  # as the command sets it, put back for the other tests
    saved = logger.level, logger.propagate, list(logger.handlers)
    try:
        assert main([*base, "--workers", "1", "one.csv"]) == 0
        assert small_parts == []
        assert main([*base, "--workers", "2", "two.csv"]) == 0
    finally:
        logger.setLevel(saved[0])
        logger.propagate = saved[1]
        logger.handlers[:] = saved[2]
    assert len(small_parts) == 1
    assert (tmp_path / "two.csv").read_bytes() == (tmp_path / "one.csv").read_bytes()


# -- several dumps, and the cache ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def history(cells, tmp_path_factory):
    """Three days: an instance archived, then purged; an event unfinished, then finished."""
    directory = tmp_path_factory.mktemp("history")
    write_history(cells, directory)
    yield directory
    load(cells, A, STATE_A, SHADOW_A)  # as the other tests of the cells expect them
    load(cells, B, STATE_B)
    for database in (A, B):
        move_shadow_into_live(cells, database)


@pytest.mark.parametrize("workers", [2, 3])
def test_parts_of_a_history_give_the_bytes_of_one_process(history, tmp_path, small_parts, workers):
    events = same_as_one_process(history, tmp_path, small_parts, workers=workers, include_unfinished=True)
    newest = tmp_path / "newest.csv"
    write(history, newest, "csv", 1, all_dumps=False, include_unfinished=True)
    assert manifest(newest)["events"] == events - 3  # the archived and purged events, older dumps only


def cached_trace(directory: Path, out: Path, cache: Path, workers: int) -> DumpSource:
    from starcompactor.dump.cache import DumpCache

    source = DumpSource(list_backups(str(directory)), [A, B], cache=DumpCache(str(cache)))
    instance_trace.make_instance_trace(
        source,
        str(out),
        masker=Masker("hmac-sha256", MaskingKey(b"k", "test")),
        epoch=EPOCH,
        fmt="csv",
        workers=workers,
    )
    return source


@pytest.mark.parametrize("workers", [1, 2])
def test_a_cached_rerun_gives_the_bytes_of_a_cold_run(history, tmp_path, small_parts, workers, caplog):
    days = sorted(history.iterdir())
    dumps, cache = tmp_path / "dumps", tmp_path / "cache"
    dumps.mkdir()
    for day in days[:2]:
        shutil.copy2(day, dumps / day.name)
    cached_trace(dumps, tmp_path / "two.csv", cache, workers)
    shutil.copy2(days[2], dumps / days[2].name)
    cold = tmp_path / "cold.csv"
    write(dumps, cold, "csv", 1)
    expected = cold.read_bytes()
    inputs = [(i["name"], i["events"]) for i in manifest(cold)["inputs"]]

    source = cached_trace(dumps, tmp_path / "warm.csv", cache, workers)
    assert [s.read for s in source.stats] == [False, False, True]  # only the new dump
    assert (tmp_path / "warm.csv").read_bytes() == expected
    assert [(i["name"], i["events"]) for i in manifest(tmp_path / "warm.csv")["inputs"]] == inputs
    assert (
        manifest(tmp_path / "warm.csv")["events_only_in_older_dumps"]
        == manifest(cold)["events_only_in_older_dumps"]
    )
    assert {p.name for p in cache.iterdir()} == {"instance-rows", "instance-keys", "instance-dropped"}

    source = cached_trace(dumps, tmp_path / "again.csv", cache, workers)  # nothing new: nothing read
    assert [s.read for s in source.stats] == [False, False, False]
    assert (tmp_path / "again.csv").read_bytes() == expected

    # every stored key list cut short, the newest dump's rows and its drops gone: the second and third
    # dumps are read again (the first one's drops are stored), and the trace is the same
    for entry in (cache / "instance-keys").iterdir():
        entry.write_bytes(entry.read_bytes()[:-20])
    (cache / "instance-rows" / f"{source._key(archive.ROWS, 2)}.json").unlink()
    (cache / "instance-dropped" / f"{source._key(archive.DROPPED, 1, 2)}.json").unlink()
    with caplog.at_level(logging.WARNING, logger="starcompactor"):
        source = cached_trace(dumps, tmp_path / "rebuilt.csv", cache, workers)
    assert [s.read for s in source.stats] == [False, True, True]
    assert (tmp_path / "rebuilt.csv").read_bytes() == expected
    assert "is unusable (no trailer: the file is truncated)" in caplog.text


def test_without_a_cache_the_run_keeps_two_dumps_rows_at_most(history, tmp_path, monkeypatch):
    """Older dumps are stored for the run in a private directory: a dump's rows go once compared."""
    work = tmp_path / "work"
    work.mkdir()
    held = []
    real = DumpSource._stored

    def stored(self, cache, index, workdir):
        entries = real(self, cache, index, workdir)
        held.append(len(list(Path(workdir).glob("cache/instance-rows/*.json"))))
        return entries

    monkeypatch.setattr(DumpSource, "_stored", stored)
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    days = sorted(history.iterdir())
    for day in days:
        shutil.copy2(day, dumps / day.name)
    shutil.copy2(days[-1], dumps / days[-1].name.replace("-03T", "-04T"))  # a fourth day, as the third
    source = DumpSource(list_backups(str(dumps)), [A, B], workdir=str(work))
    assert len(list(source)) == len(list(DumpSource(list_backups(str(history)), [A, B])))
    assert len(held) >= 4 and max(held) <= 2
    assert [s.read for s in source.stats] == [True, True, True, True]
    assert os.listdir(work) == []  # nothing left behind
