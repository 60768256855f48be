"""What each kind's status conditions mean, and what the operator writes when.

The conventions are kstatus' (sigs.k8s.io/cli-utils/pkg/kstatus), which kpt, Flux and
`kubectl wait` style tooling read:

- `status.observedGeneration` and every condition's `observedGeneration` say which
  `metadata.generation` the operator acted on; a mismatch means "not looked at yet".
- `Reconciling` and `Stalled` are abnormal-true: absent or False means normal.
  Reconciling=True while the operator is still bringing the object to its spec;
  Stalled=True when it cannot get there without a person (it may keep retrying).
  The operator writes both on every pass, so neither is ever left over.
- `Ready` is the happy summary. It is False in two intended states (Paused, Destroyed);
  those are "current" for kstatus (Reconciling and Stalled both False).

`Ready`, `Reconciling` and `Stalled` (and a Lieutenant's `Degraded`) are written together
with one reason: the rows of `summaries` below. The same table says which Argo CD
health manifests/argocd/health.lua gives; the Argo CD test checks the two agree on the
real objects it makes. docs/crd-reference.md is rendered from this module.

The catalogue is also the only vocabulary the operator writes: kube/conditions.py checks
every condition it builds against `check` below, so a type, reason or status missing
here is an error where the condition is made, not a surprise in a GitOps tool.
"""

from __future__ import annotations

from dataclasses import dataclass

ANY_STALLED_REASON = "<any Stalled reason>"   # in `reasons`: every reason of a Stalled row
SUMMARY_TYPES = ("Ready", "Reconciling", "Stalled", "Degraded")


class UnknownCondition(ValueError):
    """A condition the catalogue does not describe (its type, reason or status)."""


@dataclass(frozen=True)
class ConditionType:
    name: str
    true_means: str
    reasons: tuple[tuple[str, str], ...] = ()   # (reason, when) for conditions outside summaries
    abnormal_true: bool = False


@dataclass(frozen=True)
class Summary:
    """One reason as written to Ready, Reconciling and Stalled at once."""

    reason: str
    ready: bool
    reconciling: bool | None       # None: left as it was
    stalled: bool | None
    health: str                    # Argo CD health from manifests/argocd/health.lua
    meaning: str
    when: str = ""                 # a qualifier when one reason has two rows
    phase: str = ""                # Lieutenant: status.phase alongside


@dataclass(frozen=True)
class KindConditions:
    types: tuple[ConditionType, ...]
    summaries: tuple[Summary, ...]
    notes: tuple[str, ...] = ()

    @property
    def type_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.types)

    def rows(self, reason: str) -> list[Summary]:
        return [s for s in self.summaries if s.reason == reason]

    def check(self, kind: str, type_: str, status: bool | None, reason: str) -> None:
        """Raise UnknownCondition unless the catalogue documents this condition.

        Ready, Reconciling, Stalled and Degraded take the reasons of the summary rows,
        with the status the row gives them (Degraded follows Stalled); every other type
        takes the reasons listed with it, with the status their `when` starts with.
        """
        if type_ not in self.type_names:
            raise UnknownCondition(f"{kind} has no condition type {type_!r}")
        if type_ in SUMMARY_TYPES:
            field = {"Ready": "ready", "Reconciling": "reconciling"}.get(type_, "stalled")
            if not any(getattr(row, field) is status for row in self.rows(reason)):
                raise UnknownCondition(f"{kind} condition {type_}={status} with reason "
                                       f"{reason!r} is not in the catalogue")
            return
        documented = next(t for t in self.types if t.name == type_).reasons
        stalled_reasons = {s.reason for s in self.summaries if s.stalled}
        for known, when in documented:
            if known == ANY_STALLED_REASON and reason in stalled_reasons and status is False:
                return
            if known == reason and when.split(":")[0] == str(status):
                return
        raise UnknownCondition(f"{kind} condition {type_}={status} with reason {reason!r} "
                               "is not in the catalogue")


READY = "The object is doing what its spec asks"
RECONCILING = ("The operator is still bringing the object to its spec (kstatus: InProgress)")
STALLED = ("The operator cannot bring the object to its spec without a person; it may keep "
           "retrying (kstatus: Failed)")

VMNODE_INVALID = (
    ("ProfileNotFound", "spec.profileRef names a BootProfile that does not exist"),
    ("ProfileInvalid", "the BootProfile is invalid (see its Valid condition)"),
    ("ProviderUnavailable", "the profile's provider is not configured in the operator "
                            "(for Vers: VERS_API_KEY)"),
    ("ProviderDisabled", "the profile's provider is disabled in the operator (Local, "
                         "REEF_LOCAL_PROVIDER: off by default in a pod, since its agents "
                         "would run with the operator's identity)"),
    ("SecretNotFound", "a Secret the profile's env refers to is missing; retried with backoff"),
    ("ParentNotFound", "spec.parentRef names a VMNode that does not exist"),
    ("ParentInOtherNamespace", "spec.parentRef.namespace is not the node's namespace"),
    ("ParentCycle", "the parentRef chain forms a cycle"),
    ("VmIdChanged", "spec.vmId was changed after it was set"),
    ("HostKeyMismatch", "the VM's SSH host key differs from the pinned one"),
    ("VMOwnedElsewhere", "the VM is labelled for another namespace or node, or is unlabelled "
                         "and this namespace is not in REEF_ADOPTION_NAMESPACES; it is left "
                         "untouched and deleting the node releases nothing"),
    ("CommitNotAllowed", "source.commitId is neither a commit a BootProfile names nor a "
                         "checkpoint of a node in the same namespace"),
    ("PolicyRefused", "the namespace's ReefPolicy does not allow the node's BootProfile or "
                      "its VM's size (a policy changed after the node was admitted); "
                      "checked before a VM is created or resumed, so a running VM is not "
                      "stopped"),
)

VMNODE = KindConditions(
    types=(
        ConditionType("Ready", f"{READY}: the VM runs, booted, and answers heartbeats."),
        ConditionType("Paused", "The VM is frozen with its memory intact (its own spec.state "
                      "or an ancestor's is Paused).",
                      (("Paused", "True: frozen"), ("Running", "False: running"),
                       ("Destroyed", "False: the VM was released"))),
        ConditionType("Booted", "The profile's boot script succeeded on this VM.",
                      (("BootScriptSucceeded", "True"),
                       ("BootScriptFailed", "False: the last run failed (output in message)"))),
        ConditionType("Alive", "The last heartbeat succeeded within "
                      "spec.heartbeat.staleAfterSeconds.",
                      (("HeartbeatOk", "True"), ("HeartbeatStale", "False: no answer for too "
                                                 "long"),
                       ("VMSleeping", "False: the platform put the VM to sleep"),
                       ("VMDead", "False: the platform reports the VM dead"),
                       ("VMNotFound", "False: the VM is gone from the platform"))),
        ConditionType("UpToDate", "The VM booted with the profile's current boot-script hash; "
                      "False does not make it unready (running VMs are not rebooted).",
                      (("ProfileCurrent", "True"),
                       ("ProfileChanged", "False: recreate the node to apply the new "
                                          "profile"))),
        ConditionType("Pooled", "The VM was taken from the VMPool spec.poolRef names "
                      "(written only on nodes with a poolRef).",
                      (("Claimed", "True: a warm member's VM, booted ahead"),
                       ("PoolEmpty", "False: the pool had no ready member (or does not "
                                     "exist): the node boots a VM of its own"))),
        ConditionType("Reconciling", f"{RECONCILING}: creating or booting the VM, or "
                      "retrying a platform error.", abnormal_true=True),
        ConditionType("Stalled", f"{STALLED}: a bad reference, a VM that is gone, dead or "
                      "unresponsive, a boot script that keeps failing.", abnormal_true=True),
    ),
    summaries=(
        Summary("Running", True, False, False, "Healthy", "the VM runs and answers"),
        Summary("Booting", False, True, False, "Progressing",
                "the platform is booting the VM, or its boot script runs"),
        Summary("PlatformError", False, True, False, "Progressing",
                "a platform call failed; retried with backoff"),
        Summary("BootScriptFailed", False, True, False, "Progressing",
                "the boot script failed; retried with backoff", when="attempts 1-2"),
        Summary("BootScriptFailed", False, False, True, "Degraded",
                "the boot script keeps failing; still retried with backoff",
                when="attempt 3 on"),
        Summary("Paused", False, False, False, "Suspended",
                "frozen as asked (its own spec or an ancestor's)"),
        Summary("Destroyed", False, False, False, "Healthy",
                "the VM was released as asked; the object is kept"),
        Summary("QuotaExceeded", False, True, False, "Progressing",
                "the namespace's ReefPolicy allows no more running VMs now; the VM is "
                "created (or resumed) when there is room"),
        Summary("VMSleeping", False, False, True, "Degraded",
                "the platform put the VM to sleep"),
        Summary("VMDead", False, False, True, "Degraded", "the platform reports the VM dead"),
        Summary("VMNotFound", False, False, True, "Degraded",
                "the VM is gone; set spec.state Destroyed and back to Running for a new one"),
        Summary("HeartbeatStale", False, False, True, "Degraded",
                "the VM has not answered for longer than staleAfterSeconds"),
        *(Summary(reason, False, False, True, "Degraded", meaning)
          for reason, meaning in VMNODE_INVALID),
        Summary("DeletionBlocked", False, None, None, "Progressing",
                "being deleted, but the VM cannot be deleted yet; the finalizer holds "
                "(kstatus: Terminating; Argo CD: pending deletion)"),
    ),
    notes=(
        "The annotation `reef.vers.sh/paused` stops reconciliation (management pause): the "
        "conditions stay as they were, and Argo CD shows the node Suspended.",
    ),
)

LIEUTENANT = KindConditions(
    types=(
        ConditionType("Ready", f"{READY}: the agent's session answers and takes tasks."),
        ConditionType("Working", "The agent is working on a task (Ready stays True: working "
                      "is the lieutenant doing its job, not the operator catching up).",
                      (("Working", "True"), ("Idle", "False: waiting for tasks"),
                       ("Paused", "False"), ("Destroyed", "False"),
                       ("WaitingForVM", "False"), ("WaitingForCheckpoint", "False"),
                       ("Pausing", "False: the VM is being frozen"),
                       ("IdlePaused", "False"), ("BudgetExhausted", "False"),
                       ("Expired", "False"), ("QuotaExceeded", "False"),
                       ("Stopped", "False: stopped after its tasks (StopWhenDone)"),
                       ("AgentUnreachable", "False"), (ANY_STALLED_REASON, "False"))),
        ConditionType("Paused", "The VM is frozen with the agent's memory intact.",
                      (("Paused", "True: spec.state is Paused"),
                       ("Idle", "True: paused by the operator after spec.idlePolicy.pauseAfter "
                                "without work; the next task resumes it"),
                       ("BudgetExhausted", "True: the session's budget or the namespace's "
                                           "daily cost limit is spent"),
                       ("Running", "False"),
                       ("WaitingForTaskToFinish", "False: a pause is asked for; it waits for "
                                                  "the current task"),
                       ("Destroyed", "False"))),
        ConditionType("Degraded", "The same as Stalled, written with it (same reason and "
                      "message).", abnormal_true=True),
        ConditionType("Reconciling", f"{RECONCILING}: the VM or the agent is starting, a "
                      "pause or destroy is not done yet.", abnormal_true=True),
        ConditionType("Stalled", f"{STALLED}: a missing Secret or ConfigMap, a credentials "
                      "Secret not labelled for agents, a VMNode that "
                      "belongs to someone else or is itself Stalled, an agent unreachable "
                      "5 times in a row.", abnormal_true=True),
    ),
    summaries=(
        Summary("SessionReady", True, False, False, "Healthy",
                "the agent takes tasks (Working says whether it is on one)",
                phase="Idle, Working"),
        Summary("Pausing", True, True, False, "Progressing",
                "spec.state is Paused: the current task finishes first, then the VM freezes",
                when="agent attached", phase="Working, Idle"),
        Summary("Pausing", False, True, False, "Progressing",
                "the VM is being frozen", when="VM freezing", phase="as before"),
        Summary("Paused", False, False, False, "Suspended", "frozen as asked", phase="Paused"),
        Summary("IdlePaused", True, False, False, "Healthy",
                "paused by the operator after spec.idlePolicy.pauseAfter without work, the "
                "agent's memory kept; spec.state is unchanged and the next task resumes it",
                phase="Paused"),
        Summary("BudgetExhausted", False, False, False, "Suspended",
                "spec.budget (or the namespace's ReefPolicy daily cost limit) is spent: no "
                "further task is delivered and the VM is paused with the agent's memory; "
                "raising the limit resumes it", phase="Paused"),
        Summary("Expired", False, False, False, "Healthy",
                "destroyed by the operator after spec.idlePolicy.destroyAfter without tasks; "
                "the VM is released, history and TaskRecords are kept", phase="Destroyed"),
        Summary("QuotaExceeded", False, True, False, "Progressing",
                "the namespace's ReefPolicy has no room for it now (running VMs); it starts "
                "when there is", phase="Starting"),
        Summary("WaitingForVM", False, True, False, "Progressing",
                "the VMNode is not Ready yet (creating, booting, resuming)", phase="Starting"),
        Summary("WaitingForCheckpoint", False, True, False, "Progressing",
                "a fork (spec.forkFrom) waits for its source to checkpoint its VM, which "
                "happens when the source's agent is between two tasks", phase="Starting"),
        Summary("AgentUnreachable", False, True, False, "Progressing",
                "the agent could not be reached or started; retried with backoff",
                when="attempts 1-4", phase="Starting"),
        Summary("AgentUnreachable", False, False, True, "Degraded",
                "the agent keeps failing; still retried with backoff", when="attempt 5 on",
                phase="Error"),
        Summary("Stopped", True, False, False, "Healthy",
                "postTaskDisposition is StopWhenDone and every task is done: pi is stopped, "
                "the VM runs and the session file keeps the conversation; a new task starts "
                "the agent again", phase="Stopped"),
        Summary("Destroying", False, True, False, "Progressing",
                "spec.state is Destroyed; waiting for the VMNode to release the VM",
                phase="Destroyed (Working, Idle while the agent stops)"),
        Summary("Destroyed", False, False, False, "Healthy",
                "the agent was stopped and the VM released as asked; the object and its "
                "history are kept", phase="Destroyed"),
        Summary("MissingInput", False, False, True, "Degraded",
                "the credentials Secret or the providers ConfigMap is missing (checked again "
                "on any change to the lieutenant, at the latest after 10 minutes)",
                phase="Error"),
        Summary("CredentialsNotLabelled", False, False, True, "Degraded",
                "the credentials Secret does not carry the label "
                "reef.vers.sh/agent-credentials: \"true\", so none of its values is read "
                "(checked again on any change to the lieutenant, at the latest after 10 "
                "minutes)", phase="Error"),
        Summary("DelegationNotEnabled", False, False, True, "Degraded",
                "spec.delegation is set but the namespace does not carry the label "
                "reef.vers.sh/delegation: enabled (its admin's consent): the agent is not "
                "started and holds no identity until the label is set or the field removed",
                phase="Error"),
        Summary("InvalidSpec", False, False, True, "Degraded",
                "a VMNode with the lieutenant's name exists and belongs to someone else",
                phase="Error"),
        Summary("ForkSourceNotFound", False, False, True, "Degraded",
                "spec.forkFrom.lieutenant names no lieutenant of the namespace (checked again "
                "when one of that name appears)", phase="Error"),
        Summary("ForkSourceHasNoVM", False, False, True, "Degraded",
                "spec.forkFrom names a lieutenant without a running VM to checkpoint (not "
                "started yet, or destroyed) and no checkpoint; the fork starts once the "
                "source has one", phase="Error"),
        Summary("CheckpointNotFound", False, False, True, "Degraded",
                "spec.forkFrom.checkpoint names no checkpoint in the source's "
                "status.checkpoints (checked again when the source changes)", phase="Error"),
        Summary("ModelProviderNotAllowed", False, False, True, "Degraded",
                "the namespace's ReefPolicy does not allow the lieutenant's model provider "
                "(the policy changed after the lieutenant was admitted); checked before its "
                "VMNode is made", phase="Error"),
        *(Summary(reason, False, False, True, "Degraded",
                  f"the lieutenant's VMNode is Stalled: {meaning}", phase="Error")
          for reason, meaning in (*VMNODE_INVALID,
                                  ("VMNotFound", "its VM is gone"),
                                  ("VMDead", "its VM is dead"),
                                  ("VMSleeping", "its VM sleeps"),
                                  ("HeartbeatStale", "its VM does not answer"),
                                  ("BootScriptFailed", "its boot script keeps failing"))),
    ),
    notes=(
        "`status.phase` is for people and the printer column; the conditions are "
        "authoritative.",
        "The annotation `reef.vers.sh/paused` stops reconciliation (management pause): "
        "tasks appended meanwhile wait (a task pi already has runs to its end on the VM), "
        "the VMNode is left as it is, status is not written, and Argo CD shows the "
        "lieutenant Suspended. Removing the annotation delivers the waiting tasks.",
    ),
)

BOOTPROFILE = KindConditions(
    types=(
        ConditionType("Valid", "The spec passed validation and the boot script rendered "
                      "(status.hash is its hash).",
                      (("Validated", "True"), ("Invalid", "False: the problems are in the "
                                                          "message"))),
        ConditionType("Ready", f"{READY}: the same verdict as Valid, under the summary name."),
        ConditionType("Stalled", f"{STALLED}: the profile is invalid until edited. Validation "
                      "is instantaneous, so there is no Reconciling.", abnormal_true=True),
    ),
    summaries=(
        Summary("Validated", True, None, False, "Healthy", "the profile can be used"),
        Summary("Invalid", False, None, True, "Degraded",
                "nodes using the profile are Stalled with ProfileInvalid"),
    ),
    notes=(
        "The annotation `reef.vers.sh/paused` stops reconciliation (management pause): "
        "edits wait, nodes keep booting from the version last taken in (after an operator "
        "restart, the one found then), and Argo CD shows the profile Suspended.",
    ),
)

REEFPOLICY = KindConditions(
    types=(
        ConditionType("Ready", f"{READY}: it is the namespace's policy and is applied."),
        ConditionType("Stalled", f"{STALLED}: another ReefPolicy of the namespace is the one "
                      "applied.", abnormal_true=True),
    ),
    summaries=(
        Summary("Active", True, None, False, "Healthy", "the namespace's policy, applied"),
        Summary("Duplicate", False, None, True, "Degraded",
                "an older ReefPolicy of the namespace applies; this one is ignored until it "
                "is the only one"),
    ),
)

VMPOOL = KindConditions(
    types=(
        ConditionType("Ready", f"{READY}: minReady members are booted and unclaimed."),
        ConditionType("Reconciling", f"{RECONCILING}: members are booting, or the pool "
                      "waits for room to boot them.", abnormal_true=True),
        ConditionType("Stalled", f"{STALLED}: the pool cannot boot members as written.",
                      abnormal_true=True),
    ),
    summaries=(
        Summary("Filled", True, False, False, "Healthy", "minReady members are ready"),
        Summary("Filling", False, True, False, "Progressing",
                "members are booting (after a claim, or replacing an unhealthy one)"),
        Summary("QuotaExceeded", False, True, False, "Progressing",
                "the namespace's ReefPolicy maxRunningVMs leaves no room for another "
                "member; the pool boots it when there is room (warm members count)"),
        Summary("ProfileNotFound", False, False, True, "Degraded",
                "spec.profileRef names a BootProfile that does not exist"),
        Summary("SizeInvalid", False, False, True, "Degraded",
                "spec.minReady is over spec.maxSize"),
    ),
)

BY_KIND: dict[str, KindConditions] = {
    "Lieutenant": LIEUTENANT, "VMNode": VMNODE, "BootProfile": BOOTPROFILE,
    "ReefPolicy": REEFPOLICY, "VMPool": VMPOOL,
}
