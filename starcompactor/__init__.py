"""StarCompactor: anonymized OpenStack workload traces from mysqldump archives and Nova.

The library reads without the command line: :class:`DumpReader` streams the rows of chosen tables out of
compressed mysqldump archives; the other stages build host snapshots, diff them into machine events,
query instance events, mask and write traces.
"""

from __future__ import annotations

__version__ = "1.0.0.dev0"

from .errors import StarCompactorError
from .statements import DumpInfo, DumpReader, read_info, read_rows

__all__ = ["DumpInfo", "DumpReader", "StarCompactorError", "__version__", "read_info", "read_rows"]
