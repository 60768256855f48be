"""The Lieutenant kind: one persistent pi session on its own VM node."""

from __future__ import annotations

from reef_operator.api import common
from reef_operator.api.budget import FINISHED_WINDOW, HISTORY_BUDGET
from reef_operator.api.conditions import LIEUTENANT as LIEUTENANT_CONDITIONS
from reef_operator.api.kinds import Column, Kind
from reef_operator.api.schema import (
    DNS_LABEL,
    ENV_NAME,
    Schema,
    array,
    boolean,
    conditions,
    integer,
    name_ref,
    number,
    obj,
    string,
    timestamp,
)
from reef_operator.constants import DNS_SUBDOMAIN

TASK_MODES = ("prompt", "steer", "followUp")
PHASES = ("Starting", "Idle", "Working", "Paused", "Stopped", "Error", "Destroyed")
TASK_PHASES = ("Pending", "Queued", "Running", "Succeeded", "Failed", "Aborted")
FINISHED_TASK_PHASES = TASK_PHASES[3:]      # a task in one of these has ended for good
CONDITION_TYPES = LIEUTENANT_CONDITIONS.type_names
THINKING_LEVELS = ("off", "minimal", "low", "medium", "high", "xhigh")
MAX_TASKS = 1000
MAX_TASK_MESSAGE = 32768
MAX_CHECKPOINTS = 20
FORK_POINT_FIELDS: dict[str, Schema] = {
    "lieutenant": string("The lieutenant forked.", max_length=63),
    "checkpoint": string("The named checkpoint forked from (absent: one taken for the fork).",
                         max_length=63),
    "commitId": string("The snapshot the fork's VM booted from.", max_length=128),
}


def usage_schema(what: str) -> dict[str, object]:
    return obj(
        f"Tokens and cost of {what}, summed from the usage pi reports with each "
        "assistant message (the cost is pi's, priced from its model table).",
        {
            "inputTokens": integer("Input tokens.", minimum=0, format="int64"),
            "outputTokens": integer("Output tokens.", minimum=0, format="int64"),
            "cacheReadTokens": integer("Prompt-cache read tokens.", minimum=0, format="int64"),
            "cacheWriteTokens": integer("Prompt-cache write tokens.", minimum=0, format="int64"),
            "cost": number("Cost in US dollars.", minimum=0),
        },
    )


TASK = obj(
    "One message for the lieutenant. Appending a task sends it; once sent it cannot change, "
    "and once finished it may be removed (its name is never used again).",
    {
        "name": string(
            "Unique name of the task within this lieutenant (a DNS label).",
            pattern=DNS_LABEL, max_length=63,
        ),
        "message": string("What to tell the agent.", min_length=1, max_length=MAX_TASK_MESSAGE),
        "mode": string(
            "How to deliver it: prompt starts work (while the agent is working it is queued as "
            "a follow-up, with a note); steer interrupts the current work after its running "
            "tool calls and redirects it; followUp queues it until the current work is done.",
            enum=TASK_MODES, default="prompt",
        ),
    },
    required=("name", "message"),
)

SPEC = obj(
    "Desired state of the lieutenant.",
    {
        "role": string(
            "The lieutenant's job, e.g. 'Build and maintain the Node.js API server'. Becomes "
            "part of its system prompt.",
            min_length=1, max_length=4096,
        ),
        "state": string(
            "Desired state. Running keeps the session ready for tasks; Paused freezes the VM "
            "with the agent's memory intact (after the current task finishes); Destroyed kills "
            "the agent and releases the VM but keeps this object and its history.",
            enum=common.VM_STATES, default="Running",
        ),
        "profileRef": name_ref(
            "BootProfile the lieutenant's VM is made from (default: the operator's default "
            "profile).", "BootProfile",
        ),
        "poolRef": name_ref(
            "VMPool (same namespace) whose warm VM the lieutenant takes instead of booting "
            "one: its agent starts as soon as the claim lands. With no ready member it boots "
            "a VM as usual (its VMNode says Pooled=False, PoolEmpty). The profile is the "
            "pool's unless profileRef names another (then no member fits).", "VMPool",
        ),
        "commitId": string(
            "Commit to boot from, overriding the profile's source: a commit a BootProfile "
            "names, or a checkpoint of a node in this namespace (else Stalled, "
            "CommitNotAllowed).",
            pattern=common.COMMIT_ID,
        ),
        "model": obj(
            "The model the agent uses (default: the operator's default model).",
            {
                "provider": string(
                    "pi provider name, e.g. anthropic, openai, or one defined in the "
                    "providers ConfigMap.", pattern=r"^[a-z0-9][-a-z0-9_.]*$", max_length=63,
                ),
                "id": string("Model id, e.g. claude-sonnet-4-5.", min_length=1, max_length=253),
                "thinkingLevel": string(
                    "Reasoning effort for models that support it.", enum=THINKING_LEVELS
                ),
            },
            required=("provider", "id"),
        ),
        "credentialsSecretRef": name_ref(
            "Secret in this namespace whose keys become the agent's environment, e.g. "
            "ANTHROPIC_API_KEY. It must carry the label reef.vers.sh/agent-credentials: "
            "\"true\" (its owner's consent); otherwise the lieutenant is Stalled "
            "(CredentialsNotLabelled) and none of its values is read. The values never "
            "appear in status, Events, logs or process arguments.", "Secret",
        ),
        "providersConfigMapRef": name_ref(
            "ConfigMap in this namespace whose key models.json is pi's custom-provider file "
            "(a proxy, a self-hosted model, another base URL).", "ConfigMap",
        ),
        "instructions": string(
            "Extra text for the system prompt, after the role and before its closing "
            "instruction (end each task with a summary of what was done and any open "
            "questions or next steps).", max_length=65536
        ),
        "forkFrom": obj(
            "Start as a fork of another lieutenant of this namespace: its VM is booted from "
            "a checkpoint of that lieutenant's VM (files and memory) and pi continues that "
            "lieutenant's conversation as it was then; from there the two go their own ways "
            "(tasks sent to either never reach the other). Without checkpoint, the operator "
            "checkpoints the source now (between two of its tasks); with checkpoint, the fork "
            "starts from that named checkpoint of the source (kubectl reef checkpoint), also "
            "after the source moved on or was destroyed. Cannot change once set.",
            {
                "lieutenant": string("Name of the lieutenant to fork, in this namespace.",
                                     pattern=DNS_LABEL, max_length=63),
                "checkpoint": string(
                    "Label of one of its named checkpoints (status.checkpoints); default: a "
                    "checkpoint taken for this fork now.", pattern=DNS_LABEL, max_length=63),
            },
            required=("lieutenant",),
        ),
        "parentRef": obj(
            "The VM node or lieutenant that spawned this one, for the lineage tree.",
            {
                "kind": string("Kind of the parent.", enum=("VMNode", "Lieutenant"),
                               default="VMNode"),
                "name": string("Name of the parent in this namespace.", pattern=DNS_LABEL,
                               max_length=63),
            },
            required=("name",),
        ),
        "delegation": obj(
            "Lets this lieutenant's own agent create and manage child Lieutenants and VMNodes "
            "(their parentRef names this lieutenant) through the Kubernetes API, with a "
            "short-lived ServiceAccount token the operator writes on the VM and revokes when "
            "the lieutenant is destroyed. The namespace must carry the label "
            "reef.vers.sh/delegation: enabled (set by its admin), else the lieutenant is "
            "Stalled (DelegationNotEnabled). See docs/delegation.md.",
            {
                "maxChildren": integer(
                    "Children (Lieutenants and VMNodes whose parentRef names this lieutenant, "
                    "not Destroyed) alive at once; a create over it is refused.",
                    minimum=0, maximum=100, default=1),
                "profiles": array(
                    "BootProfiles a child may boot from (a child without profileRef uses the "
                    "operator's default profile, which must then be listed). Empty or left "
                    "out: only this lieutenant's own profile.",
                    string("A BootProfile name.", pattern=DNS_SUBDOMAIN,
                           max_length=253),
                    max_items=32),
            },
        ),
        "tasks": array(
            "List of tasks, delivered exactly once each, in order, into the same "
            "conversation. New tasks are appended; a sent task cannot change, a finished one "
            "(Succeeded, Failed, Aborted) may be removed (kubectl reef prune), and its name is "
            "never used again.",
            TASK,
            max_items=MAX_TASKS,
            x_kubernetes_list_type="map",
            x_kubernetes_list_map_keys=["name"],
        ),
        "historyLimit": integer(
            "How many completed responses status.history keeps.", minimum=0, maximum=100,
            default=20,
        ),
        "taskRecords": obj(
            "How many TaskRecords of finished tasks to keep; the oldest go first.",
            {
                "maxRecords": integer("Records kept at most.", minimum=0, maximum=100000,
                                      default=1000),
                "maxAgeDays": integer("Records older than this many days are deleted "
                                      "(default: kept whatever their age).", minimum=1),
            },
        ),
        "postTaskDisposition": string(
            "What to do when the agent runs out of work: StayIdle keeps the session ready; "
            "StopWhenDone stops the agent (phase Stopped) until a new task arrives.",
            enum=("StayIdle", "StopWhenDone"), default="StayIdle",
        ),
        "idlePolicy": common.idle_policy("the lieutenant (default: its namespace's "
                                         "ReefPolicy)"),
        "budget": common.budget("the whole session (default: its namespace's ReefPolicy)"),
        "ttlSecondsAfterDestroyed": common.ttl_after_destroyed(),
        "env": array(
            "Extra non-secret environment variables for the agent.",
            obj(
                "One environment variable.",
                {
                    "name": string("Variable name.", pattern=ENV_NAME, max_length=128),
                    "value": string("Variable value.", max_length=4096),
                },
                required=("name", "value"),
            ),
            max_items=64,
            x_kubernetes_list_type="map",
            x_kubernetes_list_map_keys=["name"],
        ),
    },
    required=("role",),
)

STATUS = obj(
    "Observed state of the lieutenant, written by the operator.",
    {
        "observedGeneration": integer(
            "The .metadata.generation the operator last acted on.", minimum=0, format="int64"
        ),
        "phase": string(
            "Summary for humans and the printer column; conditions are authoritative.",
            enum=PHASES,
        ),
        "conditions": conditions("Current conditions.", CONDITION_TYPES),
        "vmNodeName": string("Name of the VMNode this lieutenant owns.", max_length=253),
        "vmId": string("Id of the VM the session runs on.", max_length=128),
        "session": obj(
            "The pi session on the VM.",
            {
                "piVersion": string("Version of pi running the session.", max_length=64),
                "sessionFile": string("Path of pi's session file on the VM.", max_length=4096),
                "model": string("provider/model the session uses.", max_length=512),
                "offset": integer(
                    "Bytes of pi's event stream consumed so far; a restarted operator resumes "
                    "exactly here.", minimum=0, format="int64",
                ),
                "restarts": integer("Times pi was restarted on the same session file.",
                                    minimum=0),
                "compactions": integer(
                    "Times pi compacted the conversation: near the model's context window it "
                    "replaces older messages with a summary, which later tasks still carry.",
                    minimum=0),
                "startedAt": timestamp("When pi was last started on the VM."),
                "attachedAt": timestamp(
                    "When the operator last attached to the running pi; later than startedAt "
                    "after an operator restart, a reconnect or a resume."),
            },
        ),
        "currentTask": obj(
            "The task the agent is working on.",
            {
                "name": string("Task name.", max_length=63),
                "mode": string("Delivery mode.", enum=TASK_MODES),
                "startedAt": timestamp("When the agent started on it."),
                "eventOffset": integer(
                    "Byte offset in pi's event log where this task's run begins: "
                    "`kubectl reef read --follow` streams from here.", minimum=0,
                    format="int64"),
                "output": string("Tail of the live output (bounded).", max_length=65536),
            },
        ),
        "tasks": array(
            "Delivery and outcome of every task still in the spec (a finished one only its "
            "name, phase and a short note), after the most recent finished tasks no longer in "
            "it. Written whole by the operator alone (an atomic list: no managedFields entry "
            "per task).",
            obj(
                "Where one task stands.",
                {
                    "name": string("Task name.", max_length=63),
                    "mode": string("Mode it was delivered with.", enum=TASK_MODES),
                    "phase": string("Pending (not sent), Queued (sent, waiting), Running, "
                                    "Succeeded, Failed or Aborted.", enum=TASK_PHASES),
                    "commandId": string("Id of the RPC command that delivered it.",
                                        max_length=128),
                    "sentAt": timestamp("When it was delivered to pi."),
                    "completedAt": timestamp("When the agent finished it."),
                    "note": string("Why it was delivered differently, or why it failed.",
                                   max_length=4096),
                },
                required=("name", "phase"),
            ),
            max_items=MAX_TASKS + FINISHED_WINDOW,
            x_kubernetes_list_type="atomic",
        ),
        "history": array(
            "The last historyLimit completed responses that fit together in "
            f"{HISTORY_BUDGET // 1024} KiB of JSON, oldest first.",
            obj(
                "One completed response.",
                {
                    "task": string("Task the response answers.", max_length=63),
                    "completedAt": timestamp("When the agent finished."),
                    "stopReason": string("Why the agent stopped (stop, length, error, aborted).",
                                         max_length=64),
                    "response": string("The agent's final text (bounded).", max_length=65536),
                    "truncated": boolean("Whether response was cut to fit."),
                    "usage": usage_schema("this response"),
                    "forkedFrom": obj(
                        "Set on the marker entry a fork's history starts with (task "
                        "\"(forked)\"): the conversation before it is the source's.",
                        FORK_POINT_FIELDS,
                    ),
                },
                required=("task",),
            ),
            max_items=100,
        ),
        "forkedFrom": obj(
            "Where this fork started (spec.forkFrom), recorded before its VM is made.",
            {**FORK_POINT_FIELDS,
             "profile": string("The source's BootProfile: the fork's VM is made from it "
                               "unless the fork's spec names one.", max_length=253),
             "forkedAt": timestamp("When the fork point was recorded.")},
        ),
        "checkpoints": array(
            "Checkpoints of this lieutenant's VM, oldest first: named ones (kubectl reef "
            "checkpoint) and those taken for its forks. Each commit is kept on the platform "
            "until this lieutenant and its forks are gone.",
            obj(
                "One checkpoint.",
                {
                    "label": string("Its name (absent on one taken for a fork).",
                                    max_length=63),
                    "fork": string("The fork it was taken for (absent on a named one).",
                                   max_length=63),
                    "commitId": string("The platform's snapshot (a Vers commit).",
                                       max_length=128),
                    "takenAt": timestamp("When it was taken."),
                    "afterTask": string("The last task finished before it (absent: none).",
                                        max_length=63),
                },
                required=("commitId",),
            ),
            max_items=MAX_CHECKPOINTS,
            x_kubernetes_list_type="atomic",
        ),
        "taskCount": integer("Number of tasks delivered.", minimum=0),
        "lastActivityTime": timestamp("When the agent last did anything."),
        "usage": usage_schema("the whole session"),
        "expiredAt": timestamp(
            "When the operator destroyed the lieutenant for spec.idlePolicy.destroyAfter "
            "without tasks (reason Expired). Final: no later task is delivered."),
        "delegation": string(
            "The ServiceAccount the agent acts as (spec.delegation), until its identity is "
            "revoked (the lieutenant destroyed, or spec.delegation removed). The token is "
            "never written here.", max_length=253),
        "destroyedAt": timestamp(
            "When the lieutenant became Destroyed (the VM released); "
            "spec.ttlSecondsAfterDestroyed counts from here."),
    },
)

LIEUTENANT = Kind(
    kind="Lieutenant",
    plural="lieutenants",
    short_names=("lt",),
    namespaced=True,
    description=(
        "A persistent pi coding-agent session on its own VM: give it a role, a model and an "
        "list of tasks to append to; it works through them in one conversation and reports "
        "progress, answers and history in status."
    ),
    spec=SPEC,
    status=STATUS,
    columns=(
        Column("Phase", "string", ".status.phase", "Current phase"),
        Column("Reason", "string", '.status.conditions[?(@.type=="Ready")].reason',
               "Why it is in that phase (e.g. IdlePaused, BudgetExhausted, Expired)"),
        Column("Task", "string", ".status.currentTask.name", "Task being worked on"),
        Column("Tasks", "integer", ".status.taskCount", "Tasks delivered"),
        Column("VM", "string", ".status.vmId", "VM id"),
        Column("Age", "date", ".metadata.creationTimestamp", "Age"),
        Column("Role", "string", ".spec.role", "The lieutenant's job", priority=1),
        Column("Model", "string", ".spec.model.id", "Model id", priority=1),
    ),
)
