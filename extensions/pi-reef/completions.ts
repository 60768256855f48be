/**
 * Which finished tasks the coordinator has yet to hear about, and the message it hears.
 *
 * A task's key is `<lieutenant uid>/<task name>`: a task name runs once in a lieutenant
 * (the operator and its admission webhook hold this), and a lieutenant deleted and created
 * again under the same name has another uid. The ledger of delivered keys is the session
 * itself (see index.ts): a completion message carries its key in `details`, so once pi has
 * stored the message the key is known delivered, also to the next pi on that session.
 */
import type { Obj } from "./kube.ts";
import { FINISHED } from "./lieutenants.ts";

export const MESSAGE_TYPE = "reef-lieutenant-finished";
export const ADOPTED_TYPE = "reef-lieutenant-adopted";
const SUMMARY_CHARS = 600; // of the answer, in the message (the whole one: vers_lt_read)

export interface Finished {
	key: string;
	lieutenant: string;
	role: string;
	task: string;
	phase: string;
	stopReason: string;
	answer: string;
	note: string;
	taskCount: number;
}

export function taskKey(lieutenant: Obj, task: string): string {
	return `${lieutenant.metadata.uid}/${task}`;
}

/** The tasks of `lieutenant` that have ended (Succeeded, Failed, Aborted), oldest first. */
export function finishedTasks(lieutenant: Obj): Finished[] {
	const status = lieutenant.status ?? {};
	const answers = new Map<string, Obj>();
	for (const h of status.history ?? []) if (h.task) answers.set(String(h.task), h);
	const found: Finished[] = [];
	for (const t of status.tasks ?? []) {
		if (!FINISHED.includes(String(t.phase))) continue;
		const answer = answers.get(String(t.name));
		found.push({
			key: taskKey(lieutenant, String(t.name)),
			lieutenant: String(lieutenant.metadata.name),
			role: String(lieutenant.spec?.role ?? ""),
			task: String(t.name),
			phase: String(t.phase),
			stopReason: String(answer?.stopReason ?? ""),
			answer: String(answer?.response ?? ""),
			note: String(t.note ?? ""),
			taskCount: Number(status.taskCount ?? 0),
		});
	}
	return found;
}

function shortened(text: string): string {
	const flat = text.trim();
	return flat.length > SUMMARY_CHARS ? `…${flat.slice(-SUMMARY_CHARS)}` : flat;
}

/** The follow-up the coordinator reads: who, which task, how it ended, the answer's end. */
export function completionText(done: Finished): string {
	const outcome = done.phase === "Succeeded" ? "succeeded" : done.phase === "Failed" ? "failed" : "was aborted";
	const lines = [`Lieutenant ${done.lieutenant} finished task ${done.task}: it ${outcome} (${done.taskCount} tasks so far).`];
	if (done.answer) lines.push(`Answer (end): ${shortened(done.answer)}`);
	if (done.note) lines.push(`Note: ${shortened(done.note)}`);
	lines.push(`Read it whole with vers_lt_read (name "${done.lieutenant}").`);
	return lines.join("\n");
}
