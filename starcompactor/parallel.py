"""Fan the dumps out over workers; results come back in input order.

Executors are a small registry keyed by URL scheme (:data:`EXECUTORS`): ``process`` (the default: a
process pool with one worker per core; one worker runs in this process), ``thread``, and
``dask://HOST:PORT`` (or ``tcp://``), which runs the same map on a Dask cluster through distributed's
``concurrent.futures`` executor (extra ``dask``, imported only when asked for).
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing
import os
import pickle
from contextlib import contextmanager
from typing import Any, Callable, Iterator, List, Optional, Sequence, Tuple, TypeVar

from .errors import ConfigError, MissingDependencyError, StarCompactorError
from .registry import Registry

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


class _Inline(cf.Executor):
    """Runs each call at submit time: no processes for a single worker (and clear tracebacks)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future:
        future: cf.Future = cf.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # handed to the caller through the future
            future.set_exception(exc)
        return future


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


@contextmanager
def _process(address: str, workers: Optional[int]) -> Iterator[cf.Executor]:
    n = workers or default_workers()
    if n <= 1:
        yield _Inline()
        return
    with cf.ProcessPoolExecutor(max_workers=n) as pool:
        yield pool


@contextmanager
def _thread(address: str, workers: Optional[int]) -> Iterator[cf.Executor]:
    with cf.ThreadPoolExecutor(max_workers=workers or default_workers()) as pool:
        yield pool


@contextmanager
def _dask(address: str, workers: Optional[int]) -> Iterator[cf.Executor]:
    try:
        from distributed import Client
    except ImportError as exc:
        raise MissingDependencyError("distributed", "dask", "--executor dask://") from exc
    target = "tcp://" + address.split("://", 1)[1]
    try:
        client = Client(target, timeout="10s")
    except OSError as exc:
        raise ConfigError(f"{address}: cannot reach the Dask scheduler: {exc}") from exc
    try:
        with client.get_executor(pure=False) as executor:
            yield executor
    finally:
        client.close()


#: URL scheme -> context manager yielding a concurrent.futures Executor for (url, workers).
EXECUTORS: Registry[Callable[[str, Optional[int]], Any]] = Registry(
    "executor", "or dask://HOST:PORT for a Dask cluster"
)
EXECUTORS.register("process", _process)
EXECUTORS.register("thread", _thread)
EXECUTORS.register("dask", _dask)
EXECUTORS.register("tcp", _dask)


def supported_executors() -> Tuple[str, ...]:
    return EXECUTORS.names()


def open_executor(url: Optional[str] = None, workers: Optional[int] = None) -> Any:
    """A context manager yielding the executor ``url`` names (default: the process pool)."""
    url = url or "process"
    scheme = url.split("://", 1)[0] if "://" in url else url
    factory = EXECUTORS.get(scheme)
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be at least 1, not {workers}")
    return factory(url, workers)


def fork_available() -> bool:
    """True where :func:`forked` can run (a platform with ``fork``)."""
    return "fork" in multiprocessing.get_all_start_methods()


def _run_child(fn: Callable[[], Any], conn: Any) -> None:
    try:
        outcome: Tuple[bool, Any] = (True, fn())
    except (StarCompactorError, OSError, KeyboardInterrupt) as exc:  # handed to the parent, which raises it
        outcome = (False, exc)
    except BaseException as exc:  # still one line in the parent
        outcome = (False, StarCompactorError(f"a worker process failed: {type(exc).__name__}: {exc}"))
    try:
        conn.send(outcome)
    except (pickle.PicklingError, TypeError, AttributeError):
        conn.send((False, StarCompactorError(f"{type(outcome[1]).__name__}: {outcome[1]}")))
    conn.close()


@contextmanager
def forked(fn: Callable[[], R]) -> Iterator[Callable[[], R]]:
    """Run ``fn()`` in a forked copy of this process (its memory shared copy-on-write, nothing pickled
    but the result); yields ``result()``, which waits for it and returns its value or raises its error.

    Leaving the block (an error, Ctrl-C, SIGTERM) before ``result()`` stops the child and waits for it.
    """
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_run_child, args=(fn, send), daemon=True)
    child.start()
    send.close()
    done = False

    def result() -> R:
        nonlocal done
        try:
            ok, value = receive.recv()
        except EOFError:
            child.join()
            raise StarCompactorError(f"a worker process died (exit code {child.exitcode})") from None
        finally:
            done = True
        child.join()
        if not ok:
            raise value
        return value

    try:
        yield result
    finally:
        if not done or child.is_alive():
            child.terminate()
        child.join()
        receive.close()


def map_ordered(
    fn: Callable[[T], R],
    items: Sequence[T],
    executor: cf.Executor,
    on_done: Optional[Callable[[int, R], None]] = None,
    first: Optional[int] = None,
) -> List[R]:
    """``[fn(x) for x in items]`` on ``executor``; ``on_done(index, result)`` as each one finishes.

    ``first``: the index of an item to submit before the others (a call known to take longest: started
    last, it would run alone at the end while the other workers idle).

    ``fn`` should return errors as values: an exception raised by it is re-raised here after the
    other calls are cancelled.
    """
    order = list(range(len(items)))
    if first is not None:
        order.remove(first)
        order.insert(0, first)
    futures = {executor.submit(fn, items[i]): i for i in order}
    results: List[Any] = [None] * len(items)
    try:
        for future in cf.as_completed(futures):
            index = futures[future]
            results[index] = future.result()
            if on_done is not None:
                on_done(index, results[index])
    except BaseException:
        for future in futures:
            future.cancel()
        raise
    return results
