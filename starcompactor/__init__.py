"""StarCompactor: anonymized OpenStack workload traces from mysqldump archives and Nova.

The library reads without the command line: :class:`DumpReader` streams the rows of chosen tables out of
compressed mysqldump archives (:mod:`starcompactor.dump`); :mod:`starcompactor.machines` turns archives
into the machine trace, :mod:`starcompactor.instances` Nova's databases or API into the instance trace,
and :mod:`starcompactor.traces` writes both.
"""

from __future__ import annotations

from ._version import __version__
from .dump import DumpInfo, DumpReader, read_info, read_rows
from .errors import StarCompactorError

__all__ = ["DumpInfo", "DumpReader", "StarCompactorError", "__version__", "read_info", "read_rows"]
