"""Small named registries: the one shape every extension point has (decompressors, writers, listers,
executors). A new compression, output format or backup store is one :meth:`Registry.register` call.

Registries are plain dicts underneath, read at call time, so a name registered later is seen at once.
"""

from __future__ import annotations

from typing import Dict, Generic, Iterator, Optional, Tuple, TypeVar

from .errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Entries by name. ``what`` names the kind in messages (``"output format"``)."""

    def __init__(self, what: str, hint: str = "") -> None:
        self.what = what
        self.hint = hint  #: appended to the unknown-name message, e.g. how to get more entries
        self._entries: Dict[str, T] = {}

    def register(self, name: str, entry: T, *, replace: bool = False) -> T:
        """Add ``entry`` under ``name`` (a lowercase word); an existing name needs ``replace=True``."""
        if not name or name != name.strip() or name.lower() != name:
            raise ValueError(f"{self.what} name must be a non-empty lowercase word, not {name!r}")
        if name in self._entries and not replace:
            raise ValueError(f"{self.what} {name!r} is already registered")
        self._entries[name] = entry
        return entry

    def get(self, name: str) -> T:
        """The entry of ``name``; an unknown name is a :class:`ConfigError` listing the known ones."""
        try:
            return self._entries[name]
        except KeyError:
            hint = f"; {self.hint}" if self.hint else ""
            raise ConfigError(
                f"unknown {self.what} {name!r} (choose from {', '.join(self.names())}{hint})"
            ) from None

    def find(self, name: str) -> Optional[T]:
        return self._entries.get(name)

    def names(self) -> Tuple[str, ...]:
        """Registered names, in registration order."""
        return tuple(self._entries)

    def items(self) -> Iterator[Tuple[str, T]]:
        return iter(tuple(self._entries.items()))

    def __contains__(self, name: object) -> bool:
        return name in self._entries
