"""The operator's Kubernetes requests, counted from the apiserver's audit log.

Keys are "KIND VERB RESOURCE" (kind: write or read; resource with its subresource, as in
`write patch lieutenants/status`); only requests made as the operator's service account
count, so the benchmark's own reads and watches never inflate the figures.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from reef_operator.constants import OPERATOR_NAMESPACE, OPERATOR_SERVICE_ACCOUNT

OPERATOR_USER = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{OPERATOR_SERVICE_ACCOUNT}"
WRITE_VERBS = {"create", "update", "patch", "delete"}


def audit_counts(log: Path, since_line: int) -> tuple[Counter[str], int]:
    """The operator's requests after line `since_line`, and the line to count from next."""
    lines = log.read_text().splitlines()
    counts: Counter[str] = Counter()
    for line in lines[since_line:]:
        entry = json.loads(line)
        if entry.get("user", {}).get("username") != OPERATOR_USER:
            continue
        ref = entry.get("objectRef", {})
        resource = ref.get("resource", "?") + ("/" + ref["subresource"]
                                               if ref.get("subresource") else "")
        kind = "write" if entry["verb"] in WRITE_VERBS else "read"
        counts[f"{kind} {entry['verb']} {resource}"] += 1
    return counts, len(lines)
