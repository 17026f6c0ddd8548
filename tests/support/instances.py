"""Helpers shared by the instance-source tests."""

from __future__ import annotations


def as_tuples(events):
    """Instance events as plain tuples, for exact comparisons in the instance-source tests."""
    return [
        (
            e.instance_uuid,
            e.event,
            e.start_time,
            e.finish_time,
            e.result,
            e.instance_name,
            e.user_id,
            e.project_id,
            e.host,
            e.properties,
        )
        for e in events
    ]
