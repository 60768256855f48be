/**
 * pi-reef: the seed's eight lieutenant tools for a coordinating pi, over reef-operator's
 * Lieutenant objects, with each finished task pushed into the coordinator's conversation.
 *
 * The coordinator "manages" the lieutenants it created (labelled
 * reef.vers.sh/coordinator=<its id>) and those it adopted with vers_lt_discover or by
 * sending them a task (an entry in its session). Its id is REEF_COORDINATOR, else the
 * lieutenant it runs in (REEF_LIEUTENANT), else pi's session id, so a coordinator restarted
 * on the same session manages the same ones.
 *
 * Completions: while pi runs with a UI (interactive or RPC mode) a list-and-watch of the
 * namespace's lieutenants (watch.ts) finds tasks of managed lieutenants that ended; each
 * becomes one custom message delivered as a follow-up that triggers a turn (inside a
 * lieutenant it starts no run of its own: see `deliver`). The ledger is
 * the session: a completion message carries its task key in `details`, so the keys of the
 * stored messages are delivered ones, also for the next pi on the same session, and a task
 * that ended while no coordinator ran is delivered when one comes back. A task already
 * finished when its lieutenant was adopted is recorded with the adoption and not announced.
 */
import { StringEnum } from "@mariozechner/pi-ai";
import type { ExtensionAPI, ExtensionContext } from "@mariozechner/pi-coding-agent";
import { Text } from "@mariozechner/pi-tui";
import { Type } from "typebox";
import { ADOPTED_TYPE, completionText, type Finished, finishedTasks, MESSAGE_TYPE } from "./completions.ts";
import { Kube, type Obj } from "./kube.ts";
import {
	COORDINATOR_LABEL,
	create,
	desiredState,
	destroy,
	getLieutenant,
	labelValue,
	listLieutenants,
	readText,
	send,
	setState,
	statusLine,
	summary,
	TASK_MODES,
	ToolError,
	widgetLine,
} from "./lieutenants.ts";
import { LieutenantWatch } from "./watch.ts";

const WIDGET = "pi-reef";

export default function piReef(pi: ExtensionAPI) {
	let kube: Kube | undefined;
	let coordinator = "";
	let ui: ExtensionContext | undefined;
	let watch: LieutenantWatch | undefined;
	const adopted = new Map<string, string>(); // name -> uid
	const delivered = new Set<string>(); // task keys stored in the session, or sent now
	const known = new Map<string, Obj>(); // the namespace's lieutenants, by name

	const client = (): Kube => {
		if (!kube) {
			try {
				kube = Kube.fromEnvironment();
			} catch (error) {
				throw new ToolError(`pi-reef cannot reach Kubernetes: ${(error as Error).message}`);
			}
		}
		return kube;
	};

	const managed = (lieutenant: Obj): boolean =>
		lieutenant.metadata?.labels?.[COORDINATOR_LABEL] === coordinator ||
		adopted.get(String(lieutenant.metadata?.name)) === lieutenant.metadata?.uid;

	let shown = "";
	/** The widget and the footer status, sent only when their text changes (a working
	 * lieutenant's status changes every second; an RPC client gets one request per change). */
	const showWidget = (): void => {
		if (!ui?.hasUI) return;
		const mine = [...known.values()].filter(managed).sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
		const lines = mine.length ? [`─── Lieutenants (${mine.length}) ───`, ...mine.map(widgetLine)] : [];
		const working = mine.filter((lt) => lt.status?.phase === "Working").length;
		const status = mine.length ? `lieutenants: ${mine.length}${working ? ` (${working} working)` : ""}` : "";
		const text = JSON.stringify([lines, status]);
		if (text === shown) return;
		shown = text;
		ui.ui.setWidget(WIDGET, lines.length ? lines : undefined);
		ui.ui.setStatus(WIDGET, status || undefined);
	};

	/** A coordinator is woken by a completion. Inside a lieutenant (REEF_LIEUTENANT) the
	 * operator alone starts runs, one per task, so a child's completion joins the run in
	 * progress or waits for the lieutenant's next task: a run nobody asked for would have
	 * no task to belong to. */
	const insideLieutenant = Boolean(process.env.REEF_LIEUTENANT);
	const deliver = (done: Finished): void => {
		delivered.add(done.key);
		const message = { customType: MESSAGE_TYPE, content: completionText(done), display: true, details: done };
		if (!insideLieutenant) pi.sendMessage(message, { triggerTurn: true, deliverAs: "followUp" });
		else if (ui && !ui.isIdle()) pi.sendMessage(message, { deliverAs: "followUp" });
		else pi.sendMessage(message, { deliverAs: "nextTurn" });
	};

	const seen = (lieutenant: Obj): void => {
		known.set(String(lieutenant.metadata.name), lieutenant);
		if (managed(lieutenant)) {
			for (const done of finishedTasks(lieutenant)) if (!delivered.has(done.key)) deliver(done);
		}
		showWidget();
	};

	/** Manage a lieutenant not created here; its tasks that already ended are not announced. */
	const adopt = (lieutenant: Obj): void => {
		const name = String(lieutenant.metadata.name);
		const finished = finishedTasks(lieutenant).map((f) => f.key);
		pi.appendEntry(ADOPTED_TYPE, { name, uid: lieutenant.metadata.uid, finished });
		adopted.set(name, String(lieutenant.metadata.uid));
		for (const key of finished) delivered.add(key);
		known.set(name, lieutenant);
	};

	pi.on("session_start", async (_event, ctx) => {
		adopted.clear();
		delivered.clear();
		known.clear();
		shown = "";
		coordinator =
			labelValue(process.env.REEF_COORDINATOR ?? "") ||
			labelValue(process.env.REEF_LIEUTENANT ?? "") ||
			labelValue(ctx.sessionManager.getSessionId());
		for (const entry of ctx.sessionManager.getEntries() as Obj[]) {
			if (entry.type === "custom_message" && entry.customType === MESSAGE_TYPE && entry.details?.key) {
				delivered.add(String(entry.details.key));
			} else if (entry.type === "custom" && entry.customType === ADOPTED_TYPE && entry.data?.name) {
				adopted.set(String(entry.data.name), String(entry.data.uid));
				for (const key of entry.data.finished ?? []) delivered.add(String(key));
			}
		}
		ui = ctx;
		// Only a pi that stays up can act on completions: print and JSON mode run the tools only.
		if (!ctx.hasUI) return;
		let kubeClient: Kube;
		try {
			kubeClient = client();
		} catch (error) {
			ctx.ui.notify((error as Error).message, "warning");
			return;
		}
		watch = new LieutenantWatch(kubeClient, {
			seen,
			gone: (lt) => {
				known.delete(String(lt.metadata.name));
				showWidget();
			},
			listed: (items) => {
				known.clear();
				for (const lt of items) known.set(String(lt.metadata.name), lt);
			},
			failed: (message) => {
				shown = ""; // shown again once the watch is back
				ctx.ui.setStatus(WIDGET, `lieutenants: ${message}; reconnecting`);
			},
		});
		watch.start();
	});

	pi.on("session_shutdown", async () => {
		watch?.stop();
		watch = undefined;
		ui = undefined;
	});

	pi.registerMessageRenderer(MESSAGE_TYPE, (message, _options, theme) => {
		const details = (message.details ?? {}) as Partial<Finished>;
		const icon = details.phase === "Succeeded" ? "✅" : "⚠️";
		return new Text(`${icon} ${theme.fg("accent", String(message.content))}`, 0, 0);
	});

	const result = (text: string, details: Obj) => ({ content: [{ type: "text" as const, text }], details });
	const refreshed = async (): Promise<void> => {
		for (const lt of await listLieutenants(client())) known.set(String(lt.metadata.name), lt);
		showWidget();
	};

	pi.registerTool({
		name: "vers_lt_create",
		label: "Create lieutenant",
		description:
			"Create a lieutenant: a persistent pi agent with a name and a role on its own VM (a Lieutenant object; " +
			"reef-operator boots it). It then takes tasks with vers_lt_send; when a task ends you get a message.",
		promptSnippet: "Create a persistent lieutenant agent (name, role) on its own VM",
		promptGuidelines: [
			"Use vers_lt_create for long-lived work that builds on itself, then vers_lt_send for each step.",
		],
		parameters: Type.Object({
			name: Type.String({ description: "Unique name (a DNS label: lower-case letters, digits, '-')" }),
			role: Type.String({ description: "The lieutenant's job; becomes part of its system prompt" }),
			model: Type.Optional(Type.String({ description: "PROVIDER/ID, e.g. anthropic/claude-sonnet-4-5 (default: the operator's)" })),
			commitId: Type.Optional(Type.String({ description: "Commit (golden image or checkpoint) to boot from" })),
			profile: Type.Optional(Type.String({ description: "BootProfile name (default: the operator's)" })),
			credentials: Type.Optional(Type.String({ description: "Secret (labelled reef.vers.sh/agent-credentials=true) whose keys become the agent's environment" })),
			providers: Type.Optional(Type.String({ description: "ConfigMap holding pi's models.json for custom model providers" })),
			instructions: Type.Optional(Type.String({ description: "Extra system-prompt text" })),
		}),
		async execute(_id, params) {
			if (!coordinator) throw new ToolError("pi-reef has no coordinator id: set REEF_COORDINATOR (letters, digits, '-')");
			const made = await create(client(), params, coordinator, process.env.REEF_LIEUTENANT ?? "");
			known.set(params.name, made);
			showWidget();
			return result(
				`Lieutenant "${params.name}" created in namespace ${client().namespace} (Role: ${params.role}). ` +
					"The operator is booting its VM; send it tasks now: they run once it is ready.",
				{ ...summary(made), namespace: client().namespace },
			);
		},
	});

	pi.registerTool({
		name: "vers_lt_send",
		label: "Send to lieutenant",
		description:
			"Send a lieutenant a task (appended to its spec.tasks). mode: prompt (default; while it works, it runs next), " +
			"steer (interrupts and redirects the current work) or followUp (queued after the current work).",
		promptSnippet: "Send a task to a lieutenant (prompt, steer or followUp)",
		parameters: Type.Object({
			name: Type.String({ description: "The lieutenant" }),
			message: Type.String({ description: "What it should do" }),
			mode: Type.Optional(StringEnum(TASK_MODES, { description: "prompt (default), steer or followUp" })),
		}),
		async execute(_id, params) {
			const kubeClient = client();
			const lieutenant = await getLieutenant(kubeClient, params.name);
			const sent = await send(kubeClient, params.name, params.message, params.mode ?? "prompt");
			if (!managed(lieutenant)) adopt(lieutenant);
			const preview = params.message.length > 80 ? `${params.message.slice(0, 79)}…` : params.message;
			const note = sent.notes.length ? ` (${sent.notes.join("; ")})` : "";
			await refreshed();
			return result(`Sent to ${params.name} (${sent.mode})${note}: "${preview}" as task ${sent.task}`, {
				name: params.name,
				...sent,
			});
		},
	});

	pi.registerTool({
		name: "vers_lt_read",
		label: "Read lieutenant",
		description:
			"Read a lieutenant's output: the live output while it works, else its last response. tail: only the last N " +
			"characters. history: the last N responses (=== Response i ===), then the current state.",
		parameters: Type.Object({
			name: Type.String({ description: "The lieutenant" }),
			tail: Type.Optional(Type.Integer({ minimum: 0, description: "Only the last N characters" })),
			history: Type.Optional(Type.Integer({ minimum: 0, description: "The last N completed responses" })),
		}),
		async execute(_id, params) {
			const lieutenant = await getLieutenant(client(), params.name);
			const status = lieutenant.status ?? {};
			const text = readText(lieutenant, params.tail, params.history);
			return result(text, {
				name: params.name,
				status: status.phase ?? "Pending",
				taskCount: status.taskCount ?? 0,
				outputLength: String(status.currentTask?.output ?? "").length,
				historyCount: (status.history ?? []).length,
			});
		},
	});

	pi.registerTool({
		name: "vers_lt_status",
		label: "Lieutenants",
		description: "Overview of the lieutenants this coordinator manages: phase, role, VM, tasks, last activity.",
		parameters: Type.Object({}),
		async execute() {
			await refreshed();
			const all = [...known.values()];
			const mine = all.filter(managed).sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
			const others = all.length - mine.length;
			const more = others ? `\n(${others} other lieutenant${others > 1 ? "s" : ""} in namespace ${client().namespace}: vers_lt_discover adopts them)` : "";
			const text = mine.length ? mine.map(statusLine).join("\n") + more : `No lieutenants active.${more}`;
			return result(text, { namespace: client().namespace, coordinator, lieutenants: mine.map(summary), others });
		},
	});

	pi.registerTool({
		name: "vers_lt_pause",
		label: "Pause lieutenant",
		description: "Pause a lieutenant (spec.state Paused): after its current task its VM freezes with the agent's memory.",
		parameters: Type.Object({ name: Type.String({ description: "The lieutenant" }) }),
		async execute(_id, params) {
			const text = await setState(client(), params.name, "Paused");
			await refreshed();
			return result(text, { name: params.name, state: "Paused" });
		},
	});

	pi.registerTool({
		name: "vers_lt_resume",
		label: "Resume lieutenant",
		description: "Resume a paused lieutenant (spec.state Running): the VM thaws and the conversation goes on.",
		parameters: Type.Object({ name: Type.String({ description: "The lieutenant" }) }),
		async execute(_id, params) {
			const text = await setState(client(), params.name, "Running");
			await refreshed();
			return result(text, { name: params.name, state: "Running" });
		},
	});

	pi.registerTool({
		name: "vers_lt_destroy",
		label: "Destroy lieutenant",
		description:
			"Destroy a lieutenant (spec.state Destroyed): the agent stops and its VM is deleted; the object and its " +
			"history stay readable. name '*' destroys every lieutenant this coordinator manages, and nothing else.",
		parameters: Type.Object({ name: Type.String({ description: "The lieutenant, or '*'" }) }),
		async execute(_id, params) {
			const kubeClient = client();
			let targets: Obj[];
			if (params.name === "*") {
				targets = (await listLieutenants(kubeClient)).filter(managed);
				if (!targets.length) return result("No lieutenants to destroy: this coordinator manages none.", { destroyed: [] });
			} else {
				targets = [await getLieutenant(kubeClient, params.name)];
			}
			const lines: string[] = [];
			for (const lieutenant of targets) lines.push(await destroy(kubeClient, lieutenant));
			await refreshed();
			return result(lines.join("\n"), { destroyed: targets.map((t) => t.metadata.name) });
		},
	});

	pi.registerTool({
		name: "vers_lt_discover",
		label: "Discover lieutenants",
		description:
			"Find the lieutenants in the namespace and manage the ones no other coordinator manages (after a restart, " +
			"or ones made with kubectl): their later completions come to you. Tasks they already finished are not announced.",
		parameters: Type.Object({}),
		async execute() {
			const kubeClient = client();
			const lines: string[] = [];
			const rows: Obj[] = [];
			for (const lieutenant of await listLieutenants(kubeClient)) {
				const name = String(lieutenant.metadata.name);
				const owner = lieutenant.metadata.labels?.[COORDINATOR_LABEL];
				let outcome: string;
				if (managed(lieutenant)) outcome = "already managed";
				else if (owner) outcome = `managed by coordinator ${owner}, skipping`;
				else if (desiredState(lieutenant) === "Destroyed") outcome = "destroyed, skipping";
				else {
					adopt(lieutenant);
					outcome = "adopted";
				}
				known.set(name, lieutenant);
				const phase = String(lieutenant.status?.phase ?? "Pending").toLowerCase();
				lines.push(`${name}: ${outcome} (${phase})`);
				rows.push({ name, outcome, phase });
			}
			showWidget();
			return result(lines.length ? lines.join("\n") : `No lieutenants in namespace ${kubeClient.namespace}.`, {
				namespace: kubeClient.namespace,
				lieutenants: rows,
			});
		},
	});
}
