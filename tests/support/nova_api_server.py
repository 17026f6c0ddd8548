"""A local Keystone + Nova HTTP server for tests and benchmarks, on 127.0.0.1.

Every response body is built from the API reference samples in tests/fixtures/nova-api-samples and keystone-api-samples (loaded from the JSON
files, ids and URLs substituted, keys kept as the samples have them), chosen by the microversion the
client asked for. It paginates server listings (``servers_links`` next), lists deleted servers only with
``deleted`` (as Nova does), negotiates microversions (version documents from versions/*.json,
``OpenStack-API-Version`` response header, 406 above the maximum), and can inject transient 503s and a
fixed latency per request.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import parse_qs, urlencode, urlparse

from .paths import KEYSTONE_API_SAMPLES, NOVA_API_SAMPLES

NOVA = NOVA_API_SAMPLES
KEYSTONE = KEYSTONE_API_SAMPLES

SAMPLE_HOST = "http://openstack.example.com"
SAMPLE_PROJECT = "6f70656e737461636b20342065766572"

#: Sample directories of os-instance-actions, by the microversion they start at.
ACTION_VERSIONS = [
    ((2, 1), ""),
    ((2, 21), "v2.21/"),
    ((2, 51), "v2.51/"),
    ((2, 58), "v2.58/"),
    ((2, 62), "v2.62/"),
    ((2, 84), "v2.84/"),
]


def load(path: Path) -> Any:
    return json.loads(path.read_text())


def version_tuple(text: str) -> Tuple[int, int]:
    major, minor = text.split(".")
    return int(major), int(minor)


def _truthy(value: Optional[str]) -> bool:
    return value is not None and value.lower() in ("1", "true", "yes", "on")


def _iso(value: Optional[dt.datetime]) -> Optional[str]:
    return value.isoformat() if value is not None else None


class FakeCloud:
    """Servers with actions and events, served as Keystone + Nova. Use :meth:`start` / :meth:`stop`.

    ``servers``: dicts with id, name, hostname, user_id, project_id, host, node, flavor (dict with id,
    vcpus, ram, disk), deleted (bool), actions (list of dicts: request_id, action, start_time, events:
    list of dicts event, start_time, finish_time, result, host).
    """

    def __init__(
        self,
        servers: List[Dict[str, Any]],
        *,
        max_version: str = "2.104",
        page_size: int = 2,
        latency: float = 0.0,
        failures: Optional[Dict[str, int]] = None,
        flavors: Optional[Dict[str, Dict[str, Any]]] = None,
    ) -> None:
        self.servers = servers
        self.max_version = max_version
        self.page_size = page_size
        self.latency = latency
        self.failures = dict(failures or {})
        self.flavors = flavors or {}
        self.log: List[Tuple[str, str, Optional[str], int]] = []
        self.token = uuid.uuid4().hex
        self._lock = threading.Lock()
        self._httpd: Optional[ThreadingHTTPServer] = None

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> FakeCloud:
        cloud = self

        class Handler(_Handler):
            fake = cloud

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    @property
    def url(self) -> str:
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def auth_url(self) -> str:
        return self.url + "/identity/v3"

    @property
    def compute_url(self) -> str:
        return self.url + "/compute/v2.1"

    def clouds_yaml(self, name: str = "fake") -> str:
        return (
            f"clouds:\n  {name}:\n    auth_type: v3password\n    auth:\n      auth_url: {self.auth_url}\n"
            "      username: admin\n      password: secret\n      project_name: admin\n"
            "      user_domain_name: Default\n      project_domain_name: Default\n"
            "    region_name: RegionOne\n    identity_api_version: 3\n"
        )

    def requests_to(self, fragment: str) -> List[Tuple[str, str, Optional[str], int]]:
        with self._lock:
            return [entry for entry in self.log if fragment in entry[1]]

    # -- responses --------------------------------------------------------------------------------

    def substitute(self, data: Any) -> Any:
        text = json.dumps(data).replace(SAMPLE_HOST + "/v2.1", self.compute_url)
        text = text.replace(SAMPLE_HOST + "/v2", self.url + "/compute/v2")
        text = text.replace(SAMPLE_HOST, self.url + "/compute")
        return json.loads(text)

    def token_body(self) -> Dict[str, Any]:
        body = load(KEYSTONE / "auth" / "responses" / "project-scoped-password.json")
        token = body["token"]
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        token["issued_at"] = now.isoformat() + "Z"
        token["expires_at"] = (now + dt.timedelta(hours=1)).isoformat() + "Z"
        identity = token["catalog"][0]
        for endpoint in identity["endpoints"]:
            endpoint["url"] = self.url + "/identity"
        compute = copy.deepcopy(identity)
        compute["type"] = "compute"
        compute["name"] = "nova"
        compute["id"] = uuid.uuid4().hex
        for endpoint in compute["endpoints"]:
            endpoint["id"] = uuid.uuid4().hex
            endpoint["url"] = self.compute_url
        token["catalog"].append(compute)
        return body

    def versions(self) -> Dict[str, Any]:
        body = self.substitute(load(NOVA / "versions" / "versions-get-resp.json"))
        for version in body["versions"]:
            if version["id"] == "v2.1":
                version["version"] = self.max_version
        return body

    def version_v21(self) -> Dict[str, Any]:
        body = self.substitute(load(NOVA / "versions" / "v21-version-get-resp.json"))
        body["version"]["version"] = self.max_version
        return body

    def server_body(self, server: Dict[str, Any], mv: Tuple[int, int]) -> Dict[str, Any]:
        path = (
            NOVA
            / "servers"
            / ("v2.47/servers-details-resp.json" if mv >= (2, 47) else "servers-details-resp.json")
        )
        body = copy.deepcopy(load(path)["servers"][0])
        old_id = body["id"]
        body = json.loads(json.dumps(body).replace(old_id, server["id"]))
        body = self.substitute(body)
        body["name"] = server["name"]
        body["user_id"] = server["user_id"]
        body["tenant_id"] = server["project_id"]
        if "OS-EXT-SRV-ATTR:hostname" in body or mv >= (2, 3):
            body["OS-EXT-SRV-ATTR:hostname"] = server.get("hostname")
        body["OS-EXT-SRV-ATTR:host"] = server.get("host")
        body["OS-EXT-SRV-ATTR:hypervisor_hostname"] = server.get("node")
        deleted = server.get("deleted", False)
        body["status"] = "DELETED" if deleted else "ACTIVE"
        body["OS-EXT-STS:vm_state"] = "deleted" if deleted else "active"
        flavor = server["flavor"]
        if mv >= (2, 47):
            body["flavor"].update(vcpus=flavor["vcpus"], ram=flavor["ram"], disk=flavor["disk"])
            body["flavor"]["original_name"] = flavor.get("name", "m1.test")
        else:
            body["flavor"]["id"] = flavor["id"]
            for link in body["flavor"]["links"]:
                link["href"] = link["href"].rsplit("/", 1)[0] + "/" + flavor["id"]
        return body

    def actions_template(self, mv: Tuple[int, int], name: str) -> Dict[str, Any]:
        directory = ""
        for since, sub in ACTION_VERSIONS:
            if mv >= since:
                directory = sub
        return load(NOVA / "os-instance-actions" / f"{directory}{name}")

    def action_summary(
        self, server: Dict[str, Any], action: Dict[str, Any], mv: Tuple[int, int]
    ) -> Dict[str, Any]:
        entry = copy.deepcopy(
            self.actions_template(mv, "instance-actions-list-resp.json")["instanceActions"][0]
        )
        entry.update(
            action=action["action"],
            instance_uuid=server["id"],
            project_id=server["project_id"],
            request_id=action["request_id"],
            start_time=_iso(action["start_time"]),
            user_id=server["user_id"],
        )
        if "updated_at" in entry:
            finishes = [e["finish_time"] for e in action["events"] if e.get("finish_time")]
            entry["updated_at"] = _iso(max(finishes) if finishes else action["start_time"])
        return entry

    def action_detail(
        self, server: Dict[str, Any], action: Dict[str, Any], mv: Tuple[int, int]
    ) -> Dict[str, Any]:
        template = self.actions_template(mv, "instance-action-get-resp.json")["instanceAction"]
        body = self.action_summary(server, action, mv)
        event_template = template["events"][0]
        events = []
        for event in action["events"]:
            item = copy.deepcopy(event_template)
            item.update(
                event=event["event"],
                start_time=_iso(event["start_time"]),
                finish_time=_iso(event.get("finish_time")),
                result=event.get("result"),
            )
            if "traceback" in item:
                item["traceback"] = None
            if "host" in item:
                item["host"] = event.get("host")
            if "hostId" in item:
                item["hostId"] = uuid.uuid5(uuid.NAMESPACE_DNS, str(event.get("host"))).hex
            if "details" in item:
                item["details"] = None
            events.append(item)
        body["events"] = events
        return {"instanceAction": body}

    def flavor_body(self, flavor_id: str) -> Optional[Dict[str, Any]]:
        flavor = self.flavors.get(flavor_id)
        if flavor is None:
            return None
        body = self.substitute(load(NOVA / "flavors" / "flavor-get-resp.json"))
        text = json.dumps(body).replace("/flavors/1", f"/flavors/{flavor_id}")
        body = json.loads(text)
        body["flavor"].update(
            id=flavor_id,
            name=flavor.get("name", flavor_id),
            vcpus=flavor["vcpus"],
            ram=flavor["ram"],
            disk=flavor["disk"],
        )
        return body

    def take_failure(self, path: str) -> bool:
        with self._lock:
            for fragment, remaining in self.failures.items():
                if remaining > 0 and fragment in path:
                    self.failures[fragment] = remaining - 1
                    return True
        return False


class _Handler(BaseHTTPRequestHandler):
    fake: FakeCloud
    protocol_version = "HTTP/1.1"
    # One write per response (headers + body) and no Nagle: else keep-alive requests stall on delayed ACKs.
    wbufsize = -1
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass

    def _microversion(self) -> Tuple[Optional[str], Tuple[int, int]]:
        header = self.headers.get("OpenStack-API-Version") or ""
        requested = None
        if header.startswith("compute "):
            requested = header.split(" ", 1)[1].strip()
        requested = requested or self.headers.get("X-OpenStack-Nova-API-Version")
        if requested == "latest":
            requested = self.fake.max_version
        return requested, version_tuple(requested) if requested else (2, 1)

    def _send(self, status: int, body: Any, headers: Optional[Dict[str, str]] = None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _record(self, status: int, mv: Optional[str]) -> None:
        with self.fake._lock:
            self.fake.log.append((self.command, self.path, mv, status))

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        if self.path.rstrip("/") == "/identity/v3/auth/tokens":
            self._record(201, None)
            self._send(201, self.fake.token_body(), {"X-Subject-Token": self.fake.token})
            return
        self._record(404, None)
        self._send(404, {"error": {"code": 404, "message": "not found"}})

    def do_GET(self) -> None:  # noqa: N802
        fake = self.fake
        if fake.latency:
            time.sleep(fake.latency)
        parsed = urlparse(self.path)
        path = parsed.path.rstrip("/")
        query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
        requested, mv = self._microversion()
        if path == "/compute":
            self._record(200, requested)
            self._send(200, fake.versions())
            return
        if path == "/compute/v2.1":
            self._record(200, requested)
            self._send(200, fake.version_v21())
            return
        if not path.startswith("/compute/v2.1/"):
            self._record(404, requested)
            self._send(404, {"error": {"code": 404, "message": "not found"}})
            return
        if self.headers.get("X-Auth-Token") != fake.token:
            self._record(401, requested)
            self._send(
                401, {"error": {"code": 401, "message": "The request you have made requires authentication."}}
            )
            return
        if mv > version_tuple(fake.max_version):
            self._record(406, requested)
            self._send(
                406,
                {
                    "computeFault": {
                        "code": 406,
                        "message": f"Version {requested} is not supported by the API.",
                    }
                },
            )
            return
        headers = {
            "OpenStack-API-Version": f"compute {'.'.join(map(str, mv))}",
            "X-OpenStack-Nova-API-Version": ".".join(map(str, mv)),
            "Vary": "OpenStack-API-Version, X-OpenStack-Nova-API-Version",
        }
        if fake.take_failure(self.path):
            self._record(503, requested)
            self._send(503, {"computeFault": {"code": 503, "message": "Service Unavailable"}}, headers)
            return
        status, body = self._route(path[len("/compute/v2.1") :], query, mv)
        self._record(status, requested)
        self._send(status, body, headers)

    def _route(self, path: str, query: Dict[str, str], mv: Tuple[int, int]) -> Tuple[int, Any]:
        fake = self.fake
        parts = path.strip("/").split("/")
        not_found = {"itemNotFound": {"code": 404, "message": "Instance could not be found."}}
        if parts == ["servers", "detail"]:
            deleted = _truthy(query.get("deleted")) and _truthy(query.get("all_tenants"))
            chosen = [s for s in fake.servers if bool(s.get("deleted")) == deleted]
            if "all_tenants" not in query:
                chosen = [s for s in chosen if s["project_id"] == "a6944d763bf64ee6a275f1263fae0352"]
            start = 0
            if query.get("marker"):
                ids = [s["id"] for s in chosen]
                if query["marker"] not in ids:
                    return 400, {
                        "badRequest": {"code": 400, "message": f"marker [{query['marker']}] not found"}
                    }
                start = ids.index(query["marker"]) + 1
            size = min(int(query.get("limit") or fake.page_size), fake.page_size)
            page = chosen[start : start + size]
            body: Dict[str, Any] = {"servers": [fake.server_body(s, mv) for s in page]}
            if start + size < len(chosen):
                next_query = {k: v for k, v in query.items() if k != "marker"}
                next_query.update(limit=str(size), marker=page[-1]["id"])
                body["servers_links"] = [
                    {"href": f"{fake.compute_url}/servers/detail?{urlencode(next_query)}", "rel": "next"}
                ]
            return 200, body
        if len(parts) >= 3 and parts[0] == "servers" and parts[2] == "os-instance-actions":
            server = next((s for s in fake.servers if s["id"] == parts[1]), None)
            if server is None or (server.get("deleted") and mv < (2, 21)):
                return 404, not_found
            if len(parts) == 3:
                return 200, {
                    "instanceActions": [fake.action_summary(server, a, mv) for a in server["actions"]]
                }
            action = next((a for a in server["actions"] if a["request_id"] == parts[3]), None)
            if action is None:
                return 404, {"itemNotFound": {"code": 404, "message": f"Action {parts[3]} not found"}}
            return 200, fake.action_detail(server, action, mv)
        if len(parts) == 2 and parts[0] == "flavors":
            body = fake.flavor_body(parts[1])
            if body is None:
                return 404, {
                    "itemNotFound": {"code": 404, "message": f"Flavor {parts[1]} could not be found."}
                }
            return 200, body
        return 404, {"itemNotFound": {"code": 404, "message": "not found"}}
