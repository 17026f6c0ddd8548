"""Old import path of the instance database source, kept for scripts written against it.

Import from :mod:`starcompactor.instances` instead; this module will be dropped in a later release.
"""

from .instances import DatabaseSource, DbSettings, resolve_settings

__all__ = ["DatabaseSource", "DbSettings", "resolve_settings"]
