"""Nova's databases or API → instance events: ``db`` (the SPEC §1.3 join over every cell, streamed),
``merge`` (cells in time order), ``workers`` (worker processes decoding, masking and formatting rows),
``api`` (openstacksdk, with ``openrc`` files read without a shell), ``audit`` (the ``openstack_audit``
log's final rows), ``trace`` (the whole run:
:func:`make_instance_trace`).
"""

from __future__ import annotations

from ..server.settings import DbSettings, resolve_settings
from .audit import AuditInstanceSource
from .db import DatabaseSource
from .trace import make_instance_trace

__all__ = ["AuditInstanceSource", "DatabaseSource", "DbSettings", "make_instance_trace", "resolve_settings"]
