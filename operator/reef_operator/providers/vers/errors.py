"""One exception hierarchy for everything the Vers platform API can answer.

Each error carries the server's own message, the HTTP status and the endpoint
(method and path template, never the full URL with ids or any header), so it
is safe to log and to put in a Kubernetes condition.

These errors stay inside providers/vers: `VersProvider` converts them with
`as_provider_errors()` into the provider errors the rest of the operator knows
(providers/errors.py), keeping message, endpoint and status.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from reef_operator.providers import errors as provider


class VersError(provider.Located):
    """Base of every Vers platform error; `as_provider_errors` converts them at the
    provider's boundary, so none leaves providers/vers."""


class BadRequest(VersError):
    """400: the request is wrong; retrying it will not help."""


class Unauthorized(VersError):
    """401: the API key is missing or invalid."""


class Forbidden(VersError):
    """403: not allowed, or a limit is reached (also the answer to deleting an unknown VM)."""


class NotFound(VersError):
    """404: no such VM, commit or image."""


class Conflict(VersError):
    """409: the VM is in a state that does not allow this (for example sleeping)."""


class RateLimited(VersError):
    """429: too many requests, still so after the retries."""


class ServerError(VersError):
    """5xx: the platform failed, still so after the retries."""


class Timeout(VersError):
    """No answer in time, still so after the retries."""


class ConnectionFailed(VersError):
    """The platform could not be reached, still so after the retries."""


class OutcomeUnknown(VersError):
    """A create was sent but its answer was lost: a VM (or commit) may or may not exist.

    Never retried blindly: look the VM up (by label) before creating again.
    """


_BY_STATUS: dict[int, type[VersError]] = {
    400: BadRequest, 401: Unauthorized, 403: Forbidden, 404: NotFound, 409: Conflict,
    422: BadRequest, 429: RateLimited,
}


def error_for_status(status: int, message: str, endpoint: str) -> VersError:
    cls = _BY_STATUS.get(status) or (ServerError if status >= 500 else VersError)
    return cls(message, status=status, endpoint=endpoint)


# What each Vers error is to the rest of the operator; a subclass without an entry
# takes its nearest base's.
_AS_PROVIDER_ERROR: dict[type[VersError], type[provider.ProviderError]] = {
    VersError: provider.ProviderError,
    BadRequest: provider.BadRequest,
    Unauthorized: provider.Unauthorized,
    Forbidden: provider.Forbidden,
    NotFound: provider.NotFound,
    Conflict: provider.Conflict,
    RateLimited: provider.RateLimited,
    ServerError: provider.ServerError,
    Timeout: provider.Timeout,
    ConnectionFailed: provider.ConnectionFailed,
    OutcomeUnknown: provider.OutcomeUnknown,
}


def as_provider_error(error: VersError) -> provider.ProviderError:
    """The provider error that means what `error` means, with its message, endpoint, status."""
    kind = next(_AS_PROVIDER_ERROR[cls] for cls in type(error).__mro__
                if cls in _AS_PROVIDER_ERROR)
    return kind(error.message, endpoint=error.endpoint, status=error.status)


@contextlib.contextmanager
def as_provider_errors() -> Iterator[None]:
    """Raise every Vers error from inside the block as its provider error."""
    try:
        yield
    except VersError as error:
        raise as_provider_error(error) from error
