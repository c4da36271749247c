"""Every error the agent raises on purpose, under one base.

AgentError
├── SettingsError        a setting is invalid; names the variable and the fix
├── StateError           the state directory cannot be read or written
├── OllamaError          Ollama answered badly or not at all
│   ├── OllamaUnavailable
│   └── OllamaRefused    a pull or delete failed (an error answer, or in-band in a stream)
└── ServerError          talking to the OBT server failed
    ├── ServerUnreachable    no answer (refused, reset, timed out)
    └── ServerRejected       an HTTP error answer
        ├── AuthRejected     401/403: the credential was refused
        ├── ClientUnknown    404: the server does not know this client
        └── ServerBusy       429/5xx: try again later (maybe after Retry-After)
    └── ChannelError     the WebSocket channel failed; HTTP still may work
        ├── ChannelRefused   the upgrade was refused (a proxy without WebSockets, 401, ...)
        └── ChannelLost      an open channel closed or stopped answering
"""

from __future__ import annotations


class AgentError(Exception):
    """Base of every error the agent raises on purpose."""


class SettingsError(AgentError):
    def __init__(self, variable: str, problem: str, fix: str) -> None:
        self.variable = variable
        self.problem = problem
        self.fix = fix
        super().__init__(f"{variable}: {problem}. Fix: {fix}")


class StateError(AgentError):
    pass


class OllamaError(AgentError):
    pass


class OllamaUnavailable(OllamaError):
    """Carries a short, human reason that ends up in the heartbeat's `ollama.error`."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class OllamaRefused(OllamaError):
    """A model operation Ollama answered with an error; `reason` is Ollama's own text."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class ServerError(AgentError):
    pass


class ServerUnreachable(ServerError):
    pass


class ServerRejected(ServerError):
    def __init__(self, status: int, code: str, detail: str) -> None:
        self.status = status
        self.code = code
        self.detail = detail
        super().__init__(f"HTTP {status} {code}: {detail}")


class AuthRejected(ServerRejected):
    pass


class ClientUnknown(ServerRejected):
    pass


class ServerBusy(ServerRejected):
    def __init__(self, status: int, code: str, detail: str, retry_after: float | None) -> None:
        super().__init__(status, code, detail)
        self.retry_after = retry_after


class ChannelError(ServerError):
    pass


class ChannelRefused(ChannelError):
    """`status` is the HTTP status that answered the upgrade, None when nothing answered."""

    def __init__(self, reason: str, status: int | None = None) -> None:
        self.status = status
        self.reason = reason
        super().__init__(reason)


class ChannelLost(ChannelError):
    """`code` is the WebSocket close code when the server closed the channel."""

    def __init__(self, reason: str, code: int | None = None) -> None:
        self.code = code
        self.reason = reason
        super().__init__(reason)
