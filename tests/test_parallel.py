"""map_ordered: results in input order, whatever order the calls are started in."""

from __future__ import annotations

import concurrent.futures as cf

from starcompactor.parallel import map_ordered, open_executor


class _Recording(cf.Executor):
    """Runs each call at once, and remembers the order calls were submitted in."""

    def __init__(self) -> None:
        self.started: list = []

    def submit(self, fn, /, *args, **kwargs):
        self.started.append(args[0])
        future: cf.Future = cf.Future()
        future.set_result(fn(*args, **kwargs))
        return future


def test_the_longest_call_is_started_first_and_results_stay_in_input_order():
    executor = _Recording()
    done = []
    results = map_ordered(lambda x: x * 10, [1, 2, 3, 4], executor, lambda i, r: done.append((i, r)), first=3)
    assert executor.started == [4, 1, 2, 3]
    assert results == [10, 20, 30, 40]
    assert sorted(done) == [(0, 10), (1, 20), (2, 30), (3, 40)]
    assert map_ordered(str, [1, 2], executor) == ["1", "2"] and executor.started[-2:] == [1, 2]
    with open_executor("thread", 2) as pool:
        assert map_ordered(lambda x: -x, list(range(7)), pool, first=0) == [0, -1, -2, -3, -4, -5, -6]
