"""starcompactor.config (SPEC §5): defaults, the original's file, precedence, errors."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from starcompactor.config import load_config, parse_time
from starcompactor.errors import ConfigError
from starcompactor.machines.snapshot import rack_of


def test_defaults_without_a_file(tmp_path):
    config = load_config(None, cwd=str(tmp_path))
    assert config.source == "built-in defaults"
    assert config.epoch == dt.datetime(2015, 9, 17)
    assert config.nova_databases == ("nova", "nova_cell0")
    assert config.baremetal_properties[0] == "node_type" and len(config.baremetal_properties) == 7
    assert config.backup_file_regex == r"mysql_backup_(\d{8})-(\d{6}).sql.bz2"
    assert config.rack_extract_group == 1


def test_current_directory_file_is_read(tmp_path):
    (tmp_path / "starcompactor.config").write_text("[default]\nnova_databases = nova, nova_cell1\n")
    config = load_config(None, cwd=str(tmp_path))
    assert config.nova_databases == ("nova", "nova_cell1") and config.source.endswith("starcompactor.config")


def test_the_original_file_is_accepted_and_percent_works_both_ways(tmp_path):
    path = tmp_path / "c.ini"
    path.write_text(
        "[default]\nepoch = 2015-09-17 00:00:00\nnova_databases = nova\n"
        "[baremetal]\nproperties = node_type,placement.rack\nrack_property_name = placement.rack\n"
        "[backup]\nbackup_dir = /backups\nbackup_file_regex = db_%%d_(\\d{8}).sql.gz\n"
        "backup_file_reducable_prefix_len = 3\nbackup_file_reducable_suffix_len = 7\n"
        "[kvm]\nhypervisor_hostname_regex = (\\w\\d{2})-(\\d{2})%.x\nrack_extract_group =\n"
        "[multithread]\nnumber_of_files_per_process = 10\n"
    )
    config = load_config(str(path))
    assert config.backup_file_regex == r"db_%d_(\d{8}).sql.gz"  # %% read as %
    assert config.hypervisor_hostname_regex == r"(\w\d{2})-(\d{2})%.x"  # a plain % works too
    assert config.rack_extract_group is None
    # with no rack group, no rack is read from a host name (what the old hostname_pattern property said)
    pattern = re.compile(config.hypervisor_hostname_regex)
    assert rack_of("c01-02%x", pattern, config.rack_extract_group) == "UNKNOWN"
    assert config.backup_dir == "/backups" and config.number_of_files_per_process == 10
    assert config.baremetal_properties == ("node_type", "placement.rack")


@pytest.mark.parametrize(
    "text, match",
    [
        ("[default]\nepoch = yesterday\n", "epoch"),
        ("[kvm]\nhypervisor_hostname_regex = (\n", "hypervisor_hostname_regex"),
        ("[kvm]\nrack_extract_group = one\n", "rack_extract_group"),
        ("[backup]\nbackup_file_regex = [\n", "backup_file_regex"),
        ("not an ini file\n", "bad config"),
    ],
)
def test_bad_values_name_the_file_and_key(tmp_path, text, match):
    path = tmp_path / "c.ini"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match) as info:
        load_config(str(path))
    assert str(path) in str(info.value)


def test_explicit_missing_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(str(tmp_path / "nope.ini"))


def test_parse_time_to_naive_utc():
    assert parse_time("2024-01-05T05:00:00+02:00") == dt.datetime(2024, 1, 5, 3)
    assert parse_time("2024-01-05T03:00:00Z") == dt.datetime(2024, 1, 5, 3)
    with pytest.raises(ConfigError):
        parse_time("05/01/2024")
