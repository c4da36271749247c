"""Semantics every adapter shares: expected-version checks, re-sent events, read-model ops.

Keeping them in one place is what lets the contract suite hold all adapters to one behaviour.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from obt.errors import DuplicateEventId, WrongExpectedVersion
from obt.store.codec import dumps, loads_object
from obt.store.ports import Doc, Increment, NewEvent, Put


@dataclass(frozen=True, slots=True)
class EncodedEvent:
    """A NewEvent with its payload serialised once, as it is stored and compared."""

    id: str
    type: str
    schema_version: int
    data: str
    metadata: str

    @classmethod
    def of(cls, event: NewEvent) -> EncodedEvent:
        return cls(
            event.id, event.type, event.schema_version, dumps(event.data), dumps(event.metadata)
        )

    def same_payload(self, stream: str, stored: StoredIdentity) -> bool:
        return (
            stored.stream == stream
            and stored.type == self.type
            and stored.schema_version == self.schema_version
            and stored.data == self.data
            and stored.metadata == self.metadata
        )


@dataclass(frozen=True, slots=True)
class StoredIdentity:
    """What is compared when an event id arrives a second time."""

    stream: str
    version: int
    type: str
    schema_version: int
    data: str
    metadata: str


def check_expected(stream: str, expected: int | None, actual: int) -> None:
    if expected is not None and expected != actual:
        raise WrongExpectedVersion(stream, expected, actual)


def duplicate_ids_in(events: Sequence[EncodedEvent]) -> None:
    seen: set[str] = set()
    for event in events:
        if event.id in seen:
            raise DuplicateEventId(event.id)
        seen.add(event.id)


def resend_version(
    stream: str, events: Sequence[EncodedEvent], stored: Mapping[str, StoredIdentity]
) -> int | None:
    """None when no id is stored yet; else the version of the re-sent batch.

    A batch counts as re-sent only when every id is stored with the same stream and payload;
    any other overlap (another payload, or only some ids stored) is a DuplicateEventId.
    """
    if not stored:
        return None
    for event in events:
        found = stored.get(event.id)
        if found is None or not event.same_payload(stream, found):
            culprit = event.id if found is not None else next(iter(stored))
            raise DuplicateEventId(culprit)
    return max(found.version for found in stored.values())


def normalise(doc: Mapping[str, Any]) -> Doc:
    """The document as every adapter stores it: through JSON, so all return the same values."""
    return loads_object(dumps(doc))


def apply_upsert(current: Doc | None, op: Put | Increment) -> Doc:
    """The document after `op`; `current` is not modified."""
    if isinstance(op, Put):
        return normalise(op.doc)
    doc = normalise(op.base) if current is None else dict(current)
    for name, amount in op.amounts.items():
        doc[name] = doc.get(name, 0) + amount
    return doc


def indexed_fields(
    op: Put | Increment, current: tuple[str | None, float | None] | None
) -> tuple[str | None, float | None]:
    """The (client_id, sort) a document keeps after `op`.

    Put replaces them; Increment sets the ones it names and keeps the others.
    """
    if isinstance(op, Put) or current is None:
        return op.client_id, op.sort
    return (
        op.client_id if op.client_id is not None else current[0],
        op.sort if op.sort is not None else current[1],
    )
