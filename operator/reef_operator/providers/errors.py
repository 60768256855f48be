"""What can go wrong with a VM provider, in words no provider owns.

Each provider converts its own failures into these at its boundary (the Vers
provider its platform's HTTP answers and SSH failures, the Local provider its
files and processes), so the code above decides by family, never by platform:

    ProviderError
    ├── NeedsAttention      retrying will not help until a person acts
    │   ├── BadRequest          the request is wrong (a size, an unknown source)
    │   ├── Unauthorized        the credentials are missing or invalid
    │   ├── Forbidden           not allowed, or a limit (a quota) is reached
    │   └── HostKeyMismatch     the VM's endpoint is not the one pinned on first contact
    ├── Transient           the platform or the VM failed this time; later may work
    │   ├── RateLimited         too many requests, still so after the provider's retries
    │   ├── ServerError         the platform failed, still so after the retries
    │   ├── Timeout             no answer in time, still so after the retries
    │   ├── ConnectionFailed    the platform could not be reached
    │   └── ShellError          the VM's shell could not be reached or a command not run
    ├── NotFound            no such VM or snapshot
    ├── Conflict            the VM's state does not allow this now (for example sleeping)
    └── OutcomeUnknown      a create may or may not have happened

`OutcomeUnknown` is a family of its own because it is retried only after a
look: the caller asks `Provider.find` before creating again, never blindly.

Every error carries a message that is safe to log and to put in a Kubernetes
condition, with where it happened (an endpoint or operation, never a URL with
ids or a header) and the platform's status code when there is one. Metrics
label an error by its class name, so the names above are a bounded vocabulary.
"""

from __future__ import annotations

__all__ = [
    "BadRequest",
    "Conflict",
    "ConnectionFailed",
    "Forbidden",
    "HostKeyMismatch",
    "Located",
    "NeedsAttention",
    "NotFound",
    "OutcomeUnknown",
    "ProviderError",
    "RateLimited",
    "ServerError",
    "ShellError",
    "Timeout",
    "Transient",
    "Unauthorized",
]


class Located(Exception):
    """An error that says where it happened: a message, an endpoint or operation, and the
    platform's status code when there is one. The base of the provider errors and of
    each platform's own errors inside its provider."""

    def __init__(self, message: str, *, endpoint: str = "", status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.endpoint = endpoint
        self.status = status

    def __str__(self) -> str:
        where = f"{self.endpoint}: " if self.endpoint else ""
        code = f" (HTTP {self.status})" if self.status is not None else ""
        return f"{where}{self.message}{code}"


class ProviderError(Located):
    """Base of every error a provider raises."""


class NeedsAttention(ProviderError):
    """Retrying will not help: the configuration, the spec or the VM needs a person."""


class Transient(ProviderError):
    """The platform or the VM failed this time; the same call may succeed later."""


class BadRequest(NeedsAttention):
    """The request is wrong (a size, an image or tag the provider does not know how to use)."""


class Unauthorized(NeedsAttention):
    """The provider's credentials are missing or invalid."""


class Forbidden(NeedsAttention):
    """Not allowed, or a limit is reached."""


class HostKeyMismatch(NeedsAttention):
    """The VM's endpoint presented an identity other than the one pinned on first contact."""


class RateLimited(Transient):
    """Too many requests, still so after the provider's own retries."""


class ServerError(Transient):
    """The platform failed, still so after the provider's own retries."""


class Timeout(Transient):
    """No answer in time, still so after the provider's own retries."""


class ConnectionFailed(Transient):
    """The platform could not be reached, still so after the provider's own retries."""


class ShellError(Transient):
    """The VM's shell could not be reached, or a command could not be run (timed out,
    connection lost, VM paused). A command that ran and failed is a result, not this."""


class NotFound(ProviderError):
    """No such VM or snapshot."""


class Conflict(ProviderError):
    """The VM is in a state that does not allow this now (for example sleeping)."""


class OutcomeUnknown(ProviderError):
    """A create was sent but its answer was lost: a VM (or snapshot) may or may not exist.

    Never retried blindly: look the VM up (`Provider.find`) before creating again.
    """
