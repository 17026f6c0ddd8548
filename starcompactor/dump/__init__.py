"""mysqldump archives → typed rows, without a MySQL server.

``stream`` opens anything smart_open opens and undoes its compression (sniffed from magic bytes);
``buffer`` is the byte window the reader slides over the dump; ``reader`` walks statements and keeps the
rows of the requested tables (:class:`DumpReader`); ``values`` tokenizes VALUES lists (and counts rows
without tokenizing); ``schema`` reads ``CREATE TABLE`` and types the values by column type; ``inspect``
summarizes a whole dump (versions, tables, row counts) for ``starcompactor inspect``.
"""

from __future__ import annotations

from .reader import DumpInfo, DumpReader, Row, TableKey, read_info, read_rows
from .stream import (
    DecompressedStream,
    compressed_suffixes,
    register_decompressor,
    sniff_compression,
    supported_compressions,
)

__all__ = [
    "DecompressedStream",
    "compressed_suffixes",
    "DumpInfo",
    "DumpReader",
    "Row",
    "TableKey",
    "read_info",
    "read_rows",
    "register_decompressor",
    "sniff_compression",
    "supported_compressions",
]
