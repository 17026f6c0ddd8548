"""Instance events straight from the archived dumps (``instances --source dump``), SPEC §1.3 and §6.

Nova's ``archive_deleted_rows`` moves the rows of deleted instances to ``shadow_*`` tables, and ``purge``
deletes them: the live database forgets history, the nightly dumps keep it. Here the join of SPEC §1.3
(``instances`` ⋈ ``instance_actions`` ⋈ ``instance_actions_events``, every cell database) is made from
each dump's live tables **and** its ``shadow_*`` tables; with ``all_dumps`` (the default, SPEC §6), the
events that older dumps hold and newer ones no longer do are added, each event once.

**Identity of an event** (what "once" means across dumps): its cell database, its ``id``, its instance's
uuid, its name and its start time. The id alone is not enough: InnoDB before MySQL 8.0 / MariaDB 10.2.4
resets ``AUTO_INCREMENT`` to ``max(id) + 1`` at a restart, so after archiving has moved the highest rows
away a new event can get an archived one's id (Nova's archive then fails on a duplicate key: a known
bug). The rest alone is not enough either: one action can run the same event twice within a second (a
reschedule). None of these columns changes during an event's life (``event_finish`` sets the finish
time and result only), so an unfinished event in one dump and the same event finished in the next are
one event — the newest dump's row wins.

**Which row:** an event is joined *within the newest dump that holds it*, with that dump's action and
instance rows (live or shadow). For an event every dump still holds, that is the newest dump, as a
database would give; for one that only older dumps hold, the instance as it was then — its ``node`` is
where the instance was at the time of the event, which a later migration would have changed.

**Bounded memory.** A dump's tables come alphabetically: ``instance_actions``,
``instance_actions_events`` (the largest table), ``instances``, then the ``shadow_*`` ones. Actions are
kept in compact arrays (an id, an instance number and a creation time: 24 bytes each) and an event is
joined to its action as it is read; instances are kept by number (their few columns), and events go to
sorted runs on disk (:data:`RUN_SIZE` at a time) that are merged with :func:`heapq.merge` once the dump
is read, when the instance columns are joined; several dumps are merged the same way. So memory grows
with instances and actions, not with events. The order is the database path's:
start time (none first), then cell (in ``nova_databases`` order), then event id. A run's records sort on
one string made of the four (start time, ``\0``, the cell and the id in fixed widths, live or shadow):
one string comparison per pair (lists of the four sorted ~4 times and merged ~1.7 times slower).
"""

from __future__ import annotations

import datetime as dt
import heapq
import logging
import os
import shutil
import tempfile
from array import array
from bisect import bisect_left, bisect_right
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import chain, dropwhile, takewhile
from operator import itemgetter
from typing import IO, Any, Dict, Iterable, Iterator, List, Optional, Protocol, Sequence, Tuple

import orjson

from ..config import check_instance_type
from ..dump import TableKey
from ..dump import cache as dump_cache
from ..dump.cache import CacheMiss, DumpCache, code_version, dump_identity, entry_key, read_entry, write_entry
from ..dump.raw import RawDumpReader
from ..errors import ConfigError, StarCompactorError
from ..mask import Masker
from .db import Flavors
from .hosts import physical_host

log = logging.getLogger(__name__)

ACTIONS, EVENTS, INSTANCES = "instance_actions", "instance_actions_events", "instances"
SHADOW = "shadow_"
TABLES = (ACTIONS, EVENTS, INSTANCES, SHADOW + ACTIONS, SHADOW + EVENTS, SHADOW + INSTANCES)
ACTION_COLUMNS = ("id", "instance_uuid", "created_at")
EVENT_COLUMNS = ("id", "action_id", "event", "start_time", "finish_time", "result", "host")
INSTANCE_COLUMNS = (
    "uuid",
    "hostname",
    "user_id",
    "project_id",
    "node",
    "host",
    "memory_mb",
    "root_gb",
    "vcpus",
)
COLUMNS = {ACTIONS: ACTION_COLUMNS, EVENTS: EVENT_COLUMNS, INSTANCES: INSTANCE_COLUMNS}
#: How each column is read (see :class:`~starcompactor.dump.raw.RawDumpReader`).
KINDS = {
    ACTIONS: ("int", "text", "time"),
    EVENTS: ("int", "int", "name", "time", "time", "name", "name"),
    INSTANCES: ("text", "text", "name", "name", "name", "name", "text", "text", "text"),
}

#: Events sorted in memory before a run goes to disk (~400 bytes each).
RUN_SIZE = 200_000
#: Records per line of a run file: the merge holds one decoded line of every run at once.
RUN_BATCH = 512
#: Records per line of a cache file (a merge of many dumps holds one line of each).
BATCH = 1024

#: Added to an event id in a run's sort key: any BIGINT, signed or not, as 20 digits that sort as it does.
_ID_OFFSET = 2**63

# A joined row (a JSON-able list): the first five fields are the event's identity and its sort key.
START, CELL, ID, UUID, EVENT, FINISH, RESULT, NAME, USER, PROJECT, HOST, FLAVOR, CREATED = range(13)


def _identity_key(row: List[Any]) -> Tuple[Any, ...]:
    """The identity as a sort key (an event name may be NULL)."""
    return (row[START], row[CELL], row[ID], row[UUID] or "", row[EVENT] or "")


class DumpFile(Protocol):
    """A dump as :func:`starcompactor.machines.list_backups` lists it (read-only attributes)."""

    @property
    def uri(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def size(self) -> Optional[int]: ...

    @property
    def mtime(self) -> Optional[dt.datetime]: ...

    @property
    def name_time(self) -> Optional[dt.datetime]: ...


def dump_order(dumps: Iterable[DumpFile]) -> List[DumpFile]:
    """Oldest first: by the time in the file name, else the modification time, then by name."""
    return sorted(dumps, key=lambda d: (d.name_time or d.mtime or dt.datetime.min, d.name))


def _time_code(text: Optional[str]) -> int:
    """``YYYY-MM-DD HH:MM:SS`` → the integer YYYYMMDDHHMMSS (ordered as the times); None → -1."""
    if not text:
        return -1
    return int(text[0:4] + text[5:7] + text[8:10] + (text[11:13] + text[14:16] + text[17:19] or "000000"))


def _window_code(when: Optional[dt.datetime], upper: bool) -> Optional[int]:
    if when is None:
        return None
    code = int(when.strftime("%Y%m%d%H%M%S"))
    # actions are created at whole seconds: "at or after 10:00:00.5" is "at or after 10:00:01"
    return code + 1 if when.microsecond and not upper else code


# -- one dump -------------------------------------------------------------------------------------------


class _Actions:
    """``instance_actions`` rows of one table as three arrays, looked up by id (rows come in id order;
    looking up the next id first makes the usual, nearly ordered, lookups cost no search)."""

    def __init__(self) -> None:
        self.ids = array("q")
        self.instances = array("l")
        self.created = array("q")
        self.ordered = True
        self._hint = 0

    def add(self, action_id: int, instance: int, created: int) -> None:
        ids = self.ids
        if self.ordered and ids and action_id <= ids[-1]:
            self.ordered = False
        self.ids.append(action_id)
        self.instances.append(instance)
        self.created.append(created)

    def close(self) -> None:
        """Sort by id when the dump did not (a table without a primary key order)."""
        if self.ordered:
            return
        order = sorted(range(len(self.ids)), key=self.ids.__getitem__)
        self.ids = array("q", (self.ids[i] for i in order))
        self.instances = array("l", (self.instances[i] for i in order))
        self.created = array("q", (self.created[i] for i in order))
        self.ordered = True

    def find(self, action_id: int) -> int:
        """The index of ``action_id``, or -1."""
        ids = self.ids
        hint = self._hint
        if hint < len(ids) and ids[hint] == action_id:
            self._hint = hint + 1
            return hint
        i = bisect_left(ids, action_id)
        if i < len(ids) and ids[i] == action_id:
            self._hint = i + 1
            return i
        return -1


@dataclass
class DumpStats:
    """What one dump gave (for the manifest)."""

    name: str
    uri: str
    events: int = 0  #: joined events this dump holds
    read: bool = False  #: the dump itself was read (not its cache entry)
    cells: List[str] = field(default_factory=list)


def read_dump_events(
    uri: str,
    name: str,
    databases: Sequence[str],
    instance_type: str,
    workdir: str,
    *,
    run_size: int = RUN_SIZE,
    transport_params: Optional[Dict[str, Any]] = None,
    stats: Optional[DumpStats] = None,
) -> Iterator[List[Any]]:
    """One dump's joined events in output order (see the module's doc for the row layout).

    ``workdir`` holds the sorted runs while the dump is read (removed when the iterator is done).
    """
    spilled = spill_dump_events(
        uri,
        name,
        databases,
        instance_type,
        workdir,
        run_size=run_size,
        transport_params=transport_params,
        stats=stats,
    )
    try:
        yield from spilled.rows(stats=stats)
    finally:
        spilled.close()


def spill_dump_events(
    uri: str,
    name: str,
    databases: Sequence[str],
    instance_type: str,
    workdir: str,
    *,
    run_size: int = RUN_SIZE,
    transport_params: Optional[Dict[str, Any]] = None,
    stats: Optional[DumpStats] = None,
) -> SpilledDump:
    """Read one dump into sorted runs (in ``workdir``) and the tables to join them with; the caller
    merges them (:meth:`SpilledDump.rows`, whole or by key range) and closes the result."""
    vm = instance_type == "vm"
    cell_of = {db: i for i, db in enumerate(databases)}
    tables = [(db, table) for db in databases for table in TABLES]
    columns: Dict[TableKey, Sequence[str]] = {}
    kinds: Dict[TableKey, Sequence[str]] = {}
    for db, table in tables:
        base = table[len(SHADOW) :] if table.startswith(SHADOW) else table
        columns[(db, table)] = COLUMNS[base]
        kinds[(db, table)] = KINDS[base]
    reader = RawDumpReader(uri, tables, columns, kinds, name=name, transport_params=transport_params)
    uuid_numbers: List[Dict[str, int]] = [{} for _ in databases]  # per cell: instance uuid → number
    flavors: Dict[str, str] = {}  # one string per distinct flavor
    uuids: List[str] = []
    actions: Dict[Tuple[int, bool], _Actions] = {}
    instances: List[Optional[tuple]] = []
    run: List[tuple] = []
    cell_width = len(str(len(databases)))
    suffix = 1 + cell_width + 20 + 1  # the key after the start time: "\0", cell, id, shadow
    runs: List[Tuple[str, List[str], List[int]]] = []
    run_dir = tempfile.mkdtemp(prefix="runs-", dir=workdir)
    append = run.append
    live_actions: Optional[_Actions] = None
    shadow_actions: Optional[_Actions] = None
    current_table: Optional[str] = None
    current_database: Optional[str] = None
    try:
        row: Any
        for database, table, row in reader:
            if table != current_table or database != current_database:
                current_table, current_database = table, database
                cell = cell_of[database]  # type: ignore[index]
                shadow = int(table.startswith(SHADOW))
                base = table[len(SHADOW) :] if shadow else table
                is_events = base == EVENTS
                live_actions = actions.get((cell, False))
                shadow_actions = actions.get((cell, True))
                # the fixed parts of this table's sort keys
                key_cell = f"\0{cell:0{cell_width}d}"
                key_shadow = str(shadow)
                last_action = None  # the events of one action come together: its join is kept
            if is_events:
                event_id, action_id, event, start, finish, result, host = row
                if event_id is None or action_id is None:
                    continue
                if action_id != last_action:
                    # the action is usually read already (tables come alphabetically): join now
                    found = -1
                    table_actions = shadow_actions if shadow else live_actions
                    if table_actions is not None:
                        found = table_actions.find(action_id)
                    if found < 0 and shadow and live_actions is not None:
                        table_actions = live_actions
                        found = live_actions.find(action_id)
                    if found >= 0:
                        number = table_actions.instances[found]  # type: ignore[union-attr]
                        created = table_actions.created[found]  # type: ignore[union-attr]
                    else:
                        number = created = -1  # joined once every table is read
                    last_action = action_id
                # the sort key as one string: runs sort and merge on it with one comparison a pair
                append(
                    (
                        f"{start or ''}{key_cell}{event_id + _ID_OFFSET:020d}{key_shadow}",
                        cell,
                        event_id,
                        shadow,
                        number,
                        created,
                        action_id,
                        event,
                        finish,
                        result,
                        host,
                    )
                )
                if len(run) >= run_size:
                    run.sort()
                    runs.append(_spill(run, run_dir, len(runs)))
                    run = []
                    append = run.append
            elif base == ACTIONS:
                action_id, instance_uuid, created = row
                if action_id is None or instance_uuid is None:
                    continue
                numbers = uuid_numbers[cell]
                number = numbers.get(instance_uuid)
                if number is None:
                    number = numbers[instance_uuid] = len(uuids)
                    uuids.append(instance_uuid)
                    instances.append(None)
                table_actions = actions.get((cell, bool(shadow)))
                if table_actions is None:
                    table_actions = actions[(cell, bool(shadow))] = _Actions()
                    live_actions = actions.get((cell, False))
                    shadow_actions = actions.get((cell, True))
                table_actions.add(action_id, number, _time_code(created))
            else:
                if row[0] is None:
                    continue
                numbers = uuid_numbers[cell]
                number = numbers.get(row[0])
                if number is None:  # kept: a shadow action read later may name it
                    number = numbers[row[0]] = len(uuids)
                    uuids.append(row[0])
                    instances.append(None)
                elif shadow and instances[number] is not None:
                    continue  # the live row wins
                _uuid, hostname, user, project, node, host, memory, root, vcpus = row
                flavor = None
                if vm:
                    text = ",".join("NULL" if v is None else v for v in (memory, root, vcpus))
                    flavor = flavors.setdefault(text, text)
                instances[number] = (hostname, user, project, node, host, flavor)
        for table_actions in actions.values():
            table_actions.close()
        present = [db for db in databases if (db, EVENTS) in reader.info.tables]
        if stats is not None:
            stats.cells = present
        if not present:
            raise StarCompactorError(
                f"{name}: none of the Nova databases {', '.join(databases)} has instance tables in this dump "
                f"(databases in the dump: {', '.join(reader.info.databases) or 'none'})"
            )
        run.sort()  # the keys are unique: records compare no further
        del uuid_numbers
        return SpilledDump(run, runs, actions, instances, uuids, suffix, run_dir)
    except BaseException:
        shutil.rmtree(run_dir, ignore_errors=True)
        raise


class SpilledDump:
    """A dump read into sorted runs: ``run`` in memory, ``runs`` on disk (each with the first key of
    every line, so that a merge can start anywhere), and the actions and instances to join them with.

    Forked processes can each merge one key range (:meth:`split_keys`, :meth:`rows`): the tables are
    shared copy-on-write, the run files read by each.
    """

    def __init__(
        self,
        run: List[tuple],
        runs: List[Tuple[str, List[str], List[int]]],
        actions: Dict[Tuple[int, bool], _Actions],
        instances: List[Optional[tuple]],
        uuids: List[str],
        suffix: int,
        run_dir: str,
    ) -> None:
        self.run = run
        self.runs = runs
        self.actions = actions
        self.instances = instances
        self.uuids = uuids
        self.suffix = suffix
        self.run_dir = run_dir

    @property
    def size(self) -> int:
        """Events in the runs (before the join drops any)."""
        return len(self.run) + sum(RUN_BATCH * len(firsts) for _path, firsts, _offsets in self.runs)

    def split_keys(self, parts: int) -> List[str]:
        """``parts - 1`` increasing keys cutting the events into ``parts`` ranges of about equal size
        (quantiles of the first keys of the runs' lines and a sample of the run in memory); fewer when
        many events share keys (all at one start time: one range)."""
        sample = [key for _path, firsts, _offsets in self.runs for key in firsts]
        sample.extend(record[0] for record in self.run[::RUN_BATCH])
        sample.sort()
        keys: List[str] = []
        for i in range(1, parts):
            if not sample:
                break
            key = sample[len(sample) * i // parts]
            if (not keys or key > keys[-1]) and key > sample[0]:
                keys.append(key)
        return keys

    def rows(
        self, low: Optional[str] = None, high: Optional[str] = None, stats: Optional[DumpStats] = None
    ) -> Iterator[List[Any]]:
        """The joined events in output order whose sort key is in ``[low, high)`` (None: unbounded)."""
        run = self.run
        if low is not None or high is not None:
            begin = 0 if low is None else bisect_left(run, (low,))
            stop = len(run) if high is None else bisect_left(run, (high,))
            run = run[begin:stop]
        streams: List[Iterable[Any]] = [run]
        handles = []
        try:
            for path, firsts, offsets in self.runs:
                handle = open(path, "rb")  # noqa: SIM115 - closed below
                handles.append(handle)
                line = 0
                if low is not None:
                    line = max(0, bisect_right(firsts, low) - 1)
                    if line >= len(firsts):
                        continue
                handle.seek(offsets[line])
                records: Iterable[Any] = chain.from_iterable(_lines(handle))
                if low is not None:
                    records = dropwhile(lambda record, low=low: record[0] < low, records)  # type: ignore[misc]
                if high is not None:
                    records = takewhile(lambda record, high=high: record[0] < high, records)  # type: ignore[misc]
                streams.append(records)
            yield from self._join(streams, stats)
        finally:
            for handle in handles:
                handle.close()

    def _join(self, streams: List[Iterable[Any]], stats: Optional[DumpStats]) -> Iterator[List[Any]]:
        # runs read back are lists, the one in memory tuples: merged on their keys
        merged = heapq.merge(*streams, key=itemgetter(0)) if len(streams) > 1 else iter(streams[0])
        host_of = physical_host
        actions, instances, uuids, suffix = self.actions, self.instances, self.uuids, self.suffix
        count = 0
        for (
            key,
            cell,
            event_id,
            shadow,
            number,
            created,
            action_id,
            event,
            finish,
            result,
            event_host,
        ) in merged:
            if number < 0:
                number, created = _late_join(actions, cell, shadow, action_id)
                if number < 0:
                    continue
            instance = instances[number]
            if instance is None:
                continue  # the action's instance is in neither table: the join drops it
            hostname, user, project, node, host, flavor = instance
            count += 1
            yield [
                key[:-suffix],
                cell,
                event_id,
                uuids[number],
                event,
                finish,
                result,
                hostname,
                user,
                project,
                host_of(node, event_host, host),
                flavor,
                created,
            ]
        if stats is not None:
            stats.events = count

    def close(self) -> None:
        shutil.rmtree(self.run_dir, ignore_errors=True)


def _lines(handle: IO[bytes]) -> Iterator[List[Any]]:
    """The batches of a run file from where ``handle`` stands (see :func:`_spill`)."""
    for line in handle:
        if line.startswith(b'{"end":'):
            return
        yield orjson.loads(line)


def _late_join(
    actions: Dict[Tuple[int, bool], _Actions], cell: int, shadow: int, action_id: int
) -> Tuple[int, int]:
    """(instance number, creation time) of an event whose action came after it in the dump; -1s if none.
    A shadow event looks in the shadow actions first (an archived event may still point to a live action)."""
    for in_shadow in (True, False) if shadow else (False,):
        table_actions = actions.get((cell, in_shadow))
        if table_actions is not None:
            found = table_actions.find(action_id)
            if found >= 0:
                return table_actions.instances[found], table_actions.created[found]
    return -1, -1


def _spill(run: List[tuple], directory: str, index: int) -> Tuple[str, List[str], List[int]]:
    """Write a sorted run: (its file, the first key of each line, each line's offset)."""
    path = os.path.join(directory, f"run-{index:05d}.json")
    firsts: List[str] = []
    offsets: List[int] = []
    with open(path, "wb") as out:
        out.write(orjson.dumps({"key": "run"}) + b"\n")
        for i in range(0, len(run), RUN_BATCH):
            batch = run[i : i + RUN_BATCH]
            firsts.append(batch[0][0])
            offsets.append(out.tell())
            out.write(orjson.dumps(batch) + b"\n")
        out.write(orjson.dumps({"end": len(run)}) + b"\n")
    return path, firsts, offsets


def _store(rows: Iterable[List[Any]], workdir: str, name: str) -> str:
    """Write rows to a private file of ``workdir`` (read back with :func:`_read_file`)."""
    path = os.path.join(workdir, name + ".json")
    with open(path, "wb") as out:
        write_entry(out, name, _batched(rows))
    return path


def _read_file(path: str, on_row_count: Optional[Any] = None) -> Iterator[List[Any]]:
    with open(path, "rb") as handle:
        for batch in read_entry(handle):
            if on_row_count is not None:
                on_row_count(len(batch))
            yield from batch


def _counting(rows: Iterable[List[Any]], on_row_count: Any) -> Iterator[List[Any]]:
    for row in rows:
        on_row_count(1)
        yield row


def _batched(rows: Iterable[Any], size: int = BATCH) -> Iterator[List[Any]]:
    batch: List[Any] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


# -- several dumps --------------------------------------------------------------------------------------


def dropped_rows(older: Iterable[List[Any]], newer: Iterable[List[Any]]) -> Iterator[List[Any]]:
    """The rows of ``older`` whose identity ``newer`` lacks (both in output order): what was archived
    away or purged between two dumps."""
    newer_iter = iter(newer)
    current = next(newer_iter, None)
    current_key = _identity_key(current) if current is not None else None
    for row in older:
        key = _identity_key(row)
        while current_key is not None and current_key < key:
            current = next(newer_iter, None)
            current_key = _identity_key(current) if current is not None else None
        if current_key != key:
            yield row


def union_rows(streams: Sequence[Iterable[List[Any]]]) -> Iterator[List[Any]]:
    """Merge streams in output order, each identity once: from the first stream (the newest) that has it."""
    keyed = [_ranked(stream, rank) for rank, stream in enumerate(streams)]
    last = None
    for key, row in heapq.merge(*keyed):
        if key[0] != last:
            last = key[0]
            yield row


def _ranked(stream: Iterable[List[Any]], rank: int) -> Iterator[Tuple[Tuple[Any, int], List[Any]]]:
    for row in stream:
        yield (_identity_key(row), rank), row


# -- the source -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArchiveSettings:
    """What changes the rows a dump yields (part of every cache key)."""

    databases: Tuple[str, ...]
    instance_type: str

    def key(self) -> Dict[str, Any]:
        return {
            "databases": list(self.databases),
            "instance_type": self.instance_type,
            "code": _CODE_VERSION,
        }


def _code_version() -> str:
    from ..dump import raw, reader, schema, values
    from . import hosts

    return code_version(raw, reader, schema, values, hosts, dump_cache, _this_module())


def _this_module() -> Any:
    import sys

    return sys.modules[__name__]


_CODE_VERSION = ""


class DumpSource:
    """Instance events of archived dumps (see the module's doc), as the database source gives them.

    ``dumps`` as :func:`starcompactor.machines.list_backups` lists them; the newest (by the time in its
    name, else its modification time) is read, and with ``all_dumps`` (the default) every one. ``cache``: a
    :class:`~starcompactor.dump.cache.DumpCache` keeping each dump's rows (and what each pair of
    consecutive dumps dropped), so a re-run reads only new or changed dumps.
    """

    def __init__(
        self,
        dumps: Sequence[DumpFile],
        databases: Sequence[str],
        *,
        start: Optional[dt.datetime] = None,
        end: Optional[dt.datetime] = None,
        instance_type: str = "vm",
        include_unfinished: bool = False,
        all_dumps: bool = True,
        cache: Optional[DumpCache] = None,
        transport_params: Optional[Dict[str, Any]] = None,
        workdir: Optional[str] = None,
    ) -> None:
        global _CODE_VERSION
        check_instance_type(instance_type)
        if not databases:
            raise ConfigError("no Nova databases to read (nova_databases is empty)")
        if not dumps:
            raise ConfigError("no dumps to read")
        if not _CODE_VERSION:
            _CODE_VERSION = _code_version()
        ordered = dump_order(dumps)
        self.dumps = ordered if all_dumps else ordered[-1:]
        self.available = len(ordered)
        self.settings = ArchiveSettings(tuple(dict.fromkeys(databases)), instance_type)
        self.start = start
        self.end = end
        self.include_unfinished = include_unfinished
        self.all_dumps = all_dumps
        self.cache = cache
        self.transport_params = transport_params
        self.workdir = workdir
        self.stats = [DumpStats(d.name, d.uri) for d in self.dumps]
        self.dropped = 0  #: events only older dumps hold
        self.skipped_unfinished = 0
        self.events = 0

    # -- reading ---------------------------------------------------------------------------------------

    def _identity(self, dump: DumpFile) -> str:
        stamp = getattr(dump, "etag", None) or (dump.mtime.isoformat() if dump.mtime else None)
        return dump_identity(dump.uri, dump.size, stamp, transport_params=self.transport_params)

    def _read(self, index: int, workdir: str) -> Iterator[List[Any]]:
        dump = self.dumps[index]
        log.info("reading %s", dump.name)
        self.stats[index].read = True
        return read_dump_events(
            dump.uri,
            dump.name,
            self.settings.databases,
            self.settings.instance_type,
            workdir,
            transport_params=self.transport_params,
            stats=self.stats[index],
        )

    def _rows_of(self, index: int, identities: Sequence[Optional[str]], workdir: str) -> Iterator[List[Any]]:
        """A dump's rows: from the cache, else read (and stored in the cache when there is one)."""
        if self.cache is None:
            return self._read(index, workdir)
        key = entry_key("instance-rows", identities[index], self.settings.key())
        try:
            rows = self.cache.records("instance-rows", key)
            return _counted(rows, self.stats[index])
        except CacheMiss:
            pass
        self.cache.write_records("instance-rows", key, _batched(self._read(index, workdir)))
        return _counted(self.cache.records("instance-rows", key, count=False), self.stats[index])

    def joined_rows(self) -> Iterator[List[Any]]:
        """Every event (unfiltered: unfinished ones too, any creation time) in output order, once."""
        workdir = tempfile.mkdtemp(prefix="starcompactor-", dir=self.workdir)
        try:
            identities: List[Optional[str]] = [
                self._identity(d) if self.cache is not None else None for d in self.dumps
            ]
            last = len(self.dumps) - 1
            # what each dump holds that the next one does not, oldest first
            dropped: List[Iterable[List[Any]]] = []
            previous: Optional[str] = None  # without a cache: the previous dump's rows, on disk
            for index in range(1, last + 1):
                if self.cache is not None:
                    dropped.append(self._dropped_cached(index, identities, workdir))
                    continue
                if previous is None:
                    previous = _store(self._read(index - 1, workdir), workdir, f"dump-{index - 1}")
                current = _store(self._read(index, workdir), workdir, f"dump-{index}")
                path = _store(
                    dropped_rows(_read_file(previous), _read_file(current)), workdir, f"dropped-{index}"
                )
                os.unlink(previous)
                previous = current
                dropped.append(_read_file(path, self._count_dropped))
            if previous is not None:
                newest: Iterable[List[Any]] = _read_file(previous)
            else:
                newest = self._rows_of(last, identities, workdir)
            if dropped:
                yield from union_rows([newest, *dropped[::-1]])
            else:
                yield from newest
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def _count_dropped(self, n: int) -> None:
        self.dropped += n

    def _dropped_cached(
        self, index: int, identities: Sequence[Optional[str]], workdir: str
    ) -> Iterable[List[Any]]:
        """The rows dump ``index - 1`` has and dump ``index`` lacks, from the cache or made and stored."""
        assert self.cache is not None
        key = entry_key("instance-dropped", identities[index - 1], identities[index], self.settings.key())
        try:
            return _counting(self.cache.records("instance-dropped", key), self._count_dropped)
        except CacheMiss:
            pass
        older = self._rows_of(index - 1, identities, workdir)
        newer = self._rows_of(index, identities, workdir)
        self.cache.write_records("instance-dropped", key, _batched(dropped_rows(older, newer)))
        return _counting(self.cache.records("instance-dropped", key, count=False), self._count_dropped)

    # -- in parts (forked processes) ------------------------------------------------------------------

    @contextmanager
    def split(self, parts: int, minimum: int) -> Iterator[int]:
        """Read the dump now and cut its events into up to ``parts`` ranges of start-time order; yields
        how many (1: no split). Within the block, ``row_batches(masker, part=k)`` gives range ``k``, and
        a forked process can give each (the runs are read by each, the tables shared copy-on-write).

        Only one dump read afresh splits (one dump listed, or ``--newest-dump-only``; no cache), with at
        least ``minimum`` events; else the block yields 1 and nothing is read before ``row_batches``.
        """
        if parts < 2 or len(self.dumps) != 1 or self.cache is not None:
            yield 1
            return
        workdir = tempfile.mkdtemp(prefix="starcompactor-", dir=self.workdir)
        try:
            dump = self.dumps[0]
            log.info("reading %s", dump.name)
            self.stats[0].read = True
            spilled = spill_dump_events(
                dump.uri,
                dump.name,
                self.settings.databases,
                self.settings.instance_type,
                workdir,
                run_size=RUN_SIZE,
                transport_params=self.transport_params,
                stats=self.stats[0],
            )
            keys = spilled.split_keys(parts) if spilled.size >= minimum else []
            bounds: List[Optional[str]] = [None, *keys, None]
            self._spilled = spilled
            self._ranges = list(zip(bounds, bounds[1:]))
            yield len(self._ranges)
        finally:
            self._spilled = None
            self._ranges = []
            shutil.rmtree(workdir, ignore_errors=True)

    _spilled: Optional[SpilledDump] = None
    _ranges: List[Tuple[Optional[str], Optional[str]]] = []

    def part_totals(self) -> Tuple[int, int, int]:
        """What :meth:`row_batches` of one part counted: (events, skipped unfinished, joined events)."""
        return self.events, self.skipped_unfinished, self.stats[0].events

    def add_part_totals(self, totals: Sequence[Tuple[int, int, int]]) -> None:
        """The manifest's figures of the whole from those of its parts (:meth:`part_totals`)."""
        self.events = sum(t[0] for t in totals)
        self.skipped_unfinished = sum(t[1] for t in totals)
        self.stats[0].events = sum(t[2] for t in totals)

    # -- the trace -------------------------------------------------------------------------------------

    def _rows(self, part: Optional[int]) -> Iterator[List[Any]]:
        if self._spilled is None:
            if part is not None:
                raise ValueError("row_batches(part=…) needs the block of split()")
            return self.joined_rows()
        low, high = self._ranges[part] if part is not None else (None, None)
        return self._spilled.rows(low, high, stats=self.stats[0])

    def row_batches(self, masker: Optional[Masker], part: Optional[int] = None) -> Iterator[List[tuple]]:
        """Rows shaped as the database path's (see :func:`~starcompactor.instances.db.rows_to_lines`):
        ``(event, start, finish, result, None, (uuid, name, user, project, host, properties))``, masked by
        ``masker``, in batches, in start-time order (``part``: one range of :meth:`split`)."""
        flavors = Flavors()
        vm = self.settings.instance_type == "vm"
        lower = _window_code(self.start, upper=False)
        upper = _window_code(self.end, upper=True)
        items: Dict[tuple, tuple] = {}
        times: Dict[str, dt.datetime] = {}
        parse = dt.datetime.fromisoformat
        if masker is not None:
            mask = masker.table
            mask_once = masker.uncached
        batch: List[tuple] = []
        skipped = 0
        events = 0
        for row in self._rows(part):
            created = row[CREATED]
            if lower is not None and (created < lower):
                continue
            if upper is not None and (created < 0 or created > upper):
                continue
            if row[FINISH] is None and not self.include_unfinished:
                skipped += 1
                continue
            ident = (row[UUID], row[NAME], row[USER], row[PROJECT], row[HOST], row[FLAVOR])
            item = items.get(ident)
            if item is None:
                properties = flavors[row[FLAVOR]] if vm and row[FLAVOR] is not None else {}
                if masker is None:
                    item = (row[UUID], row[NAME], row[USER], row[PROJECT], row[HOST], properties)
                else:
                    item = (
                        mask_once(row[UUID]),
                        mask_once(row[NAME]),
                        mask[row[USER]],
                        mask[row[PROJECT]],
                        mask[row[HOST]],
                        properties,
                    )
                if len(items) >= 65536:
                    items.clear()
                items[ident] = item
            start = row[START]
            finish = row[FINISH]
            start_time = times.get(start) if start else None
            if start and start_time is None:
                if len(times) >= 65536:
                    times.clear()
                start_time = times[start] = parse(start)
            # the host is whole here (the rule applied as the rows were joined): no event host beside it
            batch.append((row[EVENT], start_time, parse(finish) if finish else None, row[RESULT], None, item))
            events += 1
            if len(batch) >= BATCH:
                yield batch
                batch = []
        if batch:
            yield batch
        self.skipped_unfinished = skipped
        self.events = events

    def masked_batches(self, masker: Optional[Masker]) -> Iterator[List[Any]]:
        from .db import rows_to_events

        return map(rows_to_events, self.row_batches(masker))

    def batches(self) -> Iterator[List[Any]]:
        return self.masked_batches(None)

    def __iter__(self) -> Iterator[Any]:
        for batch in self.batches():
            yield from batch

    def close(self) -> None:
        pass

    def manifest_extra(self) -> Dict[str, Any]:
        extra: Dict[str, Any] = {
            "source": "dump",
            "window": {
                "start": self.start.isoformat() if self.start else None,
                "end": self.end.isoformat() if self.end else None,
            },
            "include_unfinished": self.include_unfinished,
            "skipped_unfinished": self.skipped_unfinished,
            "all_dumps": self.all_dumps,
            "dumps_available": self.available,
            "databases": list(self.settings.databases),
        }
        if self.all_dumps:
            extra["events_only_in_older_dumps"] = self.dropped
        return extra

    def inputs(self) -> List[Dict[str, Any]]:
        """Manifest ``inputs``: each dump by its name in the backup directory (never its URI)."""
        return [{"source": "dump", "name": s.name, "events": s.events, "cells": s.cells} for s in self.stats]


def _counted(rows: Iterator[List[Any]], stats: DumpStats) -> Iterator[List[Any]]:
    count = 0
    for row in rows:
        count += 1
        yield row
    stats.events = count


__all__ = ["DumpSource", "dropped_rows", "read_dump_events", "union_rows"]
