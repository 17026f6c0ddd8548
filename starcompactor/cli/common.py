"""What every trace command shares: output and masking options, config, the masking key, logging.

Each command's parser fills an ``argparse.Namespace``; its handler turns that into a typed request (a
frozen dataclass: :class:`OutputOptions` here, the commands' own in their modules) by reading every
attribute by name, so a misspelt option is an error at once rather than a silent default.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass, field
from typing import Any, Optional

from ..config import DEFAULT_FILE, INSTANCE_TYPES, Config, load_config
from ..errors import printable
from ..mask import DEFAULT_METHOD, METHODS, Masker, load_key
from ..times import parse_time
from ..traces import default_output, supported_formats

log = logging.getLogger("starcompactor")


@dataclass(frozen=True)
class OutputOptions:
    """Where and how a trace is written and masked, and which settings file applies."""

    output: str
    fmt: str
    instance_type: str
    config: Optional[str]
    epoch: Optional[str]
    masking_method: str
    key_file: Optional[str]
    legacy_salt: Optional[str] = field(default=None, repr=False)
    quiet: bool = False

    def resolve_config(self) -> Config:
        """The settings file (``--config``, else ./starcompactor.config, else defaults), then flags."""
        config = load_config(self.config)
        if not self.config and config.source != "built-in defaults":
            # found by being in the working directory, not by being named: say so, and name it as found
            config.source = f"./{DEFAULT_FILE}"
            print(
                f"starcompactor: reading settings from {config.source} (the working directory)",
                file=sys.stderr,
            )
        if self.epoch:
            config.epoch = parse_time(self.epoch, "--epoch")
        return config

    def masker(self) -> Masker:
        """The masker of this run; says on stderr where its key came from (never the key)."""
        if self.masking_method == "none":
            log.warning("masking method 'none': identifying fields are written in clear")
            return Masker("none")
        if self.legacy_salt is not None:
            log.warning(
                "--hashed-masking-salt puts the key in the command line, which other users can read (ps); "
                "use --hashed-masking-key-file or $STARCOMPACTOR_MASKING_KEY"
            )
        key = load_key(self.key_file, legacy_salt=self.legacy_salt)
        if key.source.startswith("key file") and not self.key_file:
            print(
                printable(
                    f"starcompactor: masking with the {key.source}; use the same key for the other trace so they join"
                ),
                file=sys.stderr,
            )
        else:
            log.info("masking key from %s (fingerprint %s)", key.source, key.fingerprint)
        return Masker(self.masking_method, key)


def output_options(args: argparse.Namespace, kind: str, *, default_format: str = "csv") -> OutputOptions:
    """The :class:`OutputOptions` of a parser built with :func:`add_output_arguments`."""
    fmt = args.format or args.jsons or default_format
    return OutputOptions(
        output=args.output or default_output(kind, fmt),
        fmt=fmt,
        instance_type=args.instance_type,
        config=args.config,
        epoch=args.epoch,
        masking_method=args.hashed_masking_method,
        key_file=args.hashed_masking_key_file,
        legacy_salt=args.hashed_masking_salt,
        quiet=args.quiet,
    )


def add_logging_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("messages")
    group.add_argument("-q", "--quiet", action="store_true", help="no progress bar, warnings and errors only")
    group.add_argument(
        "-v",
        "--verbose",
        action="store_const",
        const=logging.INFO,
        dest="loglevel",
        help="say what is being done",
    )
    group.add_argument(
        "--debug",
        action="store_const",
        const=logging.DEBUG,
        dest="loglevel",
        help="debug logging, and a traceback on errors",
    )


def add_output_arguments(
    parser: argparse.ArgumentParser,
    kind: str,
    *,
    default_method: str = DEFAULT_METHOD,
    format_help: str = "csv (default), legacy-csv (the original tool's exact format), jsonl, parquet",
    output_metavar: str = "OUTPUT",
    output_required: bool = False,
) -> None:
    """Options every trace command shares: config, format, masking, epoch, instance type, output."""
    parser.add_argument(
        "--config", metavar="PATH", help="settings file (default: ./starcompactor.config if present)"
    )
    parser.add_argument(
        "--instance-type",
        choices=INSTANCE_TYPES,
        default="vm",
        help="vm (Nova/KVM) or baremetal (Ironic + Blazar); default vm",
    )
    parser.add_argument("--format", choices=supported_formats(), default=None, help=format_help)
    parser.add_argument(
        "--jsons",
        action="store_const",
        const="jsonl",
        dest="jsons",
        help="same as --format jsonl (the original tool's flag)",
    )
    group = parser.add_argument_group("anonymization")
    group.add_argument(
        "--hashed-masking-method",
        choices=METHODS,
        default=default_method,
        help=f"how identifying fields are hashed (default {default_method})",
    )
    group.add_argument(
        "--hashed-masking-key-file",
        metavar="PATH",
        help="file holding the masking key (else $STARCOMPACTOR_MASKING_KEY, "
        "else your own key file, created on first use)",
    )
    group.add_argument(
        "--hashed-masking-salt",
        metavar="SALT",
        help="the original tool's way to give the key; visible to other users in ps: prefer "
        "--hashed-masking-key-file",
    )
    parser.add_argument("--epoch", metavar="ISO", help="trace epoch (overrides [default] epoch)")
    if output_required:
        parser.add_argument("output", metavar=output_metavar, help="output file, or - for stdout")
    else:
        parser.add_argument(
            "output",
            metavar=output_metavar,
            nargs="?",
            default=None,
            help=f"output file, or - for stdout (default {kind}_events.csv, or the format's suffix)",
        )


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg,unused-ignore]
    """Writes to whatever ``sys.stderr`` is when a record is emitted (not when the handler was made)."""

    @property  # type: ignore[override,unused-ignore]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


class _OneLine(logging.Formatter):
    """Each message on one line, credentials in URIs redacted (a traceback, with --debug, follows as is)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return printable(super().formatMessage(record))


def configure_logging(args: argparse.Namespace) -> None:
    """The library's messages on stderr: ``-q`` errors only, ``-v`` info, ``--debug`` everything."""
    level = args.loglevel or (logging.ERROR if args.quiet else logging.WARNING)
    logger = logging.getLogger("starcompactor")
    for handler in [h for h in logger.handlers if isinstance(h, _Stderr)]:
        logger.removeHandler(handler)
    handler = _Stderr()
    handler.setFormatter(_OneLine("starcompactor: %(levelname)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
