"""Ollama's rules for model names, written once: the server checks a fleet operation's model with
them, and the agent (agent/model_names.py) checks again before it acts on a command.

`[host/][namespace/]model[:tag]`, as Ollama's types/model/name.go parses it: each part starts
with a letter, a digit or `_` and continues with those or `-` `_` `.`; a namespace has no `.`;
only the host may hold `:` (a port). The host is at most 350 bytes, the others 80. The agent
refuses a digest (`@sha256:...`) and a scheme (`https://`): a fleet operation names a model.
"""

from __future__ import annotations

import re

_PART = {
    "host": re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,349}"),
    "namespace": re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,79}"),
    "model": re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}"),
    "tag": re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}"),
}
MAX_NAME_LENGTH = 350 + 1 + 80 + 1 + 80 + 1 + 80


def is_valid_model_name(name: object) -> bool:
    if not isinstance(name, str) or not name or len(name) > MAX_NAME_LENGTH:
        return False
    if not name.isascii() or "@" in name or "://" in name:
        return False
    rest = name
    tag = None
    # "/" is not allowed in a tag, so a ":" after the last "/" starts the tag.
    if rest.rfind(":") > rest.rfind("/"):
        rest, tag = rest.rsplit(":", 1)
        if not _PART["tag"].fullmatch(tag):
            return False
    parts = rest.split("/")
    if len(parts) > 3:
        return False
    kinds = ("host", "namespace", "model")[-len(parts) :]
    return all(_PART[kind].fullmatch(part) for kind, part in zip(kinds, parts, strict=True))
