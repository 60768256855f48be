/**
 * What each lieutenant tool does, as `kubectl reef` does it: it changes only a Lieutenant's
 * spec (the operator does the work) and reads only its status, so whatever a coordinator
 * does can also be done or undone with kubectl or GitOps.
 *
 * Errors are thrown as ToolError with a message the model can act on: an unknown name lists
 * the lieutenants that exist, a Destroyed one says so, a paused one refuses a task until it
 * is resumed.
 */
import { type Kube, KubeError, type Obj } from "./kube.ts";

export const PLURAL = "lieutenants";
export const COORDINATOR_LABEL = "reef.vers.sh/coordinator";
export const TASK_MODES = ["prompt", "steer", "followUp"] as const;
export const FINISHED = ["Succeeded", "Failed", "Aborted"];
const NAMES_LISTED = 20;
const SEND_ATTEMPTS = 10;

export class ToolError extends Error {}

const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/** A coordinator id as a label value: other characters become '-', at most 63, alphanumeric
 * ends; "" when nothing is left. */
export function labelValue(raw: string): string {
	const id = raw.replace(/[^A-Za-z0-9_.-]/g, "-").slice(0, 63).replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, "");
	return LABEL_VALUE.test(id) ? id : "";
}

export interface CreateParams {
	name: string;
	role: string;
	model?: string;
	commitId?: string;
	profile?: string;
	credentials?: string;
	providers?: string;
	instructions?: string;
}

/** Who the lieutenant is, or a ToolError that says which ones exist. */
export async function getLieutenant(kube: Kube, name: string): Promise<Obj> {
	try {
		return await kube.get(PLURAL, name);
	} catch (error) {
		if (error instanceof KubeError && error.status === 404) {
			const names = (await listLieutenants(kube)).map((o) => o.metadata.name as string);
			const shown = names.slice(0, NAMES_LISTED).join(", ") + (names.length > NAMES_LISTED ? ", …" : "");
			throw new ToolError(
				`no lieutenant "${name}" in namespace ${kube.namespace}: ` +
					(names.length ? `the lieutenants here are ${shown}` : "there are none (create one with vers_lt_create)"),
			);
		}
		throw explained(error, `cannot read lieutenant ${name}`);
	}
}

export async function listLieutenants(kube: Kube): Promise<Obj[]> {
	try {
		return ((await kube.list(PLURAL)).items as Obj[]) ?? [];
	} catch (error) {
		throw explained(error, `cannot list lieutenants in namespace ${kube.namespace}`);
	}
}

/** A KubeError as a ToolError naming what failed and the apiserver's reason (RBAC, admission). */
export function explained(error: unknown, what: string): Error {
	if (error instanceof ToolError) return error;
	if (error instanceof KubeError) {
		const hint = error.status === 403 ? " (your kubeconfig's identity may not do this here)" : "";
		return new ToolError(`${what}: ${error.message}${hint}`);
	}
	return new ToolError(`${what}: ${(error as Error).message}`);
}

export function desiredState(lieutenant: Obj): string {
	return String(lieutenant.spec?.state ?? "Running");
}

/** Create the Lieutenant, labelled with its coordinator. A coordinator that is itself a
 * lieutenant (REEF_LIEUTENANT, set by the operator on its VM) makes it its child: its
 * delegated rights cover only objects whose parentRef names it (docs/delegation.md). */
export async function create(kube: Kube, params: CreateParams, coordinator: string, parent = ""): Promise<Obj> {
	const spec: Obj = { role: params.role };
	if (parent) spec.parentRef = { kind: "Lieutenant", name: parent };
	if (params.profile) spec.profileRef = { name: params.profile };
	if (params.commitId) spec.commitId = params.commitId;
	if (params.model) {
		const [provider, ...rest] = params.model.split("/");
		const id = rest.join("/");
		if (!provider || !id) throw new ToolError(`model "${params.model}": expected PROVIDER/ID, e.g. anthropic/claude-sonnet-4-5`);
		spec.model = { provider, id };
	}
	if (params.credentials) spec.credentialsSecretRef = { name: params.credentials };
	if (params.providers) spec.providersConfigMapRef = { name: params.providers };
	if (params.instructions) spec.instructions = params.instructions;
	const body = {
		apiVersion: "reef.vers.sh/v1alpha1",
		kind: "Lieutenant",
		metadata: { name: params.name, labels: { [COORDINATOR_LABEL]: coordinator } },
		spec,
	};
	try {
		return await kube.create(PLURAL, body);
	} catch (error) {
		if (error instanceof KubeError && error.status === 409) {
			throw new ToolError(`Lieutenant '${params.name}' already exists. Destroy it first or use a different name.`);
		}
		throw explained(error, `cannot create lieutenant ${params.name}`);
	}
}

/** Task names the status knows as sent or answered: pruned from the spec, never reused. */
function namesThatRan(lieutenant: Obj): Set<string> {
	const status = lieutenant.status ?? {};
	const names = new Set<string>();
	for (const t of status.tasks ?? []) if (t.phase && t.phase !== "Pending") names.add(String(t.name));
	for (const h of status.history ?? []) if (h.task) names.add(String(h.task));
	return names;
}

/** `task-N` after the highest N used, as `kubectl reef send` names tasks. */
export function nextTaskName(taken: Set<string>): string {
	const numbers = [...taken].filter((n) => /^task-\d+$/.test(n)).map((n) => Number(n.slice(5)));
	let number = Math.max(taken.size, ...numbers, 0) + 1;
	while (taken.has(`task-${number}`)) number += 1;
	return `task-${number}`;
}

export interface Sent {
	task: string;
	mode: string;
	notes: string[];
}

/** Append a task to spec.tasks under a new name; a concurrent edit makes it read and retry. */
export async function send(kube: Kube, name: string, message: string, mode: string): Promise<Sent> {
	if (!(TASK_MODES as readonly string[]).includes(mode)) {
		throw new ToolError(`mode "${mode}": expected one of ${TASK_MODES.join(", ")}`);
	}
	if (!message.trim()) throw new ToolError("message is empty: say what the lieutenant should do");
	for (let attempt = 0; attempt < SEND_ATTEMPTS; attempt++) {
		const lieutenant = await getLieutenant(kube, name);
		const state = desiredState(lieutenant);
		if (state === "Destroyed") {
			throw new ToolError(`lieutenant ${name} is Destroyed: it takes no more tasks (create a new one with vers_lt_create)`);
		}
		if (state === "Paused") {
			throw new ToolError(`lieutenant ${name} is paused: resume it first (vers_lt_resume), then send the task`);
		}
		const tasks: Obj[] = [...(lieutenant.spec?.tasks ?? [])];
		const task = nextTaskName(new Set([...tasks.map((t) => String(t.name)), ...namesThatRan(lieutenant)]));
		const patch = {
			metadata: { resourceVersion: lieutenant.metadata.resourceVersion },
			spec: { tasks: [...tasks, { name: task, message, mode }] },
		};
		try {
			await kube.mergePatch(PLURAL, name, patch);
		} catch (error) {
			if (error instanceof KubeError && error.status === 409) continue;
			throw explained(error, `cannot send to lieutenant ${name}`);
		}
		const notes: string[] = [];
		if (mode === "prompt" && lieutenant.status?.phase === "Working") {
			notes.push("the lieutenant is working: it runs when the current task ends");
		}
		return { task, mode, notes };
	}
	throw new ToolError(`lieutenant ${name} kept changing while sending; try again`);
}

/** What `read` shows: the live output while working, else the last response. */
export function currentOutput(lieutenant: Obj): string {
	const status = lieutenant.status ?? {};
	if (status.currentTask?.name) return String(status.currentTask.output ?? "");
	const history: Obj[] = status.history ?? [];
	return history.length ? String(history[history.length - 1].response ?? "") : "";
}

/** The seed's format: `=== Response i ===` blocks, oldest first, then `=== Current (…) ===`. */
export function historyBlocks(lieutenant: Obj, count: number): string {
	const status = lieutenant.status ?? {};
	const history: Obj[] = count > 0 ? (status.history ?? []).slice(-count) : [];
	const parts = history.map(
		(entry, i) =>
			`=== Response ${i + 1} ===\n(task ${entry.task}, ${entry.stopReason || "stop"}${entry.truncated ? " [truncated]" : ""})\n${entry.response ?? ""}`,
	);
	const phase = String(status.phase ?? "Unknown").toLowerCase();
	const current = status.currentTask ?? {};
	const heading = current.name ? `=== Current (${phase}: ${current.name}) ===` : `=== Current (${phase}) ===`;
	const live = current.name ? String(current.output ?? "") : "";
	parts.push(live ? `${heading}\n${live}` : heading);
	return parts.join("\n\n");
}

/** What a tool result may carry of a lieutenant's text: pi's own bound for tool output
 * (50 KB); status.history alone may hold 80 KiB. */
export const READ_LIMIT = 50_000;

export function readText(lieutenant: Obj, tail?: number, history?: number): string {
	let text = history !== undefined ? historyBlocks(lieutenant, history) : currentOutput(lieutenant);
	if (tail !== undefined) text = tail > 0 ? text.slice(-tail) : "";
	let cut = "";
	if (text.length > READ_LIMIT) {
		cut = `[the last ${READ_LIMIT} of ${text.length} characters; ask for fewer with history or tail]\n`;
		text = text.slice(-READ_LIMIT);
	}
	const status = lieutenant.status ?? {};
	const phase = String(status.phase ?? "Unknown").toLowerCase();
	return `[${lieutenant.metadata.name}] (${phase}, ${status.taskCount ?? 0} tasks):\n${cut}${text}`;
}

/** spec.state Paused or Running, with `kubectl reef pause/resume`'s refusals and notes. */
export async function setState(kube: Kube, name: string, state: "Paused" | "Running"): Promise<string> {
	const lieutenant = await getLieutenant(kube, name);
	const current = desiredState(lieutenant);
	if (current === "Destroyed") {
		throw new ToolError(`lieutenant ${name} is Destroyed: its VM is gone, it cannot be ${state === "Paused" ? "paused" : "resumed"}`);
	}
	if (current === state) return `lieutenant ${name} is already ${state === "Paused" ? "paused" : "running"}`;
	try {
		await kube.mergePatch(PLURAL, name, { spec: { state } });
	} catch (error) {
		throw explained(error, `cannot set lieutenant ${name} to ${state}`);
	}
	const status = lieutenant.status ?? {};
	if (state === "Paused" && status.phase === "Working") {
		return `lieutenant ${name} set to Paused (working on ${status.currentTask?.name}: it pauses when that task ends)`;
	}
	return `lieutenant ${name} set to ${state}`;
}

/** spec.state Destroyed: the agent stops and the VM goes; the object and its history stay. */
export async function destroy(kube: Kube, lieutenant: Obj): Promise<string> {
	const name = String(lieutenant.metadata.name);
	const tasks = (lieutenant.status?.tasks ?? []).filter((t: Obj) => t.phase === "Succeeded").length;
	const vm = lieutenant.status?.vmId ? `VM ${lieutenant.status.vmId}, ` : "";
	if (desiredState(lieutenant) === "Destroyed") return `${name}: already destroyed (${vm}${tasks} tasks completed)`;
	try {
		await kube.mergePatch(PLURAL, name, { spec: { state: "Destroyed" } });
	} catch (error) {
		throw explained(error, `cannot destroy lieutenant ${name}`);
	}
	return `${name}: destroyed (${vm}${tasks} tasks completed; the object and its history stay)`;
}

export function summary(lieutenant: Obj): Obj {
	const status = lieutenant.status ?? {};
	return {
		name: lieutenant.metadata.name,
		phase: status.phase ?? "Pending",
		state: desiredState(lieutenant),
		role: lieutenant.spec?.role ?? "",
		vmId: status.vmId ?? null,
		task: status.currentTask?.name ?? null,
		taskCount: status.taskCount ?? 0,
		lastActivityTime: status.lastActivityTime ?? null,
		coordinator: lieutenant.metadata.labels?.[COORDINATOR_LABEL] ?? null,
	};
}

const ICONS: Record<string, string> = {
	Starting: "…",
	Idle: "●",
	Working: "⟳",
	Paused: "⏸",
	Stopped: "■",
	Error: "✗",
	Destroyed: "✝",
};

/** One line per lieutenant, as the seed's vers_lt_status printed them. */
export function statusLine(lieutenant: Obj): string {
	const s = summary(lieutenant);
	const role = String(s.role).length > 60 ? `${String(s.role).slice(0, 59)}…` : s.role;
	const active = s.lastActivityTime ? `, last active ${s.lastActivityTime}` : "";
	const working = s.task ? ` (streaming ${s.task}...)` : "";
	return `${ICONS[s.phase] ?? "?"} ${s.name}: ${String(s.phase).toLowerCase()} — ${role} [${s.vmId ?? "no VM"}, ${s.taskCount} tasks${active}]${working}`;
}

/** One line of the coordinator's widget: `⟳ api: working (3 tasks) — Build the API…`. */
export function widgetLine(lieutenant: Obj): string {
	const s = summary(lieutenant);
	const role = String(s.role).length > 40 ? `${String(s.role).slice(0, 39)}…` : s.role;
	return `${ICONS[s.phase] ?? "?"} ${s.name}: ${String(s.phase).toLowerCase()} (${s.taskCount} tasks) — ${role}`;
}
