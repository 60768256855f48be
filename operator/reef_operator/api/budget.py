"""Byte budgets of one Lieutenant object, and how its bytes are counted.

The whole object as the apiserver stores it (spec, status and metadata, managedFields
and a `kubectl apply` last-applied-configuration annotation included) stays under
OBJECT_BUDGET, 512 KiB: a third of etcd's default 1.5 MiB request limit, so a
lieutenant that lives for months never reaches the size at which etcd refuses a write
and the session could take no more tasks, and a watch or list of many lieutenants
stays cheap.

Measured against the real apiserver (the local control plane, Kubernetes 1.20) with
1000 tasks of about 30 bytes each (names `task-0000`..):

  ============================  ==========  ============  =============
  how the spec was written       spec.tasks  last-applied  managedFields
  ============================  ==========  ============  =============
  kubectl apply (client-side)   72,891 B    65,125 B      77,371 B
  kubectl apply --server-side   72,891 B    —             65,182 B
  kubectl create                72,891 B    —             77,264 B
  ============================  ==========  ============  =============

  and a status.tasks of the same 1000 names (name and phase, 41,011 B) written by the
  operator as a map list keyed by name added 63,196 B more managedFields (one key per
  task); status.tasks is an atomic list (written whole by the operator alone), which
  costs one `f:tasks` entry whatever its length.

So the metadata spec.tasks brings along is about its own size again (the
last-applied annotation is a copy of what was applied, slightly escaped) plus about
name + 58 bytes of managedFields per task. The split:

- SPEC_TASKS_BUDGET, 96 KiB of spec.tasks (the admission webhook refuses more and
  asks the user to prune finished tasks);
- STATUS_BUDGET, 160 KiB of status: every status write is measured and trimmed to it
  (lieutenants/trimming.py); within it HISTORY_BUDGET bounds status.history;
- METADATA_HEADROOM, the remaining 256 KiB: the last-applied copy and managedFields that
  come with spec.tasks, the rest of the spec and the object's own metadata.

Checked against the real apiserver (tests/integration/test_object_budget_split.py): a
spec.tasks at its share written with `kubectl apply`, with a status at its share:

  ==============================================  ========  ========  =========  ========
  spec.tasks at 96 KiB                             object    status    metadata   margin
  ==============================================  ========  ========  =========  ========
  936 tasks, 63-character names (most keys)        493,304   161,591   233,253    30,984
  24 tasks of 2000 quotes (escaped twice)          454,232   160,463   196,413    70,056
  ==============================================  ========  ========  =========  ========

  (the first, with status.tasks a map list: 615,722 bytes, over the budget).

The margin is what the rest of the spec may take (role, model, env, instructions): a
spec whose instructions and env approach their schema limits (64 KiB, 64 x 4 KiB) is
not covered and is not expected of a lieutenant.

Bytes are counted as the apiserver stores them: compact JSON in UTF-8 (a multi-byte
character counts its bytes), with Go's escaping of `<`, `>` and `&` (six bytes each)
and of U+2028/U+2029, so an answer full of code is not undercounted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

OBJECT_BUDGET = 512 * 1024
SPEC_TASKS_BUDGET = 96 * 1024
STATUS_BUDGET = 160 * 1024
METADATA_HEADROOM = OBJECT_BUDGET - SPEC_TASKS_BUDGET - STATUS_BUDGET

# Within the status: the answers status.history keeps, and how many finished tasks no
# longer in the spec status.tasks still names (so a name pruned a moment ago is still
# known and a re-added one is refused; see lieutenants/ledger.py).
HISTORY_BUDGET = 80 * 1024
FINISHED_WINDOW = 100

# Go's encoding/json writes these as \u003c, \u003e, \u0026, \u2028, \u2029: the extra bytes
# each costs over its UTF-8 form.
_GO_ESCAPES = {"<": 5, ">": 5, "&": 5, "\u2028": 3, "\u2029": 3}


def stored_bytes(value: Any) -> int:
    """Bytes `value` takes in the object as the apiserver stores it (compact JSON)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return len(text.encode()) + sum(text.count(c) * extra for c, extra in _GO_ESCAPES.items())


def spec_tasks_bytes(spec: Mapping[str, Any]) -> int:
    """Bytes of spec.tasks, held against SPEC_TASKS_BUDGET."""
    return stored_bytes(list(spec.get("tasks") or []))
