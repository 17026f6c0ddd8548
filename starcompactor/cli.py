"""Command line: ``starcompactor machines …`` and ``starcompactor instances …``.

Thin by design: parse arguments, load the config, call the library, map our exceptions to exit codes
(0 ok, 1 error, 2 usage, 130 interrupted) and print one line ``starcompactor: error: …`` on failure
(a traceback only with ``--debug``).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from typing import Callable, List, Optional, Sequence

from . import __version__
from .config import Config, load_config, parse_time
from .errors import StarCompactorError
from .mask import DEFAULT_METHOD, METHODS, Masker, load_key
from .report import command as report_command
from .writers import FORMATS

log = logging.getLogger("starcompactor")

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


# -- shared options -----------------------------------------------------------------------------------


def add_logging_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("messages")
    group.add_argument("-q", "--quiet", action="store_true", help="no progress bar, warnings and errors only")
    group.add_argument("-v", "--verbose", action="store_const", const=logging.INFO, dest="loglevel",
                       help="say what is being done")  # fmt: skip
    group.add_argument("--debug", action="store_const", const=logging.DEBUG, dest="loglevel",
                       help="debug logging, and a traceback on errors")  # fmt: skip


def add_output_arguments(parser: argparse.ArgumentParser, default_output: str) -> None:
    """Options every trace command shares: config, format, masking, epoch, instance type, output."""
    parser.add_argument(
        "--config", metavar="PATH", help="settings file (default: ./starcompactor.config if present)"
    )
    parser.add_argument("--instance-type", choices=("vm", "baremetal"), default="vm",
                        help="vm (Nova/KVM) or baremetal (Ironic + Blazar); default vm")  # fmt: skip
    parser.add_argument("--format", choices=FORMATS, default=None,
                        help="csv (default), legacy-csv (the original tool's exact format), jsonl, parquet")  # fmt: skip
    parser.add_argument("--jsons", action="store_const", const="jsonl", dest="jsons",
                        help="same as --format jsonl (the original tool's flag)")  # fmt: skip
    group = parser.add_argument_group("anonymization")
    group.add_argument("--hashed-masking-method", choices=METHODS, default=DEFAULT_METHOD,
                       help=f"how identifying fields are hashed (default {DEFAULT_METHOD})")  # fmt: skip
    group.add_argument("--hashed-masking-key-file", metavar="PATH",
                       help="file holding the masking key (else $STARCOMPACTOR_MASKING_KEY, "
                            "else your own key file, created on first use)")  # fmt: skip
    group.add_argument("--hashed-masking-salt", metavar="SALT",
                       help="the original tool's way to give the key; visible to other users in ps: prefer "
                            "--hashed-masking-key-file")  # fmt: skip
    parser.add_argument("--epoch", metavar="ISO", help="trace epoch (overrides [default] epoch)")
    parser.add_argument("output", nargs="?", default=default_output,
                        help=f"output file, or - for stdout (default {default_output})")  # fmt: skip


def output_format(args: argparse.Namespace) -> str:
    return args.format or getattr(args, "jsons", None) or "csv"


def resolve_config(args: argparse.Namespace) -> Config:
    config = load_config(args.config)
    if getattr(args, "epoch", None):
        config.epoch = parse_time(args.epoch, "--epoch")
    return config


def resolve_masker(args: argparse.Namespace) -> Masker:
    """The masker of this run; says on stderr where its key came from (never the key)."""
    method = args.hashed_masking_method
    if method == "none":
        log.warning("masking method 'none': identifying fields are written in clear")
        return Masker("none")
    salt = getattr(args, "hashed_masking_salt", None)
    if salt is not None:
        log.warning(
            "--hashed-masking-salt puts the key in the command line, which other users can read (ps); "
            "use --hashed-masking-key-file or $STARCOMPACTOR_MASKING_KEY"
        )
    key = load_key(args.hashed_masking_key_file, legacy_salt=salt)
    if key.source.startswith("key file") and not args.hashed_masking_key_file:
        print(
            f"starcompactor: masking with the {key.source}; use the same key for the other trace so they join",
            file=sys.stderr,
        )
    else:
        log.info("masking key from %s (fingerprint %s)", key.source, key.fingerprint)
    return Masker(method, key)


def configure_logging(args: argparse.Namespace) -> None:
    level = getattr(args, "loglevel", None) or (
        logging.ERROR if getattr(args, "quiet", False) else logging.WARNING
    )
    logging.basicConfig(level=level, stream=sys.stderr, format="starcompactor: %(levelname)s: %(message)s")
    logging.getLogger("starcompactor").setLevel(level)


# -- subcommands --------------------------------------------------------------------------------------


def add_machines_parser(subparsers: "argparse._SubParsersAction") -> None:
    from . import machines_cli

    machines_cli.add_parser(subparsers)


def add_instances_parser(subparsers: "argparse._SubParsersAction") -> None:
    from . import instances_cli

    instances_cli.add_parser(subparsers)


SUBCOMMANDS: List[Callable[["argparse._SubParsersAction"], None]] = [
    add_machines_parser,
    add_instances_parser,
    report_command.add_parser,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="starcompactor",
        description="Anonymized OpenStack workload traces: machine events from mysqldump archives, "
        "instance events from Nova.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for add in SUBCOMMANDS:
        add(subparsers)
    return parser


def run(parser: argparse.ArgumentParser, argv: Optional[Sequence[str]] = None) -> int:
    """Parse ``argv`` with ``parser`` and run the chosen handler (``args.handler``)."""
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `… - | head` ends quietly
    args = parser.parse_args(argv)
    configure_logging(args)
    try:
        return int(args.handler(args) or EXIT_OK)
    except StarCompactorError as exc:
        if getattr(args, "loglevel", None) == logging.DEBUG:
            log.exception("failed")
        print(f"starcompactor: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("starcompactor: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def main(argv: Optional[Sequence[str]] = None) -> int:
    return run(build_parser(), argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
