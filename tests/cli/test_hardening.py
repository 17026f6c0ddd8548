"""What the command line shows and writes when inputs, outputs or keys are hostile or broken: never a
secret, never a traceback, never a destroyed input, never a trace beside the wrong manifest."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import logging
import os
import resource
import shutil
import signal
import stat
import subprocess
import sys
from pathlib import Path
from typing import List

import orjson
import pytest

from starcompactor.cli import main as cli_main
from starcompactor.machines import make_machine_trace
from starcompactor.mask import FINGERPRINT_SALT, MaskingKey, load_key
from tests.support.paths import REPO

EXAMPLES = REPO / "examples" / "chameleon-kvm"
SECRET = "OS_PASSWORD=hunter2-very-secret"


@pytest.fixture(autouse=True)
def _private_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("STARCOMPACTOR_MASKING_KEY", raising=False)
    monkeypatch.setenv("TQDM_DISABLE", "1")
    monkeypatch.chdir(tmp_path)  # no ./starcompactor.config here


@pytest.fixture
def backups(tmp_path) -> Path:
    """A copy of the bundled example history (nine Nova dumps)."""
    target = tmp_path / "backups"
    shutil.copytree(EXAMPLES, target)
    return target


def machines(*args: str) -> List[str]:
    return ["machines", "--workers", "1", "--hashed-masking-method", "none", *args]


def error_lines(err: str) -> List[str]:
    return [line for line in err.splitlines() if line.startswith("starcompactor: error:")]


def run_cli(*args: str, limit: int = 0, cwd: Path) -> subprocess.CompletedProcess:
    """The command in a process of its own; ``limit``: the largest file it may write (RLIMIT_FSIZE),
    so that a write past it fails as a full disk does (EFBIG rather than ENOSPC)."""

    def apply_limit() -> None:
        if limit:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run(
        [sys.executable, "-m", "starcompactor", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        preexec_fn=apply_limit,
        check=False,
    )


# -- 4. what we echo ------------------------------------------------------------------------------------


def test_a_file_that_is_not_a_dump_is_described_never_quoted(tmp_path, backups, capsys):
    secrets_file = tmp_path / "secrets.env"
    secrets_file.write_text(SECRET + "\n")
    (backups / "zz-notes.sql").write_text(SECRET + "\nmore\n")
    os.symlink(secrets_file, backups / "zz-environ.sql")
    assert cli_main(machines("--backup-dir", str(backups), str(tmp_path / "t.csv"))) == 1
    err = capsys.readouterr().err
    assert "hunter2" not in err and len(error_lines(err)) == 1
    assert "not a mysqldump file: first line is not SQL (text, a first line of" in err
    assert cli_main(machines("--backup-dir", str(backups), "--skip-bad-files", str(tmp_path / "t.csv"))) == 0
    err = capsys.readouterr().err
    manifest = (tmp_path / "t.csv.manifest.json").read_text()
    assert "hunter2" not in err and "hunter2" not in manifest
    assert manifest.count("not a mysqldump file") == 2


def test_credentials_in_uris_are_redacted_in_messages(tmp_path, capsys):
    code = cli_main(
        machines("--backup-dir", "https://reader:pa55w0rd@127.0.0.1:1/dumps", str(tmp_path / "t.csv"))
    )
    err = capsys.readouterr().err
    assert code == 1 and "pa55w0rd" not in err and "reader" not in err
    assert error_lines(err)[0].startswith("starcompactor: error: https://***@127.0.0.1:1/dumps")


def test_s3_credentials_in_the_backup_uri_are_used_and_never_written(tmp_path, s3_endpoint, monkeypatch):
    from tests.support.s3 import s3_client

    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    client = s3_client(s3_endpoint)
    client.create_bucket(Bucket="hardening")
    for path in sorted(EXAMPLES.iterdir())[:3]:
        client.put_object(Bucket="hardening", Key=f"nightly/{path.name}", Body=path.read_bytes())
    uri = "s3://AKIDEXAMPLE:wJal/rXUt+nFEMI/K7MDENG@hardening/nightly"
    out = tmp_path / "t.csv"
    logger = logging.getLogger("starcompactor")
    assert cli_main(machines("--backup-dir", uri, "-v", str(out))) == 0
    manifest = (tmp_path / "t.csv.manifest.json").read_text()
    assert "wJal" not in manifest and "AKIDEXAMPLE" not in manifest
    assert orjson.loads(manifest)["backup_dir"] == "s3://***@hardening/nightly"
    assert len(orjson.loads(manifest)["inputs"]) == 3
    logger.setLevel(logging.WARNING)


def test_the_manifest_names_inputs_relative_to_the_backup_directory(tmp_path, backups, capsys):
    (backups / "zz-bad.sql").write_text("nothing\n")
    out = tmp_path / "out" / "t.csv"
    out.parent.mkdir()
    assert cli_main(machines("--backup-dir", str(backups), "--skip-bad-files", str(out))) == 0
    manifest = orjson.loads(Path(str(out) + ".manifest.json").read_bytes())
    inputs_and_skipped = orjson.dumps([manifest["inputs"], manifest["skipped"]]).decode()
    assert str(tmp_path) not in inputs_and_skipped
    assert manifest["inputs"][0]["name"] == "mysqldump-2024-01-01T03:00:00Z.mysql.gz"
    assert manifest["skipped"][0]["error"].startswith("zz-bad.sql: not a mysqldump file")
    assert manifest["backup_dir"] == str(backups)  # as given


# -- 5. the key -----------------------------------------------------------------------------------------


def test_the_key_fingerprint_is_a_slow_kdf_and_equal_for_equal_keys(tmp_path):
    key = MaskingKey(b"chameleon", "test")
    derived = hashlib.scrypt(
        b"chameleon", salt=FINGERPRINT_SALT, n=1 << 15, r=8, p=1, maxmem=1 << 26, dklen=32
    )
    assert key.fingerprint == derived.hex()[:16]
    assert MaskingKey(b"chameleon", "other source").fingerprint == key.fingerprint
    assert MaskingKey(b"chameleon2", "test").fingerprint != key.fingerprint
    # two traces masked with the same key file show the same fingerprint
    key_file = tmp_path / "k"
    key_file.write_text("a" * 40 + "\n")
    key_file.chmod(0o600)
    prints = []
    for name in ("a.csv", "b.csv"):
        args = ["machines", "--workers", "1", "--backup-dir", str(EXAMPLES), "--hashed-masking-key-file"]
        assert cli_main([*args, str(key_file), str(tmp_path / name)]) == 0
        prints.append(
            orjson.loads((tmp_path / f"{name}.manifest.json").read_bytes())["masking"]["key_fingerprint"]
        )
    assert prints[0] == prints[1] == MaskingKey(b"a" * 40, "").fingerprint


def test_short_keys_and_key_files_others_can_read_are_warned_about(tmp_path, caplog):
    key_file = tmp_path / "k"
    key_file.write_text("x" * 64)
    key_file.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="starcompactor"):
        load_key(key_file, environ={})
    assert "can be read by other users (mode 0644): chmod 600" in caplog.text
    assert "only" not in caplog.text
    caplog.clear()
    key_file.chmod(0o600)
    with caplog.at_level(logging.WARNING, logger="starcompactor"):
        load_key(key_file, environ={})
        assert caplog.text == ""
        load_key(None, environ={"STARCOMPACTOR_MASKING_KEY": "short"})
    assert "is only 5 bytes" in caplog.text


RACE = """
import multiprocessing, sys
from pathlib import Path
from starcompactor.mask import load_key

homes, keys, workers = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
barrier = multiprocessing.get_context("fork").Barrier(workers, timeout=20)


def first_runs(worker):
    out = []
    for i in range(keys):
        barrier.wait()  # every process looks for key file i at the same moment
        out.append(load_key(environ={}, default_path=homes / str(i) / "masking.key").secret.decode())
    (homes.parent / f"seen-{worker}").write_text(" ".join(out))


processes = [multiprocessing.get_context("fork").Process(target=first_runs, args=(w,)) for w in range(workers)]
for process in processes:
    process.start()
for process in processes:
    process.join()
sys.exit(max(process.exitcode for process in processes))
"""


def test_first_runs_at_once_create_one_key(tmp_path):
    """Processes released together (a barrier per key file), each finding no key file: for each file, one
    process creates it and all use the same key; none fails or reads a half-written file."""
    homes, keys, workers = tmp_path / "homes", 200, 4
    done = subprocess.run(
        [sys.executable, "-c", RACE, str(homes), str(keys), str(workers)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-1000:]
    seen = [(tmp_path / f"seen-{w}").read_text().split() for w in range(workers)]
    assert all(len(keys_seen) == keys for keys_seen in seen)
    for i in range(keys):
        key_file = homes / str(i) / "masking.key"
        assert {keys_seen[i] for keys_seen in seen} == {key_file.read_text().strip()}
        assert [p.name for p in key_file.parent.iterdir()] == ["masking.key"]


def test_no_key_and_an_unwritable_home_is_one_line(tmp_path, monkeypatch, capsys):
    not_a_dir = tmp_path / "home-is-a-file"
    not_a_dir.write_text("")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(not_a_dir))
    code = cli_main(["machines", "--workers", "1", "--backup-dir", str(EXAMPLES), str(tmp_path / "t.csv")])
    err = capsys.readouterr().err
    assert code == 1 and len(error_lines(err)) == 1 and "Traceback" not in err
    assert "cannot create the masking key file" in err and "--hashed-masking-key-file" in err


# -- 8. never destroy an input --------------------------------------------------------------------------


def test_an_output_among_the_dumps_is_refused_and_the_dump_kept(tmp_path, backups, capsys):
    dump = backups / "mysqldump-2024-01-05T03:00:00Z.mysql.gz"
    before = dump.read_bytes()
    assert cli_main(machines("--backup-dir", str(backups), str(dump))) == 1
    assert dump.read_bytes() == before
    assert "is inside the backup directory" in error_lines(capsys.readouterr().err)[0]
    os.symlink(dump, tmp_path / "link.csv")  # through a link, too
    assert cli_main(machines("--backup-dir", str(backups), str(tmp_path / "link.csv"))) == 1
    assert cli_main(machines("--backup-dir", str(backups), str(backups / "new-trace.csv"))) == 1
    assert dump.read_bytes() == before and not (backups / "new-trace.csv").exists()


# -- 9. trace and manifest together ---------------------------------------------------------------------


def test_a_failed_manifest_write_leaves_the_previous_trace_and_manifest(tmp_path, backups):
    """The disk fills between the trace and the manifest: neither the new trace nor a mismatched pair."""
    for i in range(25):  # skipped files make the manifest larger than the trace
        (backups / f"zz-broken-{i:02d}.sql").write_text("nothing here\n")
    out = tmp_path / "t.csv"
    common = ["machines", "--workers", "1", "--hashed-masking-method", "none", "--skip-bad-files"]
    first = run_cli(*common, "--backup-dir", str(backups), "--epoch", "2020-01-01", str(out), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    old_trace, old_manifest = out.read_bytes(), Path(f"{out}.manifest.json").read_bytes()
    assert len(old_trace) < 4500 < len(old_manifest)
    second = run_cli(*common, "--backup-dir", str(backups), str(out), limit=4500, cwd=tmp_path)
    assert second.returncode == 1 and "Traceback" not in second.stderr
    assert error_lines(second.stderr) == [
        f"starcompactor: error: {out}.manifest.json: cannot write: File too large"
    ]
    assert out.read_bytes() == old_trace and Path(f"{out}.manifest.json").read_bytes() == old_manifest
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_a_crash_between_the_renames_never_pairs_the_old_manifest_with_the_new_trace(
    tmp_path, backups, monkeypatch
):
    out = tmp_path / "t.csv"
    make_machine_trace(str(backups), str(out), fmt="csv")
    old_trace = out.read_bytes()
    assert Path(f"{out}.manifest.json").exists()

    class Crash(BaseException):
        pass

    replace = os.replace

    def crash_at_the_manifest(source, target):  # the machine stops as the manifest is renamed
        if str(target).endswith(".manifest.json"):
            raise Crash()
        replace(source, target)

    monkeypatch.setattr(os, "replace", crash_at_the_manifest)
    with pytest.raises(Crash):
        make_machine_trace(str(backups), str(out), fmt="jsonl")
    assert out.read_bytes() != old_trace  # the new trace is in place …
    assert not Path(f"{out}.manifest.json").exists()  # … and the old manifest no longer claims it


def test_a_file_name_that_is_not_utf8_is_written_escaped_in_the_manifest(tmp_path, backups, capsys):
    odd = os.fsdecode(b"mysqldump-2024-01-10T03:00:00Z-\xff\xfe.mysql.gz")
    shutil.copy(backups / "mysqldump-2024-01-09T03:00:00Z.mysql.gz", backups / odd)
    out = tmp_path / "t.csv"
    assert cli_main(machines("--backup-dir", str(backups), str(out))) == 0, capsys.readouterr().err
    manifest = orjson.loads(Path(f"{out}.manifest.json").read_bytes())
    assert manifest["inputs"][-1]["name"] == "mysqldump-2024-01-10T03:00:00Z-\\xff\\xfe.mysql.gz"


# -- 10. one line, never a traceback --------------------------------------------------------------------


@contextlib.contextmanager
def unwritable(directory: Path):
    """A directory nobody may create files in, root included (root ignores mode bits: immutable)."""
    directory.mkdir()
    if os.geteuid() == 0:
        if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(directory)]).returncode:
            pytest.skip("cannot make a directory immutable here")
        undo = ["chattr", "-i", str(directory)]
    else:
        directory.chmod(0o555)
        undo = ["chmod", "755", str(directory)]
    try:
        yield directory
    finally:
        subprocess.run(undo, check=False)


def test_output_directory_missing_unwritable_or_a_directory_is_one_line(tmp_path, capsys):
    (tmp_path / "a-dir").mkdir()
    cases = {
        str(tmp_path / "missing" / "t.csv"): "the output directory",
        str(tmp_path / "a-dir"): "is a directory",
    }
    with unwritable(tmp_path / "locked") as locked:
        cases[str(locked / "t.csv")] = "cannot write in the output directory"
        for output, what in cases.items():
            assert cli_main(machines("--backup-dir", str(EXAMPLES), output)) == 1
            err = capsys.readouterr().err
            assert len(error_lines(err)) == 1 and what in err and "Traceback" not in err, err
        assert list(locked.iterdir()) == []


def test_a_full_disk_is_one_line_and_leaves_nothing(tmp_path, backups):
    out = tmp_path / "t.csv"
    done = run_cli(*machines("--backup-dir", str(backups), str(out)), limit=1000, cwd=tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert error_lines(done.stderr) == [f"starcompactor: error: {out}: cannot write: File too large"]
    assert list(tmp_path.glob("*t.csv*")) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="making a device node needs root")
def test_a_device_that_is_full_is_one_line(tmp_path, backups, capsys):
    """ENOSPC itself: a private node of the device /dev/full is (always full), written straight into."""
    full = tmp_path / "full"
    try:
        os.mknod(full, stat.S_IFCHR | 0o666, os.makedev(1, 7))
    except OSError:
        pytest.skip("cannot make device nodes here")
    assert cli_main(machines("--backup-dir", str(backups), str(full))) == 1
    assert error_lines(capsys.readouterr().err) == [
        f"starcompactor: error: {full}: cannot write: No space left on device"
    ]
    assert stat.S_ISCHR(full.stat().st_mode)  # still the device, not replaced by a file


def test_bad_entries_in_the_backup_directory_are_one_line_or_skipped(tmp_path, backups, capsys):
    """A symbolic link loop, a dangling link, a directory, an empty file, a truncated dump: each stops the
    run with one line naming it, or is skipped alone with --skip-bad-files."""
    out = tmp_path / "t.csv"
    assert cli_main(machines("--backup-dir", str(backups), str(tmp_path / "good.csv"))) == 0
    os.symlink("zz-loop.sql", backups / "zz-loop.sql")
    os.symlink(tmp_path / "nowhere", backups / "zz-dangling.sql")
    (backups / "zz-dir.sql").mkdir()
    (backups / "zz-empty.sql").write_bytes(b"")
    (backups / "zz-truncated.sql.gz").write_bytes(
        gzip.compress((backups / "mysqldump-2024-01-02T03:00:00Z.mysql.gz").read_bytes())[:300]
    )
    assert cli_main(machines("--backup-dir", str(backups), str(out))) == 1
    err = capsys.readouterr().err
    assert len(error_lines(err)) == 1 and "Traceback" not in err and "zz-" in err
    assert cli_main(machines("--backup-dir", str(backups), "--skip-bad-files", str(out))) == 0
    err = capsys.readouterr().err
    manifest = orjson.loads(Path(f"{out}.manifest.json").read_bytes())
    assert sorted(s["name"] for s in manifest["skipped"]) == [
        "zz-dangling.sql",
        "zz-empty.sql",
        "zz-loop.sql",
        "zz-truncated.sql.gz",
    ]
    assert "symbolic links" in err and len(manifest["inputs"]) == 9
    assert out.read_bytes() == (tmp_path / "good.csv").read_bytes()


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_a_host_name_that_is_not_utf8_is_one_line_naming_the_dump(tmp_path, backups, capsys, fmt):
    """Text is read as the dump's SET NAMES says: bytes that are not UTF-8 in a utf8mb4 dump are a damaged
    dump, said in one line naming it and the column (a server in strict mode never stores them)."""
    for path in backups.iterdir():
        data = gzip.decompress(path.read_bytes()).replace(b"c02-01.chameleon", b"c02-01\xff.chameleon")
        path.write_bytes(gzip.compress(data))
    out = tmp_path / f"t.{fmt}"
    code = cli_main(machines("--backup-dir", str(backups), "--format", fmt, str(out)))
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err, err
    (line,) = error_lines(err)
    assert "hypervisor_hostname" in line and "not utf-8" in line and ".mysql.gz" in line
    assert not out.exists()


# -- 11. names, modes, where settings come from ---------------------------------------------------------


def test_a_file_name_with_a_newline_cannot_forge_a_message_line(tmp_path, backups, capsys):
    forged = "zz\nstarcompactor: error: forged line.sql"
    (backups / forged).write_text("not a dump\n")
    code = cli_main(
        machines(
            "--backup-dir", str(backups), "--backup-file-regex", r"(?s).*\.(sql|gz)$", str(tmp_path / "t.csv")
        )
    )
    err = capsys.readouterr().err
    assert code == 1 and len(error_lines(err)) == 1
    assert "zz\\nstarcompactor: error: forged line.sql" in err
    assert not any(line.startswith("starcompactor: error: forged") for line in err.splitlines())


def test_outputs_with_names_in_clear_are_private(tmp_path):
    out = tmp_path / "t.csv"
    assert cli_main(machines("--backup-dir", str(EXAMPLES), str(out))) == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert stat.S_IMODE(Path(f"{out}.manifest.json").stat().st_mode) == 0o600
    masked = tmp_path / "m.csv"
    assert cli_main(["machines", "--workers", "1", "--backup-dir", str(EXAMPLES), str(masked)]) == 0
    assert stat.S_IMODE(masked.stat().st_mode) == 0o644 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_settings_read_from_the_working_directory_are_said(tmp_path, capsys):
    (tmp_path / "starcompactor.config").write_text("[default]\nepoch = 2016-01-01T00:00:00\n")
    assert cli_main(machines("--backup-dir", str(EXAMPLES), str(tmp_path / "t.csv"))) == 0
    err = capsys.readouterr().err
    said = [line for line in err.splitlines() if "starcompactor.config" in line]
    assert said == ["starcompactor: reading settings from ./starcompactor.config (the working directory)"]
    assert orjson.loads((tmp_path / "t.csv.manifest.json").read_bytes())["config"] == "./starcompactor.config"
    assert (
        cli_main(
            machines(
                "--backup-dir", str(EXAMPLES), "--config", "starcompactor.config", str(tmp_path / "u.csv")
            )
        )
        == 0
    )
    assert "reading settings" not in capsys.readouterr().err  # named: nothing to say


def test_a_run_in_process_leaves_the_callers_signal_handlers(tmp_path):
    """SIGPIPE's default (for `… - | head`) and the SIGTERM handler hold for the run only."""
    before = signal.getsignal(signal.SIGPIPE), signal.getsignal(signal.SIGTERM)
    assert cli_main(machines("--backup-dir", str(EXAMPLES), str(tmp_path / "t.csv"))) == 0
    assert (signal.getsignal(signal.SIGPIPE), signal.getsignal(signal.SIGTERM)) == before
