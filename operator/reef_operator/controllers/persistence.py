"""What kopf keeps on our objects between its handling cycles: as little as it can.

Every annotation kopf writes is one more write per object on an apiserver shared
by thousands of them, and our controllers need neither of kopf's two records.
"""

from __future__ import annotations

from typing import Any

import kopf

from reef_operator.constants import GROUP


class NoDiffBase(kopf.DiffBaseStorage):
    """Keep no last-handled configuration on our objects.

    The controllers are level-triggered (they never ask kopf what changed), so
    the annotation kopf would otherwise rewrite after every spec, label or
    annotation change is pure write traffic.
    """

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


class MemoryProgress(kopf.ProgressStorage):
    """Handler progress (the VMNode deletion handler's retries) in this process only.

    In annotations, a deletion that succeeds at once costs two writes (the progress
    marker, then the finalizer in a later cycle); in memory, one. The deletion
    handler is idempotent, so a restarted operator forgetting a retry count only
    means it tries again from the first delay. A delayed retry still needs an event
    to wake kopf: that touch stays an annotation.
    """

    def __init__(self) -> None:
        super().__init__()
        self._records: dict[tuple[str, str], kopf.ProgressRecord] = {}
        self._touches = kopf.AnnotationsProgressStorage(prefix=GROUP)

    def fetch(self, *, key: Any, body: kopf.Body) -> kopf.ProgressRecord | None:
        return self._records.get((str(body.metadata.uid), str(key)))

    def store(self, *, key: Any, record: kopf.ProgressRecord, body: kopf.Body,
              patch: kopf.Patch) -> None:
        self._records[(str(body.metadata.uid), str(key))] = record

    def purge(self, *, key: Any, body: kopf.Body, patch: kopf.Patch) -> None:
        self._records.pop((str(body.metadata.uid), str(key)), None)

    def touch(self, *, body: kopf.Body, patch: kopf.Patch, value: str | None) -> None:
        self._touches.touch(body=body, patch=patch, value=value)

    def clear(self, *, essence: kopf.BodyEssence) -> kopf.BodyEssence:
        return self._touches.clear(essence=essence)
