"""A live MySQL/MariaDB server: option files (``mycnf``), how to reach it (``settings``), connections and
one-line errors (``connect``), and bulk reading of streamed results (``packets``).

Shared by the sources that read a live server: Nova's cell databases (:mod:`starcompactor.instances`)
and the audit log.
"""

from __future__ import annotations

from .connect import connect, database_error, quote_identifier
from .settings import DbSettings, resolve_settings

__all__ = ["DbSettings", "connect", "database_error", "quote_identifier", "resolve_settings"]
