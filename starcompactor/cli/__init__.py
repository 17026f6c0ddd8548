"""The command line: ``main`` (the parser of every subcommand and exit codes), ``common`` (options every
trace command shares), one module per command (``machines``, ``instances``), ``compat`` (the original
tool's entry points and flags) and ``progress`` (tqdm bars; the only place tqdm is used).

The library never imports this package.
"""

from __future__ import annotations

from .main import build_parser, main, run

__all__ = ["build_parser", "main", "run"]
