"""What a live subscriber can ask to watch, and the index that lets it resume."""

from __future__ import annotations

import pytest

from obt.live_changes import ChangeIndex, InvalidWatch, Watch
from obt.projections.base import Change


def test_no_watch_is_the_plain_feed() -> None:
    plain = Watch.parse([])
    assert plain == Watch.everything()
    assert plain.wants("client", "x", None) and plain.wants("model", "m", None)
    assert plain.wants("timeline", "t", "x") and not plain.counts


def test_items_may_be_repeated_or_comma_separated() -> None:
    watch = Watch.parse(["client:a,client:b", "timeline:a", " counts ", "models"])
    assert watch.clients == {"a", "b"} and watch.timeline_clients == {"a"}
    assert watch.counts and watch.models and not watch.all_clients
    assert watch.wants("client", "a", None) and not watch.wants("client", "c", None)
    assert watch.wants("timeline", "k", "a") and not watch.wants("timeline", "k", "b")
    assert watch.may_want("timeline", "k")
    assert not Watch.parse(["client:a"]).may_want("timeline", "k")


@pytest.mark.parametrize(
    "item",
    ["everything", "client:", "client:bad/id", "client:" + "x" * 65, "models:x", "clients:a"],
)
def test_unknown_items_are_refused(item: str) -> None:
    with pytest.raises(InvalidWatch, match="watch item"):
        Watch.parse([item])


def test_too_many_items_are_refused() -> None:
    with pytest.raises(InvalidWatch, match="at most"):
        Watch.parse([",".join(f"client:c{i}" for i in range(1001))])


def test_the_index_keeps_the_latest_change_per_document_and_forgets_the_oldest() -> None:
    index = ChangeIndex(capacity=3)
    assert not index.covers(0)  # nothing known before begin
    index.begin(10)
    index.add([Change("timeline", "t11", 11), Change("client", "a", 11)])
    index.add([Change("client", "b", 12)])
    index.add([Change("client", "a", 13)])
    assert [(p.key, p.position) for p in index.since(10)] == [("t11", 11), ("b", 12), ("a", 13)]
    assert [p.key for p in index.since(12)] == ["a"]
    assert index.covers(10) and not index.covers(14)
    index.add([Change("model", "m", 14)])  # four documents: t11 is forgotten
    assert index.horizon == 11 and not index.covers(10) and index.covers(11)
    assert len(index) == 3
