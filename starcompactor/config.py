"""``starcompactor.config`` (INI, compatible with the original's file) and its defaults (SPEC §5).

Precedence: command line > environment > ``--config PATH`` or ``./starcompactor.config`` > built-in
defaults. The file is read when asked for, never at import time.

Interpolation is off, so a regex may contain a plain ``%``. The original read the file with
interpolation on, where ``%`` had to be written ``%%``; such files keep working because ``%%`` is read
as ``%``.
"""

from __future__ import annotations

import configparser
import datetime as dt
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Tuple

from .errors import ConfigError
from .times import parse_time

DEFAULT_FILE = "starcompactor.config"

DEFAULT_BAREMETAL_PROPERTIES = (
    "node_type",
    "placement.rack",
    "architecture.platform_type",
    "main_memory.ram_size",
    "architecture.smt_size",
    "architecture.smp_size",
    "storage_devices.0.size",
)

DEFAULTS = {
    "default": {"epoch": "2015-09-17T00:00:00", "nova_databases": "nova,nova_cell0"},
    "baremetal": {
        "properties": ",".join(DEFAULT_BAREMETAL_PROPERTIES),
        "rack_property_name": "placement.rack",
    },
    "backup": {
        "backup_dir": "",
        "backup_file_regex": r"mysql_backup_(\d{8})-(\d{6}).sql.bz2",
        "backup_file_reducable_prefix_len": "0",
        "backup_file_reducable_suffix_len": "0",
    },
    "kvm": {
        "hypervisor_hostname_regex": r"(\w\d{2})-(\d{2}).chameleon.tacc.utexas.edu",
        "rack_extract_group": "1",
    },
    "multithread": {"number_of_files_per_process": "30"},
}


#: Site types: Nova/KVM, or Ironic + Blazar.
INSTANCE_TYPES = ("vm", "baremetal")


def check_instance_type(value: str) -> str:
    """``value`` if it names a site type; else the one error every entry point raises for it."""
    if value not in INSTANCE_TYPES:
        raise ConfigError(f"unknown instance type {value!r} (choose from {', '.join(INSTANCE_TYPES)})")
    return value


@dataclass
class Config:
    """Settings of one run. Build with :func:`load_config`, then override fields from the command line."""

    epoch: dt.datetime = field(default_factory=lambda: parse_time(DEFAULTS["default"]["epoch"]))
    nova_databases: Tuple[str, ...] = ("nova", "nova_cell0")
    baremetal_properties: Tuple[str, ...] = DEFAULT_BAREMETAL_PROPERTIES
    rack_property_name: Optional[str] = "placement.rack"
    backup_dir: str = ""
    backup_file_regex: str = DEFAULTS["backup"]["backup_file_regex"]
    hypervisor_hostname_regex: Optional[str] = DEFAULTS["kvm"]["hypervisor_hostname_regex"]
    rack_extract_group: Optional[int] = 1
    number_of_files_per_process: int = 30
    source: str = "built-in defaults"


def _split_list(value: str) -> Tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def load_config(path: Optional[str] = None, *, cwd: Optional[str] = None) -> Config:
    """Read ``path`` (must exist), else ``./starcompactor.config`` if present, else the defaults."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_dict(DEFAULTS)
    source = "built-in defaults"
    candidate = Path(path) if path else Path(cwd or os.getcwd()) / DEFAULT_FILE
    if path or candidate.is_file():
        try:
            with open(candidate, encoding="utf-8") as handle:
                parser.read_file(handle, source=str(candidate))
        except OSError as exc:
            raise ConfigError(f"{candidate}: cannot read config: {exc.strerror or exc}") from exc
        except configparser.Error as exc:
            raise ConfigError(f"{candidate}: bad config: {str(exc).splitlines()[0]}") from exc
        source = str(candidate)

    def get(section: str, key: str) -> str:
        return parser.get(section, key, fallback="").replace("%%", "%").strip()

    def get_int(section: str, key: str) -> Optional[int]:
        text = get(section, key)
        if not text:
            return None
        try:
            return int(text)
        except ValueError as exc:
            raise ConfigError(f"{source}: [{section}] {key} must be a whole number, not {text!r}") from exc

    epoch_text = get("default", "epoch") or DEFAULTS["default"]["epoch"]
    regex = get("kvm", "hypervisor_hostname_regex") or None
    if regex:
        try:
            re.compile(regex)
        except re.error as exc:
            raise ConfigError(f"{source}: [kvm] hypervisor_hostname_regex is not a regex: {exc}") from exc
    backup_regex = get("backup", "backup_file_regex") or DEFAULTS["backup"]["backup_file_regex"]
    try:
        re.compile(backup_regex)
    except re.error as exc:
        raise ConfigError(f"{source}: [backup] backup_file_regex is not a regex: {exc}") from exc
    return Config(
        epoch=parse_time(epoch_text, f"{source}: [default] epoch"),
        nova_databases=_split_list(get("default", "nova_databases")) or ("nova", "nova_cell0"),
        baremetal_properties=_split_list(get("baremetal", "properties")),
        rack_property_name=get("baremetal", "rack_property_name") or None,
        backup_dir=get("backup", "backup_dir"),
        backup_file_regex=backup_regex,
        hypervisor_hostname_regex=regex,
        rack_extract_group=get_int("kvm", "rack_extract_group"),
        number_of_files_per_process=get_int("multithread", "number_of_files_per_process") or 30,
        source=source,
    )
