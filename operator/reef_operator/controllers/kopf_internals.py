"""The one place the operator reaches into kopf's private internals.

kopf builds the webhooks of the ValidatingWebhookConfiguration it manages with
`build_webhooks` and has no field for a namespaceSelector; `reshape_webhooks` passes
what it builds through a function of ours (the delegates' fail-closed webhook selects
only the namespaces that enable delegation: controllers/delegation_admission.py).

kopf gives every daemon a finalizer so it can stop the daemon before its object
goes, and has no public switch to leave it off. Where the finalizer is two writes
per object for nothing, `without_finalizer` re-registers the daemon without it.
That touches kopf's private registry (`OperatorRegistry._spawning._handlers`,
frozen `DaemonHandler` dataclasses with a `requires_finalizer` field), so kopf is
pinned to `KOPF_VERSION` and tests/unit/test_kopf_internals.py asks kopf itself
whether the object still needs a finalizer: a kopf upgrade that moves any of this
fails there, not in a cluster.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import kopf

KOPF_VERSION = "1.45.2"  # the version this module was written against (pyproject pins it)


def without_finalizer(daemon: Callable[..., Any],
                      registry: kopf.OperatorRegistry | None = None) -> None:
    """Run `daemon` (already registered with @kopf.daemon) without kopf's finalizer.

    Only for objects whose end needs nothing from the daemon: its loop must end by
    itself on the DELETED event, since kopf no longer holds the object for it.
    """
    spawning = (registry or kopf.get_default_registry())._spawning
    handlers = list(spawning._handlers)
    found = [i for i, handler in enumerate(handlers) if handler.fn is daemon]
    if not found:
        raise LookupError(f"{daemon.__qualname__} is not a registered kopf daemon")
    for i in found:
        handlers[i] = dataclasses.replace(handlers[i], requires_finalizer=False)
    spawning._handlers = handlers


Webhooks = list[dict[str, Any]]


def reshape_webhooks(reshape: Callable[[Webhooks], Webhooks]) -> None:
    """Have kopf's managed webhook configuration pass through `reshape` (idempotent)."""
    from kopf._core.engines import admission as engine

    built: Callable[..., Webhooks] = getattr(engine.build_webhooks, "__wrapped__",
                                             engine.build_webhooks)

    @functools.wraps(built)
    def build(*args: Any, **kwargs: Any) -> Webhooks:
        return reshape(built(*args, **kwargs))

    engine.build_webhooks = build
