"""What the operator's own annotations on an object ask of it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reef_operator.constants import ANNOTATION_PAUSED


def reconciliation_paused(metadata: Mapping[str, Any] | None) -> bool:
    """A management pause (`reef.vers.sh/paused`, any value): the operator leaves the
    object as it is, acts on none of its changes and writes no status until the
    annotation goes (GitOps tools show it Suspended)."""
    return ANNOTATION_PAUSED in ((metadata or {}).get("annotations") or {})
