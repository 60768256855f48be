"""Names shared by the whole operator: API group, labels, annotations, finalizer."""

from typing import Final

GROUP: Final = "reef.vers.sh"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
CATEGORY: Final = "reef"

FINALIZER: Final = f"{GROUP}/cleanup"

LABEL_CATEGORY: Final = f"{GROUP}/category"
LABEL_PARENT: Final = f"{GROUP}/parent"
LABEL_ROOT: Final = f"{GROUP}/root"
LABEL_LIEUTENANT: Final = f"{GROUP}/lieutenant"
LABEL_TASK: Final = f"{GROUP}/task"
# A TaskRecord's UTC day of completion (YYYY-MM-DD): a namespace's spending of the day is
# read from that day's records alone.
LABEL_COMPLETED_DAY: Final = f"{GROUP}/completed-day"
# On a fork's VMNode: the lieutenant it forked. Its parentRef places it under the source's
# node in the tree, but the source owns nothing of it: no ownerReference (deleting the source
# leaves the fork), no pause passed down.
LABEL_FORKED_FROM: Final = f"{GROUP}/forked-from"
LABEL_PROFILE: Final = f"{GROUP}/profile"
LABEL_PROFILE_HASH: Final = f"{GROUP}/profile-hash"
LABEL_PROVIDER: Final = f"{GROUP}/provider"
# A Secret a lieutenant's credentialsSecretRef may name must carry this label set to "true":
# whoever can label a Secret can read it, so the label is its owner's consent.
LABEL_AGENT_CREDENTIALS: Final = f"{GROUP}/agent-credentials"
# A namespace whose admin lets lieutenants in it lead their own (spec.delegation) carries
# this label with the value "enabled"; the delegates' admission webhook selects it.
LABEL_DELEGATION: Final = f"{GROUP}/delegation"
DELEGATION_ENABLED: Final = "enabled"
# Marks the ServiceAccount, Role, RoleBinding and token Secret of a delegating lieutenant.
LABEL_DELEGATE_OF: Final = f"{GROUP}/delegate-of"
# A warm member of a VMPool (the pool's name); and a node whose VM was taken from one.
LABEL_POOL: Final = f"{GROUP}/pool"
LABEL_FROM_POOL: Final = f"{GROUP}/from-pool"

# When the node's current VM was first requested: written before the create is sent and
# kept while the node has that VM (removed when the VM is released on purpose).
ANNOTATION_VM_REQUESTED: Final = f"{GROUP}/vm-requested-at"
# The uid of the VMNode that claimed a pool member (written with the member's
# resourceVersion, so one claim wins); the member is inert from then on.
ANNOTATION_CLAIMED_BY: Final = f"{GROUP}/claimed-by"
ANNOTATION_PAUSED: Final = f"{GROUP}/paused"
ANNOTATION_RECONCILE_REQUESTED_AT: Final = f"{GROUP}/reconcile-requested-at"
# A checkpoint asked of a lieutenant, one annotation per request (the value: when it was
# asked): `checkpoint.reef.vers.sh/<label>` by `kubectl reef checkpoint`, and
# `fork.reef.vers.sh/<fork>` by the operator for a fork. The operator takes the checkpoint,
# records it in status.checkpoints, then removes the annotation.
CHECKPOINT_REQUEST_PREFIX: Final = f"checkpoint.{GROUP}/"
FORK_REQUEST_PREFIX: Final = f"fork.{GROUP}/"
# On a lieutenant's VMNode: the commits of the lieutenant's checkpoints (comma-separated),
# deleted on the platform when the node is (its finalizer holds while a fork's VM still
# uses one), so none is lost track of once the lieutenant's status is gone.
ANNOTATION_CHECKPOINT_COMMITS: Final = f"{GROUP}/checkpoint-commits"

# Where the operator runs by default, and its identity.
OPERATOR_NAMESPACE: Final = "reef-system"
OPERATOR_SERVICE_ACCOUNT: Final = "reef-operator"

# A Kubernetes object name (RFC 1123 subdomain): the CRD schemas and the configuration
# (a BootProfile name) check names with it.
DNS_SUBDOMAIN: Final = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
