"""What making a trace returns, and how it reports progress: the same for the machine and instance traces."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional


@dataclass(frozen=True)
class Progress:
    """How far a run is: ``done`` of ``total`` units (dumps, or events when the total is unknown), and
    input bytes read. Passed, cumulative, to an ``on_progress`` callback after each step."""

    unit: str
    done: int
    total: Optional[int] = None
    bytes_done: int = 0
    bytes_total: Optional[int] = None


#: ``on_progress`` callbacks of :func:`~starcompactor.machines.make_machine_trace` and
#: :func:`~starcompactor.instances.make_instance_trace`.
ProgressCallback = Callable[[Progress], None]


@dataclass
class TraceResult:
    """A written trace: where it went, its manifest (as written beside it), and its counts."""

    output: str
    manifest_path: Optional[str]
    manifest: Dict[str, Any] = field(default_factory=dict)

    @property
    def counts(self) -> Dict[str, int]:
        """Events by type."""
        return dict(self.manifest.get("counts") or {})

    @property
    def event_count(self) -> int:
        return int(self.manifest.get("events") or 0)
