import io
import json
import logging

from agent.logs import configure_logging, get_logger, log_event


def test_key_value_lines_quote_what_needs_quoting() -> None:
    stream = io.StringIO()
    configure_logging(verbose=False, fmt="kv", stream=stream)
    log_event(get_logger("t"), logging.INFO, "ollama_unavailable", reason="HTTP 500", ok=False)
    log_event(get_logger("t"), logging.DEBUG, "heartbeat", seq=1)
    line = stream.getvalue().strip()
    assert "\n" not in line
    assert 'level=info event=ollama_unavailable reason="HTTP 500" ok=false' in line


def test_json_lines_and_verbose() -> None:
    stream = io.StringIO()
    configure_logging(verbose=True, fmt="json", stream=stream)
    log_event(get_logger("t"), logging.DEBUG, "heartbeat", seq=3)
    record = json.loads(stream.getvalue())
    assert (record["level"], record["event"], record["seq"]) == ("debug", "heartbeat", 3)
