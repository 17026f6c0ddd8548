"""Merge streams of sorted batches into one stream of batches in order, without a heap operation per item.

The instance trace merges the cells' results (each sorted by start time in SQL) this way, in one process
or from worker processes.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, List, Tuple


def _cut(batch: List[Any], bound: Any, inclusive: bool, key: Callable[[Any], Any], lo: int = 0) -> int:
    """How many leading items of ``batch`` (sorted) have a key below ``bound`` (or equal, if inclusive);
    the answer is known to be at least ``lo``."""
    hi = len(batch)
    while lo < hi:
        mid = (lo + hi) // 2
        value = key(batch[mid])
        if value < bound or (inclusive and value == bound):
            lo = mid + 1
        else:
            hi = mid
    return lo


def _merge_two(earlier: List[Any], later: List[Any], key: Callable[[Any], Any]) -> List[Any]:
    """Two sorted lists in one; on equal keys ``earlier``'s items first (a stable merge).

    The shorter list's items are placed into the longer by binary search and the longer is copied in
    slices: a cell with a few events (``nova_cell0``) costs next to nothing beside a busy one.
    """
    if len(later) <= len(earlier):
        dense, sparse, inclusive = earlier, later, True  # a later item goes after equal earlier ones
    else:
        dense, sparse, inclusive = later, earlier, False  # an earlier item goes before equal later ones
    out: List[Any] = []
    position = 0
    for item in sparse:
        cut = _cut(dense, key(item), inclusive, key, position)
        out.extend(dense[position:cut])
        out.append(item)
        position = cut
    out.extend(dense[position:])
    return out


def merge_sorted_batches(
    streams: List[Iterator[List[Any]]], key: Callable[[Any], Any]
) -> Iterator[List[Any]]:
    """Merge streams of sorted batches into batches in (key, stream, position) order.

    The same order as :func:`heapq.merge` of the items (ties go to the earlier stream), without a heap
    operation per item (see :func:`_merge_two`). Each round emits everything up
    to the smallest last key among the current batches: nothing after it can sort before it. All
    streams are closed (their connections too) when done or abandoned.
    """
    try:
        heads: List[Tuple[int, List[Any]]] = []
        for index, stream in enumerate(streams):
            batch = next(stream, None)
            if batch:
                heads.append((index, batch))
        while len(heads) > 1:
            bound, bound_index = min((key(batch[-1]), index) for index, batch in heads)
            parts = []
            following = []
            for index, batch in heads:
                cut = len(batch) if index == bound_index else _cut(batch, bound, index < bound_index, key)
                if cut:
                    parts.append(batch[:cut] if cut < len(batch) else batch)
                rest = batch[cut:]
                if not rest:
                    rest = next(streams[index], [])
                if rest:
                    following.append((index, rest))
            heads = following
            if parts:
                merged = parts[0]
                for part in parts[1:]:
                    merged = _merge_two(merged, part, key)
                yield merged
        if heads:
            index, batch = heads[0]
            yield batch
            yield from streams[index]
    finally:
        for stream in streams:
            stream.close()  # type: ignore[attr-defined]
