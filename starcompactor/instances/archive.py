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

**Several dumps.** Every dump but the newest is stored once (in the cache, or in a private one for the
run): its joined rows and, line for line beside them, its identity keys as text (:func:`_identity_text`,
ordered as the rows). What a dump holds and the next lacks is found from the two dumps' keys, a batch of
1,024 compared at once while they agree (the usual case: the same events, a few new, a few purged), and
only the dropped rows are decoded. The newest dump is not stored before it is written: its runs are
merged in key ranges (one per process), each compared with the previous dump's keys and merged with the
stored drops of that range as it goes by, and what the parts stored becomes its cache entries at the end.
A re-run after one more dump thus reads that dump and the previous dump's keys, not its rows.
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
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import chain, dropwhile, takewhile
from operator import itemgetter
from typing import IO, Any, Dict, Iterable, Iterator, List, Optional, Protocol, Sequence, Tuple

import orjson

from ..config import check_instance_type
from ..dump import TableKey
from ..dump import cache as dump_cache
from ..dump.cache import DumpCache, PartWriter, code_version, dump_identity, entry_key
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
    identities: bool = False,
) -> Iterator[List[Any]]:
    """One dump's joined events in output order (see the module's doc for the row layout; with
    ``identities``, each row ends with its identity key).

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
        yield from spilled.rows(stats=stats, identities=identities)
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
            key = sample[len(sample) * i // parts][:-1]  # an order prefix: live and shadow rows together
            if (not keys or key > keys[-1]) and key > sample[0][:-1]:
                keys.append(key)
        return keys

    def rows(
        self,
        low: Optional[str] = None,
        high: Optional[str] = None,
        stats: Optional[DumpStats] = None,
        identities: bool = False,
    ) -> Iterator[List[Any]]:
        """The joined events in output order whose sort key is in ``[low, high)`` (None: unbounded).
        ``identities``: each row ends with its identity key (see :func:`_identity_text`), for the
        caller to pop; made here from the run key, it costs a third of making it from the row."""
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
            yield from self._join(streams, stats, identities)
        finally:
            for handle in handles:
                handle.close()

    def _join(
        self, streams: List[Iterable[Any]], stats: Optional[DumpStats], identities: bool = False
    ) -> Iterator[List[Any]]:
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
            uuid = uuids[number]
            row = [
                key[:-suffix],
                cell,
                event_id,
                uuid,
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
            if identities:
                row.append(f"{key[:-1]}\0{uuid}\0{event or ''}")
            yield row
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


# Identity keys as text. A dump's rows are stored with one key per row (a cache entry of its own, line
# for line beside the rows): the order prefix (the run key without its live/shadow digit, so ordered as
# the rows are) then the instance's uuid and the event's name. Comparing two dumps' keys a batch at a
# time (two lists of str: C speed) finds what the newer lacks without decoding either dump's rows.


def _order_prefix(row: List[Any], width: int) -> str:
    """The order of a joined row as text: its start time, cell and id (what split bounds are made of)."""
    return f"{row[START]}\0{row[CELL]:0{width}d}{row[ID] + _ID_OFFSET:020d}"


def _identity_text(row: List[Any], width: int) -> str:
    return f"{row[START]}\0{row[CELL]:0{width}d}{row[ID] + _ID_OFFSET:020d}\0{row[UUID] or ''}\0{row[EVENT] or ''}"


def _key_prefix(key: str) -> str:
    """The order prefix of an identity key (the text up to its second NUL)."""
    return key[: key.index("\0", key.index("\0") + 1)]


class OlderKeys:
    """An older dump's stored keys and rows (entries written line for line together), walked in order
    from ``low`` on as a newer dump's keys go by (:meth:`feed`); a row is decoded only when dropped."""

    def __init__(self, pairs: Iterator[Tuple[bytes, bytes]], low: Optional[str]) -> None:
        self._pairs = pairs
        self.keys: List[str] = []
        self.pos = 0
        self._starts: List[int] = []  #: where each held line starts in ``keys``
        self._lines: List[Any] = []  #: each held line's rows: bytes until one of them is needed
        self._done = False
        if low is not None:
            while self._more():
                if self.keys[-1] >= low:
                    break
                self.keys, self._starts, self._lines = [], [], []
            self.pos = bisect_left(self.keys, low)  # "key < low" holds for a leading run of keys

    def _more(self) -> bool:
        pair = next(self._pairs, None)
        if pair is None:
            self._done = True
            return False
        keys, rows = pair
        self._starts.append(len(self.keys))
        self._lines.append(rows)
        self.keys.extend(orjson.loads(keys))
        return True

    def _row(self, index: int) -> List[Any]:
        line = bisect_right(self._starts, index) - 1
        rows = self._lines[line]
        if isinstance(rows, bytes):
            rows = self._lines[line] = orjson.loads(rows)
        return rows[index - self._starts[line]]

    def _forget_consumed(self) -> None:
        line = bisect_right(self._starts, self.pos) - 1
        if line > 0:
            shift = self._starts[line]
            del self.keys[:shift]
            del self._starts[:line]
            del self._lines[:line]
            self._starts = [start - shift for start in self._starts]
            self.pos -= shift

    def feed(self, newer: List[str], boundary: Optional[str]) -> List[List[Any]]:
        """The older rows below ``boundary`` (an order prefix; None: all that are left) whose key is not in
        ``newer``, the newer dump's keys up to ``boundary`` not fed before."""
        if self.pos > 65536:
            self._forget_consumed()
        count = len(newer)
        while len(self.keys) - self.pos < count and self._more():
            pass
        keys, pos = self.keys, self.pos
        dropped: List[List[Any]] = []
        if self._done and pos >= len(keys):
            return dropped
        matched: Optional[set] = None
        if count and keys[pos : pos + count] == newer:  # the usual case: the same events, in order
            pos += count
        else:
            matched = set(newer)
        while True:
            if pos >= len(keys):
                self.pos = pos
                if not self._more():
                    break
                keys = self.keys
                continue
            key = keys[pos]
            if boundary is not None and key >= boundary:
                break
            if matched is None or key not in matched:
                dropped.append(self._row(pos))
            pos += 1
        self.pos = pos
        return dropped


def keys_dropped(
    older: OlderKeys, newer: Iterable[List[str]], high: Optional[str] = None
) -> Iterator[List[List[Any]]]:
    """Batches of the older dump's rows below ``high`` (an order prefix) whose keys the newer dump's
    (``newer``, in batches) lacks. The keys of the last order prefix of a batch wait for the next: one
    prefix's keys are compared together."""
    carry: List[str] = []
    for batch in newer:
        keys = carry + batch if carry else batch
        if not keys:
            continue
        boundary = _key_prefix(keys[-1])
        cut = bisect_left(keys, boundary)
        carry = keys[cut:]
        yield older.feed(keys[:cut], boundary)
    yield older.feed(carry, high)


def _pairs(keys: Iterator[bytes], rows: Iterator[bytes]) -> Iterator[Tuple[bytes, bytes]]:
    yield from zip(keys, rows)
    for _ in chain(keys, rows):  # pragma: no cover - written together, so of one length
        raise ConfigError("a cache entry of keys does not match its rows")


def _in_range(
    rows: Iterable[List[Any]], low: Optional[str], high: Optional[str], width: int
) -> Iterator[Any]:
    """``(order prefix, row)`` of the rows whose prefix is in ``[low, high)``."""
    for row in rows:
        prefix = _order_prefix(row, width)
        if (low is None or prefix >= low) and (high is None or prefix < high):
            yield prefix, row


class _PartFiles:
    """What one part stores for the cache (the newest dump's rows and keys, what the previous dump held
    and it does not): lines in private files of the work directory, made into entries by the parent."""

    NAMES = ("rows", "keys", "dropped")

    def __init__(self, workdir: str, part: int) -> None:
        self.writers = [PartWriter(self.path(workdir, part, name)) for name in self.NAMES]

    @classmethod
    def path(cls, workdir: str, part: int, name: str) -> str:
        return os.path.join(workdir, f"part-{part:03d}.{name}")

    def add(self, which: int, batch: List[Any]) -> None:
        self.writers[which].add(batch)

    def close(self) -> None:
        for writer in self.writers:
            writer.close()

    @property
    def totals(self) -> List[int]:
        """(count, length, CRC) of each file, one after the other."""
        return [value for writer in self.writers for value in writer.totals]


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

    @property
    def width(self) -> int:
        """Digits of a cell's number in the order prefixes."""
        return len(str(len(self.databases)))


def _code_version() -> str:
    from ..dump import raw, reader, schema, values
    from . import hosts

    return code_version(raw, reader, schema, values, hosts, dump_cache, _this_module())


def _this_module() -> Any:
    import sys

    return sys.modules[__name__]


_CODE_VERSION = ""

ROWS, KEYS, DROPPED = "instance-rows", "instance-keys", "instance-dropped"


@dataclass
class _Plan:
    """How the newest dump's rows are merged with what older dumps alone hold (see :meth:`DumpSource._plan`)."""

    spilled: SpilledDump
    cache: DumpCache
    older: Optional[Tuple[str, str]]  #: entries (rows, keys) of the dump before the newest, to diff with
    dropped: List[str]  #: entries of rows only older dumps hold, newest first
    store: Optional[Tuple[str, str, Optional[str]]]  #: entries to make: newest rows, keys; the diff's rows
    workdir: str


class DumpSource:
    """Instance events of archived dumps (see the module's doc), as the database source gives them.

    ``dumps`` as :func:`starcompactor.machines.list_backups` lists them; the newest (by the time in its
    name, else its modification time) is read, and with ``all_dumps`` (the default) every one. ``cache``: a
    :class:`~starcompactor.dump.cache.DumpCache` keeping each dump's rows and keys (and what each pair of
    consecutive dumps dropped), so a re-run reads only new or changed dumps.

    The newest dump read afresh is merged with the rest as it is written: its rows go by in key ranges
    (one per process, :meth:`split`), each compared with the previous dump's stored keys, and what the
    previous dump alone held and older drops are merged in. Without a cache, older dumps are stored in a
    private one for the run.
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
        self._identities: List[str] = []
        self._plan_now: Optional[_Plan] = None
        self._ranges: List[Tuple[Optional[str], Optional[str]]] = []
        self._part_counts: List[List[int]] = []

    # -- reading ---------------------------------------------------------------------------------------

    def _identity(self, dump: DumpFile) -> str:
        stamp = getattr(dump, "etag", None) or (dump.mtime.isoformat() if dump.mtime else None)
        return dump_identity(dump.uri, dump.size, stamp, transport_params=self.transport_params)

    def _read(self, index: int, workdir: str, identities: bool = False) -> Iterator[List[Any]]:
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
            identities=identities,
        )

    def _key(self, kind: str, *indexes: int) -> str:
        return entry_key(kind, *(self._identities[i] for i in indexes), self.settings.key())

    def _stored(self, cache: DumpCache, index: int, workdir: str) -> Tuple[str, str]:
        """The entries (rows, keys) of dump ``index``: found, else the dump is read and they are made."""
        rows_key, keys_key = self._key(ROWS, index), self._key(KEYS, index)
        if cache.check(ROWS, rows_key) and cache.check(KEYS, keys_key):
            if not self.stats[index].read:
                self.stats[index].events = cache.record_count(KEYS, keys_key) or 0
            return rows_key, keys_key
        with cache.writer(ROWS, rows_key) as rows_entry, cache.writer(KEYS, keys_key) as keys_entry:
            for batch in _batched(self._read(index, workdir, identities=True)):
                keys_entry.add([row.pop() for row in batch])
                rows_entry.add(batch)
        return rows_key, keys_key

    @staticmethod
    def _older_keys(cache: DumpCache, entries: Tuple[str, str], low: Optional[str]) -> OlderKeys:
        """A dump's keys and rows, from entries :meth:`_stored` checked or made (not checked again)."""
        rows_key, keys_key = entries
        lines = _pairs(
            cache.batch_lines(KEYS, keys_key, count=False, check=False),
            cache.batch_lines(ROWS, rows_key, count=False, check=False),
        )
        return OlderKeys(lines, low)

    def _dropped_entry(self, cache: DumpCache, index: int, workdir: str) -> str:
        """The entry of the rows dump ``index - 1`` holds and dump ``index`` lacks: found, else made from
        both dumps' keys (each read first if it is not stored)."""
        key = self._key(DROPPED, index - 1, index)
        if cache.check(DROPPED, key):
            return key
        older = self._older_keys(cache, self._stored(cache, index - 1, workdir), None)
        _rows_key, newer_keys = self._stored(cache, index, workdir)
        newer = map(orjson.loads, cache.batch_lines(KEYS, newer_keys, count=False, check=False))
        with cache.writer(DROPPED, key) as entry:
            for batch in keys_dropped(older, newer):
                entry.add(batch)
        if cache is not self.cache:  # the run's private store keeps two dumps at most, not a year of them
            for kind in (ROWS, KEYS):
                cache.path(kind, self._key(kind, index - 1)).unlink(missing_ok=True)
        return key

    def _dropped_rows(self, cache: DumpCache, key: str) -> Iterator[List[Any]]:
        for row in cache.records(DROPPED, key, count=False):
            self.dropped += 1
            yield row

    @contextmanager
    def _planned(self) -> Iterator[Optional[_Plan]]:
        """Everything made before the newest dump's rows go by: older dumps stored and compared, the
        newest read into sorted runs. None when the newest dump's rows are in the cache (nothing to read).
        On leaving the block without an error, what the parts stored becomes cache entries."""
        workdir = tempfile.mkdtemp(prefix="starcompactor-", dir=self.workdir)
        try:
            persistent = self.cache is not None
            cache = self.cache if self.cache is not None else DumpCache(os.path.join(workdir, "cache"))
            if persistent:
                self._identities = [self._identity(d) for d in self.dumps]
            else:
                self._identities = [f"run-{i}" for i in range(len(self.dumps))]
            last = len(self.dumps) - 1
            dropped = [self._dropped_entry(cache, index, workdir) for index in range(1, last)]
            if (
                persistent
                and cache.check(ROWS, self._key(ROWS, last))
                and cache.check(KEYS, self._key(KEYS, last))
            ):
                if last:
                    dropped.append(self._dropped_entry(cache, last, workdir))
                for index in range(last):
                    if not self.stats[index].read:
                        self.stats[index].events = cache.record_count(KEYS, self._key(KEYS, index)) or 0
                self._cached_newest = (cache, self._key(ROWS, last), dropped[::-1])
                yield None
                return
            older: Optional[Tuple[str, str]] = None
            diff_key: Optional[str] = None
            checking: Optional[Future] = None
            if last:
                diff_key = self._key(DROPPED, last - 1, last)
                entries = (self._key(ROWS, last - 1), self._key(KEYS, last - 1))
                if persistent and cache.check(DROPPED, diff_key):
                    dropped.append(diff_key)
                    diff_key = None
                elif cache.exists(ROWS, entries[0]) and cache.exists(KEYS, entries[1]):
                    # checked (a CRC pass over both) while the newest dump is read: zlib and reading
                    # release the GIL
                    checking = ThreadPoolExecutor(1).submit(
                        lambda: cache.check(ROWS, entries[0]) and cache.check(KEYS, entries[1])
                    )
                else:
                    older = self._stored(cache, last - 1, workdir)
            dump = self.dumps[last]
            log.info("reading %s", dump.name)
            self.stats[last].read = True
            try:
                spilled = spill_dump_events(
                    dump.uri,
                    dump.name,
                    self.settings.databases,
                    self.settings.instance_type,
                    workdir,
                    run_size=RUN_SIZE,
                    transport_params=self.transport_params,
                    stats=self.stats[last],
                )
            finally:
                whole = checking.result() if checking is not None else False
            if checking is not None:
                older = entries if whole else self._stored(cache, last - 1, workdir)
            for index in range(last):
                if not self.stats[index].read:  # its events, for the manifest
                    self.stats[index].events = cache.record_count(KEYS, self._key(KEYS, index)) or 0
            store = (self._key(ROWS, last), self._key(KEYS, last), diff_key) if persistent else None
            plan = _Plan(spilled, cache, older, dropped[::-1], store, workdir)
            self._part_counts = []
            try:
                yield plan
            finally:
                spilled.close()
            if store is not None:
                self._store_parts(plan)
        finally:
            self._cached_newest = None
            shutil.rmtree(workdir, ignore_errors=True)

    _cached_newest: Optional[Tuple[DumpCache, str, List[str]]] = None

    def _store_parts(self, plan: _Plan) -> None:
        """The parts' files made into the newest dump's entries (rows, keys) and the diff's."""
        assert plan.store is not None
        for which, key in enumerate(plan.store):
            if key is None:
                continue
            kind = (ROWS, KEYS, DROPPED)[which]
            with plan.cache.writer(kind, key) as entry:
                for part, totals in enumerate(self._part_counts):
                    count, length, crc = totals[3 * which : 3 * which + 3]
                    entry.add_part(
                        _PartFiles.path(plan.workdir, part, _PartFiles.NAMES[which]), count, length, crc
                    )

    def _part_rows(
        self, plan: _Plan, part: int, low: Optional[str], high: Optional[str]
    ) -> Iterator[List[Any]]:
        """The rows of one key range in output order: the newest dump's, what the previous one alone
        holds, and what older ones alone hold; each identity once, from the newest dump holding it."""
        if plan.older is None and not plan.dropped and plan.store is None:  # one dump, nothing to merge
            newest = 0
            for row in plan.spilled.rows(low, high):
                newest += 1
                yield row
            self._part_counts.append([])
            self._newest_events = newest
            return
        width = self.settings.width
        older = self._older_keys(plan.cache, plan.older, low) if plan.older is not None else None
        streams = [
            _in_range(plan.cache.records(DROPPED, key, count=False), low, high, width) for key in plan.dropped
        ]
        heads = [next(stream, None) for stream in streams]
        files = _PartFiles(plan.workdir, part) if plan.store is not None else None
        carry_rows: List[List[Any]] = []
        carry_keys: List[str] = []
        newest = 0
        dropped = 0
        try:
            for batch in _batched(plan.spilled.rows(low, high, identities=True)):
                newest += len(batch)
                keys = [row.pop() for row in batch]
                if files is not None:
                    files.add(0, batch)
                    files.add(1, keys)
                rows = carry_rows + batch if carry_rows else batch
                keys = carry_keys + keys if carry_keys else keys
                boundary = _order_prefix(rows[-1], width)
                cut = bisect_left(keys, boundary)  # the last order prefix waits for the next batch
                carry_rows, carry_keys = rows[cut:], keys[cut:]
                extra = older.feed(keys[:cut], boundary) if older is not None else []
                if files is not None:
                    files.add(2, extra)
                dropped += len(extra)
                yield from self._merged(rows[:cut], extra, streams, heads, boundary)
            extra = older.feed(carry_keys, high) if older is not None else []
            if files is not None:
                files.add(2, extra)
            dropped += len(extra)
            yield from self._merged(carry_rows, extra, streams, heads, None)
        finally:
            if files is not None:
                files.close()
        self.dropped += dropped
        self._part_counts.append(files.totals if files is not None else [])
        self._newest_events = newest

    _newest_events = 0

    def _merged(
        self,
        rows: List[List[Any]],
        extra: List[List[Any]],
        streams: List[Iterator[Any]],
        heads: List[Any],
        boundary: Optional[str],
    ) -> Iterator[List[Any]]:
        """``rows`` (the newest dump's) with ``extra`` (the previous dump's drops) and the older drops
        below ``boundary``, in order; an identity more than one holds comes once, from the newest."""
        ranked: List[List[Any]] = [extra]
        for i, stream in enumerate(streams):
            taken: List[Any] = []
            head = heads[i]
            while head is not None and (boundary is None or head[0] < boundary):
                taken.append(head[1])
                head = next(stream, None)
            heads[i] = head
            ranked.append(taken)
            self.dropped += len(taken)
        if not any(ranked):
            yield from rows
            return
        groups = [
            [((_identity_key(row), rank, i), row) for i, row in enumerate(group)]
            for rank, group in enumerate([rows, *ranked])
        ]
        last = None
        for (key, _rank, _i), row in heapq.merge(*groups):
            if key != last:
                last = key
                yield row

    def joined_rows(self) -> Iterator[List[Any]]:
        """Every event (unfiltered: unfinished ones too, any creation time) in output order, once."""
        with self._planned() as plan:
            if plan is None:
                yield from self._cached_union()
            else:
                yield from self._part_rows(plan, 0, None, None)
                self.stats[-1].events = self._newest_events

    def _cached_union(self) -> Iterator[List[Any]]:
        """Every row when the newest dump's rows are stored: them and the stored drops, merged."""
        assert self._cached_newest is not None
        cache, rows_key, dropped = self._cached_newest
        newest = _counted(cache.records(ROWS, rows_key), self.stats[-1])
        streams = [self._dropped_rows(cache, key) for key in dropped]
        yield from union_rows([newest, *streams]) if streams else newest

    # -- in parts (forked processes) ------------------------------------------------------------------

    @contextmanager
    def split(self, parts: int, minimum: int) -> Iterator[int]:
        """Read now what must be read, and cut the newest dump's events into up to ``parts`` ranges of
        start-time order; yields how many (1: no split). Within the block, ``row_batches(masker, part=k)``
        gives range ``k``, and a forked process can give each (the runs are read by each, the tables
        shared copy-on-write).

        When the newest dump's rows are in the cache, or there are fewer than ``minimum`` events, the
        block yields 1 and ``row_batches`` (no part) gives every row.
        """
        if parts < 2:
            yield 1
            return
        with self._planned() as plan:
            if plan is None:
                self._whole = True
                try:
                    yield 1
                finally:
                    self._whole = False
                return
            keys = plan.spilled.split_keys(parts) if plan.spilled.size >= minimum else []
            bounds: List[Optional[str]] = [None, *keys, None]
            self._plan_now = plan
            self._ranges = list(zip(bounds, bounds[1:]))
            try:
                yield len(self._ranges)
            finally:
                self._plan_now = None
                self._ranges = []

    _whole = False

    def part_totals(self) -> Tuple[int, ...]:
        """What :meth:`row_batches` of one part counted: events, skipped unfinished, the newest dump's
        events, events only older dumps hold, and what it stored (count, length, CRC of each file)."""
        return (
            self.events,
            self.skipped_unfinished,
            self._newest_events,
            self.dropped,
            *self._part_counts[-1],
        )

    def add_part_totals(self, totals: Sequence[Sequence[int]]) -> None:
        """The manifest's figures of the whole from those of its parts (:meth:`part_totals`), in order."""
        self.events = sum(t[0] for t in totals)
        self.skipped_unfinished = sum(t[1] for t in totals)
        self.stats[-1].events = sum(t[2] for t in totals)
        self.dropped = sum(t[3] for t in totals)
        self._part_counts = [list(t[4:]) for t in totals]

    # -- the trace -------------------------------------------------------------------------------------

    def _rows(self, part: Optional[int]) -> Iterator[List[Any]]:
        plan = self._plan_now
        if plan is None:
            if part is not None:
                raise ValueError("row_batches(part=…) needs the block of split()")
            return self._cached_union() if self._whole else self.joined_rows()
        if part is None:
            part = 0
            low, high = None, None
        else:
            low, high = self._ranges[part]
        self.dropped = 0
        return self._part_rows(plan, part, low, high)

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


__all__ = ["DumpSource", "OlderKeys", "dropped_rows", "keys_dropped", "read_dump_events", "union_rows"]
