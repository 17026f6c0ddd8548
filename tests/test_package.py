"""Package-level promises: a lean import, --help everywhere, clear messages for missing extras."""

from __future__ import annotations

import builtins
import datetime as dt
import subprocess
import sys

import pytest

from starcompactor.errors import MissingDependencyError


def test_import_pulls_in_no_heavy_dependency():
    code = (
        "import sys, starcompactor, starcompactor.dump, starcompactor.traces, starcompactor.mask,"
        " starcompactor.machines, starcompactor.instances, starcompactor.server, starcompactor.cli;"
        "heavy = [m for m in ('tqdm', 'pymysql', 'openstack', 'pyarrow', 'distributed', 'sqlparse') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""


@pytest.mark.parametrize(
    "argv",
    [
        ["-m", "starcompactor", "--help"],
        ["-m", "starcompactor", "machines", "--help"],
        ["-m", "starcompactor", "instances", "--help"],
        ["-m", "starcompactor", "inspect", "--help"],
        ["-m", "starcompactor.machine_event_dump", "--help"],
        ["-m", "starcompactor.instance_event_db_dump", "--help"],
        ["-m", "starcompactor.instance_event_api_dump", "--help"],
    ],
)
def test_every_entry_point_has_help(argv):
    done = subprocess.run([sys.executable, *argv], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout


def test_usage_error_exits_2():
    done = subprocess.run(
        [sys.executable, "-m", "starcompactor", "no-such-command"], capture_output=True, text=True
    )
    assert done.returncode == 2
    assert "invalid choice" in done.stderr


def test_missing_pyarrow_names_the_extra(monkeypatch, tmp_path):
    from starcompactor.traces import open_writer

    real_import = builtins.__import__

    def no_pyarrow(name, *args, **kwargs):
        if name == "pyarrow" or name.startswith("pyarrow."):
            raise ImportError("No module named 'pyarrow'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pyarrow)
    out = tmp_path / "trace.parquet"
    with (
        pytest.raises(MissingDependencyError) as info,
        open_writer(str(out), "machine", "parquet", dt.datetime(2015, 9, 17)),
    ):
        pass
    assert "pip install 'starcompactor[parquet]'" in str(info.value)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind


def test_missing_zstandard_names_the_extra(monkeypatch, tmp_path):
    from starcompactor.dump import read_info

    real_import = builtins.__import__

    def no_zstd(name, *args, **kwargs):
        if name == "zstandard":
            raise ImportError("No module named 'zstandard'")
        return real_import(name, *args, **kwargs)

    path = tmp_path / "dump.sql.zst"
    path.write_bytes(b"\x28\xb5\x2f\xfd" + b"\x00" * 16)
    monkeypatch.setattr(builtins, "__import__", no_zstd)
    with pytest.raises(MissingDependencyError) as info:
        read_info(str(path))
    assert "starcompactor[zstd]" in str(info.value)


def test_install_hints_name_extras_that_exist():
    """Every MissingDependencyError the code can raise names an extra pyproject.toml defines."""
    import ast
    import importlib.metadata
    from pathlib import Path

    extras = set(importlib.metadata.metadata("starcompactor").get_all("Provides-Extra") or [])
    named = set()
    for path in (Path(__file__).resolve().parents[1] / "starcompactor").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "MissingDependencyError":
                extra = node.args[1]
                assert isinstance(extra, ast.Constant), f"{path}:{node.lineno}: extra must be a literal"
                named.add((extra.value, f"{path.name}:{node.lineno}"))
    assert named, "no MissingDependencyError found: the scan is broken"
    missing = sorted(where for extra, where in named if extra not in extras)
    assert not missing, f"extras named but not defined in pyproject.toml: {missing}"
