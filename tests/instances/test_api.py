"""Instance events from the Nova API: the real openstacksdk against tests/nova_api_server.py on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import orjson
import pytest

from tests.support.instances import as_tuples

pytest.importorskip("openstack")

from starcompactor.errors import ApiError  # noqa: E402
from starcompactor.instances import make_instance_trace  # noqa: E402
from starcompactor.instances.api import ApiSource, connect  # noqa: E402
from starcompactor.instances.openrc import openrc_to_cloud, parse_openrc  # noqa: E402
from starcompactor.mask import Masker  # noqa: E402
from tests.support.nova_api_server import FakeCloud  # noqa: E402

D = dt.datetime
T0 = D(2024, 3, 1)
EPOCH = D(2015, 9, 17)
FLAVORS = {"f1": {"vcpus": 2, "ram": 2048, "disk": 20}, "f2": {"vcpus": 8, "ram": 16384, "disk": 80}}


def server(
    i, *, deleted=False, flavor="f1", node=None, host="c01", hostname=None, unfinished=False, event_host=None
):
    sid = f"00000000-0000-4000-8000-{i:012d}"
    actions = []
    for a in range(2):
        start = T0 + dt.timedelta(hours=i, minutes=a * 10)
        finish = None if (unfinished and a == 1) else start + dt.timedelta(seconds=30 + a)
        actions.append(
            {
                "request_id": f"req-{i}-{a}",
                "action": "create" if a == 0 else "reboot",
                "start_time": start,
                "events": [
                    {
                        "event": "compute__do_build" if a == 0 else "compute_reboot_instance",
                        "start_time": start + dt.timedelta(seconds=1),
                        "finish_time": finish,
                        "result": "Success" if finish else None,
                        "host": event_host or host,
                    }
                ],
            }
        )
    return {
        "id": sid,
        "name": f"name-{i}",
        "hostname": hostname if hostname is not None else f"vm-{i}",
        "user_id": f"user-{i % 2}",
        "project_id": f"proj-{i % 3}",
        "host": host,
        "node": node if node is not None else f"{host}.example.org",
        "flavor": {"id": flavor, "name": flavor, **FLAVORS[flavor]},
        "deleted": deleted,
        "actions": actions,
    }


SERVERS = [
    server(1),
    server(2, flavor="f2", hostname=""),  # no OS-EXT-SRV-ATTR:hostname → name
    server(3, node="", host="c03", event_host="c03-svc"),  # no hypervisor_hostname → the event's host
    server(4, deleted=True, unfinished=True),
    server(5, deleted=True, host="c02"),
    server(6, node="", host="", event_host="c06"),  # a failed build: node and host cleared
]


def expected_rows(servers, *, include_unfinished=False, event_host=True):
    """SPEC §1.3: the node, else the event's own host (microversion ≥ 2.62), else the server's host."""
    rows = []
    for s in servers:
        for action in s["actions"]:
            for e in action["events"]:
                if e["finish_time"] is None and not include_unfinished:
                    continue
                f = s["flavor"]
                rows.append(
                    (
                        s["id"],
                        e["event"],
                        e["start_time"],
                        e["finish_time"],
                        e["result"],
                        s["hostname"] or s["name"],
                        s["user_id"],
                        s["project_id"],
                        s["node"] or (e["host"] if event_host else None) or s["host"],
                        {"memory_mb": f["ram"], "root_gb": f["disk"], "vcpus": f["vcpus"]},
                    )
                )
    return sorted(rows, key=lambda r: (r[2], r[0]))


@pytest.fixture
def cloud(tmp_path, monkeypatch):
    """Start a fake cloud; returns a factory so that a test can choose failures and microversions."""
    started = []

    def make(servers=SERVERS, **kwargs):
        fake = FakeCloud(servers, flavors=FLAVORS, **kwargs).start()
        started.append(fake)
        (tmp_path / "clouds.yaml").write_text(fake.clouds_yaml())
        monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(tmp_path / "clouds.yaml"))
        return fake

    yield make
    for fake in started:
        fake.stop()


def test_all_servers_deleted_included_exact_rows(cloud):
    fake = cloud()
    source = ApiSource(connect(cloud="fake"), concurrency=3, backoff=0.01)
    assert as_tuples(source) == expected_rows(SERVERS)
    extra = source.manifest_extra()
    assert (
        extra["servers"],
        extra["deleted_servers"],
        extra["skipped_unfinished"],
        extra["failed_servers"],
    ) == (6, 2, 1, 0)
    # pagination: the SDK followed servers_links (page size 2: 4 live servers → 2 pages)
    pages = [p for _, p, _, _ in fake.requests_to("/servers/detail")]
    assert any("marker=" in p for p in pages)
    assert sum("deleted=" in p for p in pages) == 1 and len(pages) == 3
    # the highest microversion both sides support: SDK max for actions is 2.84, server offers 2.104
    assert {mv for _, _, mv, _ in fake.requests_to("/os-instance-actions")} == {"2.84"}
    assert source.microversion == "2.84"


def test_transient_503_is_retried_and_rows_are_complete(cloud):
    fake = cloud(
        failures={"req-2-1": 2, "/servers/00000000-0000-4000-8000-000000000005/os-instance-actions": 1}
    )
    source = ApiSource(connect(cloud="fake"), backoff=0.01)
    assert as_tuples(source) == expected_rows(SERVERS)
    statuses = [s for _, _, _, s in fake.requests_to("req-2-1")]
    assert statuses == [503, 503, 200]
    assert source.retried == 3 and source.failed == []


def test_server_failing_after_retries_is_reported_and_counted(cloud, tmp_path, caplog):
    cloud(failures={"req-3-0": 100})
    source = ApiSource(connect(cloud="fake"), retries=2, backoff=0.01)
    out = tmp_path / "trace.csv"
    manifest = make_instance_trace(source, str(out), masker=Masker("none"), epoch=EPOCH).manifest
    written = out.read_text().splitlines()[1:]
    assert len(written) == len(expected_rows([s for s in SERVERS if s["id"] != SERVERS[2]["id"]]))
    assert manifest["failed_servers"] == 1
    assert SERVERS[2]["id"] in caplog.text and "actions not read" in caplog.text


def test_older_cloud_flavor_lookup_and_no_event_host(cloud):
    """At 2.46 servers carry only a flavor id: one cached GET /flavors/{id} per flavor fills the sizes."""
    fake = cloud(max_version="2.46")
    source = ApiSource(connect(cloud="fake"), backoff=0.01)
    assert as_tuples(source) == expected_rows(SERVERS, event_host=False)
    assert sorted(p for _, p, _, _ in fake.requests_to("/flavors/")) == [
        "/compute/v2.1/flavors/f1",
        "/compute/v2.1/flavors/f2",
    ]
    assert {mv for _, _, mv, _ in fake.requests_to("/os-instance-actions")} == {"2.46"}


def test_cloud_below_221_is_refused(cloud):
    cloud(max_version="2.20")
    with pytest.raises(ApiError, match="microversion 2.20; 2.21 or later is needed"):
        list(ApiSource(connect(cloud="fake")))


def test_time_window_on_action_start(cloud):
    cloud()
    source = ApiSource(
        connect(cloud="fake"), start=T0 + dt.timedelta(hours=2), end=T0 + dt.timedelta(hours=3, minutes=5)
    )
    assert [(r[0][-1], r[1]) for r in as_tuples(source)] == [
        ("2", "compute__do_build"),
        ("2", "compute_reboot_instance"),
        ("3", "compute__do_build"),
    ]


def test_baremetal_properties_empty(cloud):
    cloud()
    events = as_tuples(ApiSource(connect(cloud="fake"), instance_type="baremetal"))
    assert events and all(e[9] == {} for e in events)


def test_openrc_is_parsed_not_executed(tmp_path, cloud):
    fake = cloud()
    rc = tmp_path / "admin-openrc.sh"
    rc.write_text(
        "#!/usr/bin/env bash\n"
        f"export OS_AUTH_URL={fake.auth_url}\n"
        'export OS_PROJECT_NAME="admin"\n'
        "export OS_USER_DOMAIN_NAME='Default'\n"
        "OS_PROJECT_DOMAIN_NAME=${OS_USER_DOMAIN_NAME}\n"
        "export OS_USERNAME=admin  # trailing comment\n"
        'echo "Please enter your OpenStack Password for project $OS_PROJECT_NAME as user $OS_USERNAME: "\n'
        "read -sr OS_PASSWORD_INPUT\n"
        "export OS_PASSWORD=$OS_PASSWORD_INPUT\n"
        'export OS_REGION_NAME="RegionOne"\n'
        "export OS_INTERFACE=public\n"
        "export OS_IDENTITY_API_VERSION=3\n"
        "export OS_AUTH_TYPE=v3password\n"
        "touch /should-not-run; rm -rf $HOME/x\n"
    )
    asked = []
    variables = parse_openrc(str(rc), environ={}, prompt=lambda p: asked.append(p) or "s3cret")
    assert variables["OS_PASSWORD"] == "s3cret" and asked == [f"OS_PASSWORD_INPUT (from {rc}): "]
    assert variables["OS_PROJECT_DOMAIN_NAME"] == "Default" and variables["OS_USERNAME"] == "admin"
    cloud_kwargs = openrc_to_cloud(variables)
    assert cloud_kwargs["auth"]["auth_url"] == fake.auth_url and cloud_kwargs["region_name"] == "RegionOne"


def test_cli_api_with_osrc_and_original_entry_point(tmp_path, cloud):
    fake = cloud()
    rc = tmp_path / "openrc"
    rc.write_text(
        f"export OS_AUTH_URL={fake.auth_url}\nexport OS_USERNAME=admin\nexport OS_PASSWORD='secret'\n"
        "export OS_PROJECT_NAME=admin\nexport OS_USER_DOMAIN_NAME=Default\nexport OS_PROJECT_DOMAIN_NAME=Default\n"
        "export OS_AUTH_TYPE=v3password\nexport OS_REGION_NAME=RegionOne\n"
    )
    env_args = {"capture_output": True, "text": True, "cwd": tmp_path}
    out = tmp_path / "api.jsonl"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "starcompactor",
            "instances",
            "--source",
            "api",
            "--osrc",
            str(rc),
            "--format",
            "jsonl",
            "--hashed-masking-method",
            "none",
            "--concurrency",
            "4",
            str(out),
        ],
        **env_args,
    )
    assert done.returncode == 0, done.stderr
    rows = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert [(r["INSTANCE_UUID"], r["EVENT"], r["HOST_NAME (PHYSICAL)"]) for r in rows] == [
        (e[0], e[1], e[8]) for e in expected_rows(SERVERS)
    ]
    manifest = orjson.loads((tmp_path / "api.jsonl.manifest.json").read_bytes())
    assert manifest["source"] == "api" and manifest["deleted_servers"] == 2
    assert "secret" not in (tmp_path / "api.jsonl.manifest.json").read_text()
    legacy = tmp_path / "legacy.csv"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "starcompactor.instance_event_api_dump",
            "--os-cloud",
            "fake",
            "--hashed-masking-salt",
            "chameleon",
            str(legacy),
        ],
        **env_args,
    )
    assert done.returncode == 0, done.stderr
    lines = legacy.read_bytes().split(b"\r\n")
    assert len(lines) == len(expected_rows(SERVERS)) + 2 and lines[-1] == b""
    assert lines[1].endswith(b"\"{'memory_mb': 2048, 'root_gb': 20, 'vcpus': 2}\"")


def test_bad_cloud_name_is_one_line(tmp_path, monkeypatch):
    (tmp_path / "clouds.yaml").write_text("clouds: {}\n")
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(tmp_path / "clouds.yaml"))
    with pytest.raises(ApiError) as info:
        connect(cloud="nope")
    assert str(info.value).startswith("cloud nope: ") and "\n" not in str(info.value)
