"""Serialisation at the store edge: events and documents to JSON and back, upcasting on read.

Every adapter decodes stored rows through `EventCodec.decode`, so upcasters apply on every
read path (aggregates, projectors, rebuild, audit API) and a corrupt row becomes a
`CorruptEvent` naming its position instead of a crash somewhere downstream.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from obt.errors import CorruptEvent
from obt.store.ports import RecordedEvent

# (type, from_schema_version) -> function turning that version's data into the next one's.
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


def dumps(value: Mapping[str, Any]) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def loads_object(text: str | bytes) -> dict[str, Any]:
    value = orjson.loads(text)
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object, got {type(value).__name__}")
    return value


def payload_fingerprint(
    type_: str, schema_version: int, data: Mapping[str, Any], metadata: Mapping[str, Any]
) -> str:
    """What must match for a re-sent event id to count as the same event."""
    return dumps({"t": type_, "v": schema_version, "d": data, "m": metadata})


class EventCodec:
    def __init__(
        self,
        upcasters: Mapping[tuple[str, int], Upcaster] | None = None,
        latest_versions: Mapping[str, int] | None = None,
    ) -> None:
        self._upcasters = dict(upcasters or {})
        self._latest = dict(latest_versions or {})

    def decode(
        self,
        *,
        position: int,
        id: str,
        stream: str,
        version: int,
        type: str,
        schema_version: int,
        data: str | bytes | Mapping[str, Any],
        metadata: str | bytes | Mapping[str, Any],
        recorded_at: datetime | float | str,
    ) -> RecordedEvent:
        try:
            data_obj = dict(data) if isinstance(data, Mapping) else loads_object(data)
            if metadata == "{}":  # most events: skip the parser
                meta_obj: dict[str, Any] = {}
            elif isinstance(metadata, Mapping):
                meta_obj = dict(metadata)
            else:
                meta_obj = loads_object(metadata)
            if isinstance(recorded_at, float):
                when = datetime.fromtimestamp(recorded_at, tz=UTC)
            else:
                when = to_datetime(recorded_at)
            if self._latest.get(type, schema_version) != schema_version:
                data_obj, schema_version = self._upcast(type, schema_version, data_obj)
        except CorruptEvent:
            raise
        except Exception as exc:  # any decoding failure of stored bytes is corruption
            raise CorruptEvent(position, f"{type}: {exc}") from None
        return RecordedEvent(
            position=position,
            id=id,
            stream=stream,
            version=version,
            type=type,
            schema_version=schema_version,
            data=data_obj,
            metadata=meta_obj,
            recorded_at=when,
        )

    def _upcast(
        self, type_: str, schema_version: int, data: dict[str, Any]
    ) -> tuple[dict[str, Any], int]:
        latest = self._latest.get(type_, schema_version)
        if schema_version > latest:
            raise ValueError(
                f"schema_version {schema_version} is newer than this server knows ({latest})"
            )
        while schema_version < latest:
            step = self._upcasters.get((type_, schema_version))
            if step is None:
                raise ValueError(f"no upcaster from schema_version {schema_version}")
            data = step(data)
            schema_version += 1
        return data, schema_version


def to_datetime(value: datetime | float | str) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, tz=UTC)
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def to_timestamp(value: datetime) -> float:
    return value.timestamp()
