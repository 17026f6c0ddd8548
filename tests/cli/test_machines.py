"""The machines command and the original's entry point, as a user runs them."""

from __future__ import annotations

import csv
import hashlib
import io
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from starcompactor.cli import compat, progress
from starcompactor.cli import main as cli_main
from starcompactor.mask import MaskingKey
from tests.support.paths import MACHINE_FIXTURES, TESTS
from tests.support.paths import REPO as REPO_ROOT

HERE = TESTS
REPO = REPO_ROOT
MACHINES = MACHINE_FIXTURES
BM = str(MACHINES / "bm_upstream")
N1 = "00000001-aaaa-4bbb-8ccc-000000000001"


@pytest.fixture(autouse=True)
def _private_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("STARCOMPACTOR_MASKING_KEY", raising=False)
    monkeypatch.chdir(tmp_path)  # no ./starcompactor.config here


def rows(path: Path):
    with open(path, newline="") as handle:
        return list(csv.reader(handle))


def test_default_run_masks_with_a_new_user_key_and_says_so(tmp_path, capsys):
    out = tmp_path / "trace.csv"
    assert (
        cli_main(["machines", "--backup-dir", BM, "--instance-type", "baremetal", "--workers", "1", str(out)])
        == 0
    )
    err = capsys.readouterr().err
    key = tmp_path / "xdg" / "starcompactor" / "masking.key"
    assert f"key file {key} (created now)" in err
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    table = rows(out)
    assert table[0] == ["EVENT_TIME", "EVENT_TIME_SEC", "HOST_NAME (PHYSICAL)", "EVENT", "PROPERTIES"]
    assert len(table) == 14 and all(len(r[2]) == 32 and "-" not in r[2] for r in table[1:])
    manifest = orjson.loads((tmp_path / "trace.csv.manifest.json").read_bytes())
    secret = key.read_bytes().strip()
    assert manifest["masking"] == {
        "method": "hmac-sha256",
        "key_fingerprint": MaskingKey(secret, "").fingerprint,
    }
    assert secret.decode() not in (tmp_path / "trace.csv.manifest.json").read_text()
    # a second run reuses the key: same hashes
    assert (
        cli_main(
            [
                "machines",
                "--backup-dir",
                BM,
                "--instance-type",
                "baremetal",
                "--workers",
                "1",
                str(tmp_path / "b.csv"),
            ]
        )
        == 0
    )
    assert rows(tmp_path / "b.csv") == table
    assert "created now" not in capsys.readouterr().err


def test_key_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("STARCOMPACTOR_MASKING_KEY", "k3y")
    out = tmp_path / "t.csv"
    assert (
        cli_main(["machines", "--backup-dir", BM, "--instance-type", "baremetal", "--workers", "1", str(out)])
        == 0
    )
    import hmac

    expected = hmac.new(b"k3y", N1.encode(), hashlib.sha256).hexdigest()[:32]
    assert rows(out)[1][2] == expected
    assert not (tmp_path / "xdg").exists()


def test_bad_file_exits_1_with_one_line_and_no_output(tmp_path, capsys):
    history = tmp_path / "h"
    shutil.copytree(BM, history)
    victim = sorted(history.iterdir())[3]
    victim.write_bytes(victim.read_bytes()[:1000])
    out = tmp_path / "t.csv"
    code = cli_main(
        [
            "machines",
            "--backup-dir",
            str(history),
            "--instance-type",
            "baremetal",
            "--workers",
            "2",
            "--hashed-masking-method",
            "none",
            str(out),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert err[-1].startswith("starcompactor: error: ") and victim.name in err[-1]
    assert not out.exists() and not (tmp_path / "t.csv.manifest.json").exists()
    code = cli_main(
        [
            "machines",
            "--backup-dir",
            str(history),
            "--instance-type",
            "baremetal",
            "--skip-bad-files",
            "--hashed-masking-method",
            "none",
            str(out),
        ]
    )
    assert code == 0
    err = capsys.readouterr().err
    assert f"skipped {history / victim.name}" in err
    assert err.count(victim.name) == 1, err  # said once, not once per layer
    assert out.exists()


def test_empty_dir_and_missing_backup_dir_are_usage_errors(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert (
        cli_main(["machines", "--backup-dir", str(tmp_path / "empty"), "--hashed-masking-method", "none"])
        == 1
    )
    assert "no backup files" in capsys.readouterr().err
    assert cli_main(["machines", "--hashed-masking-method", "none"]) == 1
    assert "no backup directory" in capsys.readouterr().err


def test_jsons_is_jsonl(tmp_path):
    common = [
        "--backup-dir",
        BM,
        "--instance-type",
        "baremetal",
        "--hashed-masking-method",
        "none",
        "--workers",
        "1",
    ]
    assert cli_main(["machines", *common, "--jsons", str(tmp_path / "a.json")]) == 0
    assert cli_main(["machines", *common, "--format", "jsonl", str(tmp_path / "b.json")]) == 0
    data = (tmp_path / "a.json").read_bytes()
    assert data == (tmp_path / "b.json").read_bytes()
    assert orjson.loads(data.splitlines()[0])["HOST_NAME (PHYSICAL)"] == N1


def test_parquet_output(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    out = tmp_path / "t.parquet"
    assert (
        cli_main(
            [
                "machines",
                "--backup-dir",
                BM,
                "--instance-type",
                "baremetal",
                "--format",
                "parquet",
                "--hashed-masking-method",
                "none",
                "--workers",
                "1",
                str(out),
            ]
        )
        == 0
    )
    table = pq.read_table(out)
    assert table.num_rows == 13 and table.column("EVENT").to_pylist()[0] == "CREATE"


def test_epoch_flag(tmp_path):
    out = tmp_path / "t.csv"
    assert (
        cli_main(
            [
                "machines",
                "--backup-dir",
                BM,
                "--instance-type",
                "baremetal",
                "--epoch",
                "2023-12-10T08:00:00",
                "--hashed-masking-method",
                "none",
                "--workers",
                "1",
                str(out),
            ]
        )
        == 0
    )
    assert rows(out)[1][:2] == ["2023-12-10T09:00:00", "3600"]


def test_original_entry_point_flags(tmp_path, capsys, caplog):
    """MySQL flags ignored with a notice; salt accepted with a warning; backup dir from the config."""
    config = tmp_path / "starcompactor.config"
    config.write_text(f"[backup]\nbackup_dir = {BM}\n")
    out = tmp_path / "machine_events.csv"
    code = compat.machine_event_dump(
        [
            "--db-user",
            "root",
            "-p",
            "s3cret",
            "-H",
            "db",
            "--port",
            "3306",
            "--instance-type",
            "baremetal",
            "--hashed-masking-method",
            "sha2-salted",
            "--hashed-masking-salt",
            "chameleon",
            "--format",
            "legacy-csv",
            str(out),
        ]
    )
    err = capsys.readouterr().err
    assert code == 0
    assert "--db-user, --password, --host, --port ignored" in err
    assert "s3cret" not in err
    assert "--hashed-masking-salt puts the key in the command line" in err + caplog.text
    data = out.read_bytes()
    assert data.startswith(b"EVENT_TIME,EVENT_TIME_SEC,HOST_NAME (PHYSICAL),EVENT,PROPERTIES\r\n")
    host = hashlib.sha256(b"chameleon" + N1.encode()).hexdigest()[:32]
    assert f"2023-12-10T09:00:00,259750800.0,{host},CREATE,".encode() in data


def test_progress_bar_switches():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    os.environ.pop("TQDM_DISABLE", None)
    assert progress.enabled(stream=Tty()) is True
    assert progress.enabled(stream=io.StringIO()) is False
    assert progress.enabled(quiet=True, stream=Tty()) is False
    os.environ["TQDM_DISABLE"] = "1"
    try:
        assert progress.enabled(stream=Tty()) is False
    finally:
        del os.environ["TQDM_DISABLE"]


def test_progress_bar_draws_files_and_bytes(capsys):
    from starcompactor.traces import Progress

    with progress.progress_bars("dumps", show=True) as bar:
        bar(Progress("dump", 1, 2, 1024, 2048))
        bar(Progress("dump", 2, 2, 2048, 2048))
    err = capsys.readouterr().err
    assert "2/2" in err and "2.00k" in err.replace("K", "k")


def _python(*args, env=None):
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, cwd=REPO, env=env, check=False
    )


@pytest.mark.parametrize("argv", [["starcompactor.machine_event_dump"], ["starcompactor", "machines"]])
def test_help(argv):
    done = _python("-m", *argv, "--help")
    assert done.returncode == 0 and "--backup-dir" in done.stdout and "--skip-bad-files" in done.stdout


def test_stdout_output_and_no_progress_when_not_a_tty(tmp_path):
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "xdg"), PYTHONPATH=str(REPO))
    done = _python(
        "-m",
        "starcompactor",
        "machines",
        "--backup-dir",
        BM,
        "--instance-type",
        "baremetal",
        "--hashed-masking-method",
        "none",
        "-",
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1].startswith(f"2023-12-10T09:00:00,259750800,{N1},CREATE,")
    assert "file/s" not in done.stderr and "dumps:" not in done.stderr
    assert not list(tmp_path.glob("*.manifest.json"))


@pytest.mark.parametrize(
    "site, name, good, bad",
    [
        ("vm", "mysqldump-2024-01-01T03:00:00Z.mysql.gz", b"'r2-n01.vm.example'", b"'r2-n01.vm.ex\xe9mple'"),
        (
            "bm_upstream",
            "mysqldump-2024-01-01T03:00:00Z.mysql.gz",
            b"'compute_skylake'",
            b"'compute_sk\xffylake'",
        ),
    ],
    ids=["host-name", "capability-value"],
)
def test_invalid_utf8_in_a_dump_is_one_line(tmp_path, site, name, good, bad):
    """Before: the text came out with escaped bytes and the csv writer died on them (a traceback)."""
    import gzip

    data = gzip.decompress((MACHINES / site / name).read_bytes())
    assert good in data
    backups = tmp_path / "backups"
    backups.mkdir()
    (backups / name).write_bytes(gzip.compress(data.replace(good, bad)))
    out = tmp_path / "out.csv"
    kind = "vm" if site == "vm" else "baremetal"
    done = subprocess.run(
        [
            *(sys.executable, "-m", "starcompactor", "machines", "--backup-dir", str(backups)),
            *("--instance-type", kind, "--hashed-masking-method", "none", "-q", str(out)),
        ],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        check=False,
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("starcompactor: error: ")
    assert name in done.stderr and "text that is not utf-8" in done.stderr and not out.exists()
