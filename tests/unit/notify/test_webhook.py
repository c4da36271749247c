"""The signed webhook adapter: the signature a receiver can check, failures without secrets."""

from __future__ import annotations

import pytest

from obt.notify import DeliveryFailed, Notice, Target
from obt.notify.webhook import WebhookNotifier, signature
from tests.support.processes import free_port
from tests.support.receiver import Receiver, verify


def test_the_signature_is_hmac_sha256_of_time_dot_body() -> None:
    header = signature("k", 1_700_000_000, b'{"a":1}')
    assert header.startswith("t=1700000000,v1=")
    assert verify("k", header, b'{"a":1}')
    assert not verify("other", header, b'{"a":1}')
    assert not verify("k", header, b'{"a":2}')


NOTICE = Notice({"kind": "fired", "dedupe_key": "r/c/1", "client_id": "c", "status": "offline"})


async def test_a_receiver_verifies_what_the_notifier_sends() -> None:
    receiver = Receiver("s3cret")
    receiver.start()
    notifier = WebhookNotifier(unix_time=lambda: 1_700_000_000.0)
    try:
        await notifier.send(Target("webhook", receiver.webhook_url, "s3cret"), NOTICE)
        with pytest.raises(DeliveryFailed, match="HTTP 401"):
            await notifier.send(Target("webhook", receiver.webhook_url, "wrong"), NOTICE)
    finally:
        await notifier.close()
        receiver.stop()
    assert dict(receiver.webhooks) == {"r/c/1": 1}
    assert receiver.bodies["r/c/1"]["status"] == "offline"


async def test_a_refused_connection_is_a_failure_that_names_no_token() -> None:
    notifier = WebhookNotifier()
    url = f"http://127.0.0.1:{free_port()}/services/TOKEN123"
    try:
        with pytest.raises(DeliveryFailed) as failed:
            await notifier.send(Target("webhook", url, "s"), NOTICE)
    finally:
        await notifier.close()
    assert "TOKEN123" not in str(failed.value)
