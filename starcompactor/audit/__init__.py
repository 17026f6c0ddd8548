"""The ``openstack_audit`` log (SPEC §1.4) read from a dump, a Parquet export or a live server, as the same
typed rows (:class:`~starcompactor.audit.records.AuditRow`) in an
:class:`~starcompactor.audit.records.AuditLog`.

The readers are imported from their modules (:mod:`.dumps`, :mod:`.parquet`, :mod:`.server`): the Parquet
one needs pyarrow, the server one PyMySQL, and neither is imported with this package.
"""

from .records import AuditLog, AuditRow, BackfillRun, TableLayout

__all__ = ["AuditLog", "AuditRow", "BackfillRun", "TableLayout"]
