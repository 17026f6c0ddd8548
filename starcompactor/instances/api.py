"""Instance events from the Nova API (SPEC §1.3), with openstacksdk.

All servers of all projects, deleted ones included: Nova's ``deleted=1`` listing returns *only* deleted
(and soft-deleted) servers, so "all" is the plain listing plus the ``deleted`` one. Actions and their events
are read with the highest microversion both the SDK and the cloud support; at least 2.21 is required,
below it the actions of deleted servers are not visible. The server's ``flavor`` gives the properties
(embedded since 2.47; before, one cached ``GET /flavors/{id}`` per flavor).

One server costs 1 + (number of actions) requests; they run concurrently (a bounded
:class:`~concurrent.futures.ThreadPoolExecutor`), each retried with exponential backoff on 5xx answers and
connection errors. A server whose actions still cannot be read is logged by id and counted in the
manifest (``failed_servers``) — never silently dropped.

``HOST_NAME (PHYSICAL)`` follows the rule of every path (:func:`~starcompactor.instances.db.physical_host`):
``OS-EXT-SRV-ATTR:hypervisor_hostname`` (= ``instances.node``, the machine trace's host key), else the
event's own ``host`` (microversion 2.62 and later; the service that handled the event), else
``OS-EXT-SRV-ATTR:host``. ``INSTANCE_NAME`` is ``OS-EXT-SRV-ATTR:hostname``, else the server's ``name``.

Unlike the database path, the events are collected before writing (the API returns them per server, not
in time order), then sorted by start time.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, Callable, Dict, Iterator, List, Optional, Set, Tuple, TypeVar
from urllib.parse import quote

from ..errors import ApiError, ConfigError, MissingDependencyError
from ..events import InstanceEvent
from ..times import parse_time
from .hosts import physical_host
from .openrc import openrc_to_cloud, parse_openrc

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Below this microversion Nova hides the actions of deleted servers (404).
MIN_MICROVERSION = (2, 21)

# -- connection ---------------------------------------------------------------------------------------


def connect(cloud: Optional[str] = None, osrc: Optional[str] = None) -> Any:
    """An openstacksdk connection from clouds.yaml (``cloud``), an openrc file, or ``OS_*`` variables."""
    try:
        import openstack
        import openstack.exceptions
    except ImportError as exc:
        raise MissingDependencyError("openstacksdk", "api", "--source api") from exc
    try:
        if osrc:
            return openstack.connect(
                load_yaml_config=False, load_envvars=False, **openrc_to_cloud(parse_openrc(osrc))
            )
        if cloud:
            return openstack.connect(cloud=cloud)
        return openstack.connect()
    except openstack.exceptions.SDKException as exc:
        where = f"cloud {cloud}" if cloud else (osrc or "OS_* environment")
        raise ApiError(f"{where}: {_one_line(exc)}") from None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _transient(exc: BaseException) -> bool:
    """5xx answers and connection failures are worth retrying; 4xx are not."""
    import keystoneauth1.exceptions as ks
    import openstack.exceptions as sdk

    if isinstance(exc, sdk.HttpException):
        return (exc.status_code or 0) >= 500
    return isinstance(exc, (ks.ConnectionError, ConnectionError, TimeoutError))


def _time(value: Any) -> Optional[dt.datetime]:
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime):
        return value
    return parse_time(str(value), "API time")


def _get(obj: Any, name: str) -> Any:
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


class ApiSource:
    """Instance events of every server the API shows (deleted included), sorted by start time."""

    def __init__(
        self,
        connection: Any,
        *,
        start: Optional[dt.datetime] = None,
        end: Optional[dt.datetime] = None,
        instance_type: str = "vm",
        include_unfinished: bool = False,
        concurrency: int = 8,
        retries: int = 4,
        backoff: float = 0.5,
    ) -> None:
        if concurrency < 1:
            raise ConfigError("concurrency must be at least 1")
        self.conn = connection
        self.start = start
        self.end = end
        self.instance_type = instance_type
        self.include_unfinished = include_unfinished
        self.concurrency = concurrency
        self.retries = retries
        self.backoff = backoff
        self.servers = 0
        self.deleted_servers = 0
        self.skipped_unfinished = 0
        self.retried = 0
        self.failed: List[Dict[str, str]] = []
        self.microversion: Optional[str] = None
        self.endpoint: Optional[str] = None
        self._flavors: Dict[str, Dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._flavor_lock = threading.Lock()

    # -- requests with retries --------------------------------------------------------------------

    def _retry(self, what: str, call: Callable[[], T]) -> T:
        delay = self.backoff
        for attempt in range(self.retries + 1):
            try:
                return call()
            except Exception as exc:  # noqa: BLE001 - classified below
                if attempt == self.retries or not _transient(exc):
                    raise
                with self._lock:
                    self.retried += 1
                log.info("%s: %s; retry %d in %.2f s", what, _one_line(exc), attempt + 1, delay)
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")  # pragma: no cover

    def _check_microversion(self) -> None:
        import openstack.exceptions as sdk

        try:
            data = self.conn.compute.get_endpoint_data()
        except (sdk.SDKException, Exception) as exc:  # noqa: BLE001 - any failure here is fatal, one line
            raise ApiError(f"cannot reach the compute service: {_one_line(exc)}") from None
        if data is None:
            raise ApiError("the cloud's catalog has no compute endpoint")
        self.endpoint = data.url
        highest = data.max_microversion
        if not highest or tuple(highest)[:2] < MIN_MICROVERSION:
            shown = ".".join(str(p) for p in highest) if highest else "none"
            raise ApiError(
                f"compute API at {data.url} supports microversion {shown}; 2.21 or later is needed to see "
                "the actions of deleted servers"
            )
        from openstack.compute.v2.server_action import ServerAction
        from openstack.utils import maximum_supported_microversion

        self.microversion = maximum_supported_microversion(self.conn.compute, ServerAction._max_microversion)

    # -- listing ----------------------------------------------------------------------------------

    def _list_servers(self, **query: Any) -> Iterator[Any]:
        """The SDK's paginated listing; after a failure that outlasts retries on one page, resume after
        the last server seen (``marker``) rather than start over."""
        marker: Optional[str] = None
        failures = 0
        while True:
            try:
                extra = {"marker": marker} if marker else {}
                for server in self.conn.compute.servers(details=True, all_projects=True, **query, **extra):
                    marker = server.id
                    failures = 0
                    yield server
                return
            except Exception as exc:  # noqa: BLE001
                if not _transient(exc) or failures >= self.retries:
                    raise ApiError(f"cannot list servers at {self.endpoint}: {_one_line(exc)}") from None
                with self._lock:
                    self.retried += 1
                delay = self.backoff * 2**failures
                failures += 1
                log.info("listing servers: %s; retry in %.2f s", _one_line(exc), delay)
                time.sleep(delay)

    def _all_servers(self) -> Iterator[Any]:
        seen: Set[str] = set()
        for deleted in (False, True):
            for server in self._list_servers(**({"deleted_only": True} if deleted else {})):
                if server.id in seen:
                    continue
                seen.add(server.id)
                self.servers += 1
                if deleted:
                    self.deleted_servers += 1
                yield server

    # -- per server -------------------------------------------------------------------------------

    def _properties(self, server: Any) -> Dict[str, Any]:
        if self.instance_type != "vm":
            return {}
        flavor = server.flavor
        ram, disk, vcpus = _get(flavor, "ram"), _get(flavor, "disk"), _get(flavor, "vcpus")
        flavor_id = _get(flavor, "id")
        # Before 2.47 the server carries {id, links} only (the SDK then reports sizes as 0); since 2.47 the
        # sizes are embedded and there is no id, only original_name.
        if flavor_id and not _get(flavor, "original_name"):
            with self._flavor_lock:  # one request per flavor, even when threads ask at once
                cached = self._flavors.get(flavor_id)
                if cached is None:
                    try:
                        found = self._retry(
                            f"flavor {flavor_id}", lambda: self.conn.compute.get_flavor(flavor_id)
                        )
                        cached = {"memory_mb": found.ram, "root_gb": found.disk, "vcpus": found.vcpus}
                    except Exception as exc:  # noqa: BLE001 - a deleted flavor: sizes unknown
                        log.info("flavor %s: %s; properties left empty", flavor_id, _one_line(exc))
                        cached = {"memory_mb": None, "root_gb": None, "vcpus": None}
                    self._flavors[flavor_id] = cached
            return dict(cached)
        return {"memory_mb": ram, "root_gb": disk, "vcpus": vcpus}

    def _action_events(self, server_id: str, request_id: str) -> List[Dict[str, Any]]:
        """The events of one action, as JSON through the SDK's session (its auth, endpoint, microversion
        header and errors). Most requests are these; the SDK's resource classes would cost twice the CPU
        of the request itself (5.8 against 2.7 ms per request, measured), and the threads share one GIL.
        """
        import openstack.exceptions as sdk

        path = f"/servers/{quote(server_id, safe='')}/os-instance-actions/{quote(request_id, safe='')}"
        response = self.conn.compute.get(path, microversion=self.microversion, raise_exc=False)
        sdk.raise_from_response(response)
        return (response.json().get("instanceAction") or {}).get("events") or []

    def _server_events(self, server: Any) -> Tuple[List[InstanceEvent], int]:
        sid = server.id
        actions = self._retry(f"actions of server {sid}", lambda: list(self.conn.compute.server_actions(sid)))
        name = server.hostname or server.name
        node, compute_host = server.hypervisor_hostname, server.compute_host
        properties = self._properties(server)
        events: List[InstanceEvent] = []
        skipped = 0
        for action in actions:
            created = _time(action.start_time)
            if self.start and (created is None or created < self.start):
                continue
            if self.end and (created is None or created > self.end):
                continue
            request_id = action.request_id
            detail = self._retry(
                f"action {request_id} of server {sid}",
                functools.partial(self._action_events, sid, request_id),
            )
            for item in detail:
                finish = _time(_get(item, "finish_time"))
                if finish is None and not self.include_unfinished:
                    skipped += 1
                    continue
                events.append(
                    InstanceEvent(
                        instance_uuid=sid,
                        event=_get(item, "event"),
                        start_time=_time(_get(item, "start_time")),
                        finish_time=finish,
                        result=_get(item, "result"),
                        instance_name=name,
                        user_id=server.user_id,
                        project_id=server.project_id,
                        host=physical_host(node, _get(item, "host"), compute_host),
                        properties=properties,
                    )
                )
        return events, skipped

    # -- iteration --------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[InstanceEvent]:
        self._check_microversion()
        log.info("compute API %s, actions read with microversion %s", self.endpoint, self.microversion)
        collected: List[InstanceEvent] = []
        pending: Dict[Future, str] = {}

        def harvest(done: Any) -> None:
            for future in done:
                sid = pending.pop(future)
                try:
                    events, skipped = future.result()
                except Exception as exc:  # noqa: BLE001 - reported and counted, never dropped silently
                    log.warning("server %s: actions not read: %s", sid, _one_line(exc))
                    self.failed.append({"server": sid, "error": _one_line(exc)})
                    continue
                collected.extend(events)
                self.skipped_unfinished += skipped

        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="nova-actions") as pool:
            for server in self._all_servers():
                pending[pool.submit(self._server_events, server)] = server.id
                if len(pending) >= self.concurrency * 4:  # bound the queue: listing runs ahead a little
                    done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                    harvest(done)
            done, _ = wait(list(pending))
            harvest(done)
        collected.sort(key=lambda e: (e.start_time or dt.datetime.min, e.instance_uuid, e.event or ""))
        return iter(collected)

    def manifest_extra(self) -> Dict[str, Any]:
        """Counts beyond the writer's: servers seen, unfinished events skipped, failures (count only)."""
        return {
            "source": "api",
            "window": {
                "start": self.start.isoformat() if self.start else None,
                "end": self.end.isoformat() if self.end else None,
            },
            "include_unfinished": self.include_unfinished,
            "skipped_unfinished": self.skipped_unfinished,
            "servers": self.servers,
            "deleted_servers": self.deleted_servers,
            "retries": self.retried,
            "failed_servers": len(self.failed),
        }

    def inputs(self) -> List[Dict[str, Any]]:
        return [{"source": "nova-api", "endpoint": self.endpoint, "microversion": self.microversion}]
