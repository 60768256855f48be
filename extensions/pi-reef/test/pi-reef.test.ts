/**
 * The pure parts of pi-reef: kubeconfig reading, task names, the read format, completion
 * keys and texts. Run by tests/integration/test_pi_reef_typescript.py (tsc, then node --test).
 */
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { completionText, finishedTasks } from "../completions.ts";
import { Kube, loadConnection, type Obj } from "../kube.ts";
import { create, historyBlocks, labelValue, nextTaskName, readText, send } from "../lieutenants.ts";
import { LieutenantWatch } from "../watch.ts";

function kubeconfig(dir: string, name: string, body: object): string {
	const path = join(dir, name);
	writeFileSync(path, JSON.stringify(body)); // JSON is YAML
	return path;
}

const CLUSTER = { name: "c", cluster: { server: "https://127.0.0.1:6443", "insecure-skip-tls-verify": true } };

test("the namespace is REEF_NAMESPACE, else the context's, else default", () => {
	const dir = mkdtempSync(join(tmpdir(), "pi-reef-"));
	const path = kubeconfig(dir, "config", {
		"current-context": "a",
		clusters: [CLUSTER],
		users: [{ name: "u", user: { token: "t" } }],
		contexts: [
			{ name: "a", context: { cluster: "c", user: "u", namespace: "team-a" } },
			{ name: "b", context: { cluster: "c", user: "u" } },
		],
	});
	assert.equal(loadConnection({ KUBECONFIG: path }).namespace, "team-a");
	assert.equal(loadConnection({ KUBECONFIG: path, REEF_NAMESPACE: "other" }).namespace, "other");
	const plain = kubeconfig(dir, "plain", {
		"current-context": "b",
		clusters: [CLUSTER],
		users: [{ name: "u", user: { token: "t" } }],
		contexts: [{ name: "b", context: { cluster: "c", user: "u" } }],
	});
	assert.equal(loadConnection({ KUBECONFIG: plain }).namespace, "default");
});

test("a KUBECONFIG list: the first file with a current context, users from the others", () => {
	const dir = mkdtempSync(join(tmpdir(), "pi-reef-"));
	const users = kubeconfig(dir, "users", { users: [{ name: "u", user: { tokenFile: "token" } }] });
	const main = kubeconfig(dir, "main", {
		"current-context": "a",
		clusters: [CLUSTER],
		contexts: [{ name: "a", context: { cluster: "c", user: "u" } }],
	});
	const connection = loadConnection({ KUBECONFIG: `${join(dir, "missing")}:${main}:${users}` });
	assert.equal(connection.tokenFile, join(dir, "token")); // relative to the file naming it
	assert.equal(connection.server.host, "127.0.0.1:6443");
});

test("an exec user is refused with what works instead", () => {
	const dir = mkdtempSync(join(tmpdir(), "pi-reef-"));
	const path = kubeconfig(dir, "config", {
		"current-context": "a",
		clusters: [CLUSTER],
		users: [{ name: "u", user: { exec: { command: "aws" } } }],
		contexts: [{ name: "a", context: { cluster: "c", user: "u" } }],
	});
	assert.throws(() => loadConnection({ KUBECONFIG: path }), /exec plugin .* use a user with a token, a tokenFile or a client certificate/);
});

test("task names follow the highest used, pruned ones included, never reused", () => {
	assert.equal(nextTaskName(new Set()), "task-1");
	assert.equal(nextTaskName(new Set(["task-1", "task-7"])), "task-8");
	assert.equal(nextTaskName(new Set(["scaffold", "database"])), "task-3");
});

test("a coordinator id becomes a label value", () => {
	assert.equal(labelValue("019ad5c4-16fd-73f4-998d-d80fa5fad9fc"), "019ad5c4-16fd-73f4-998d-d80fa5fad9fc");
	assert.equal(labelValue("--my coordinator!"), "my-coordinator");
	assert.equal(labelValue("x".repeat(80)).length, 63);
	assert.equal(labelValue("!!!"), "");
});

const API = {
	metadata: { name: "api", uid: "u-1" },
	spec: { role: "Build the API" },
	status: {
		phase: "Working",
		taskCount: 3,
		currentTask: { name: "task-3", output: "adding routes" },
		tasks: [
			{ name: "task-1", phase: "Succeeded" },
			{ name: "task-2", phase: "Failed", note: "the model answered with an error" },
			{ name: "task-3", phase: "Running" },
		],
		history: [{ task: "task-1", stopReason: "stop", response: "Scaffolded the server." }],
	},
};

test("read: the seed's history blocks, then the current state", () => {
	assert.equal(
		historyBlocks(API, 5),
		"=== Response 1 ===\n(task task-1, stop)\nScaffolded the server.\n\n=== Current (working: task-3) ===\nadding routes",
	);
	assert.equal(readText(API, 6), "[api] (working, 3 tasks):\nroutes"); // tail: the last 6 characters
	const huge = { ...API, status: { ...API.status, currentTask: { name: "t", output: `${"y".repeat(60_000)}END` } } };
	assert.match(readText(huge), /^\[api\] \(working, 3 tasks\):\n\[the last 50000 of 60003 characters; ask for fewer with history or tail\]\ny+END$/);
	assert.equal(readText(huge).length, 50_000 + 99); // the header, the note and the last 50000
});

test("finished tasks: one key per lieutenant uid and task, the answer and the note", () => {
	const done = finishedTasks(API);
	assert.deepEqual(
		done.map((d) => [d.key, d.phase]),
		[
			["u-1/task-1", "Succeeded"],
			["u-1/task-2", "Failed"],
		],
	);
	assert.equal(
		completionText(done[0]),
		'Lieutenant api finished task task-1: it succeeded (3 tasks so far).\nAnswer (end): Scaffolded the server.\nRead it whole with vers_lt_read (name "api").',
	);
	assert.match(completionText(done[1]), /task task-2: it failed .*\nNote: the model answered with an error\n/);
	const long = completionText({ ...done[0], answer: `${"x".repeat(1000)}END` });
	assert.ok(long.includes(`Answer (end): …${"x".repeat(597)}END\n`));
});

/** A fake apiserver over http: records each request; `answer` decides each reply. */
async function fakeApiserver(answer: (url: URL, response: ServerResponse, index: number) => void) {
	const seen: { url: URL; authorization: string }[] = [];
	const server = createServer((request, response) => {
		const url = new URL(request.url ?? "/", "http://fake");
		seen.push({ url, authorization: String(request.headers.authorization ?? "") });
		answer(url, response, seen.length - 1);
	});
	await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
	const port = (server.address() as AddressInfo).port;
	const dir = mkdtempSync(join(tmpdir(), "pi-reef-"));
	writeFileSync(join(dir, "token"), "first\n");
	const path = kubeconfig(dir, "config", {
		"current-context": "a",
		clusters: [{ name: "c", cluster: { server: `http://127.0.0.1:${port}` } }],
		users: [{ name: "u", user: { tokenFile: join(dir, "token") } }],
		contexts: [{ name: "a", context: { cluster: "c", user: "u", namespace: "ns" } }],
	});
	return { server, seen, dir, kube: Kube.fromEnvironment({ KUBECONFIG: path }) };
}

function lieutenant(name: string, version: string): object {
	return { metadata: { name, uid: `uid-${name}`, resourceVersion: version } };
}

test("the token file is read again for every request", async () => {
	const fake = await fakeApiserver((_url, response) => response.end(JSON.stringify({ items: [] })));
	try {
		await fake.kube.list("lieutenants");
		writeFileSync(join(fake.dir, "token"), "rotated\n");
		await fake.kube.list("lieutenants");
		assert.deepEqual(fake.seen.map((s) => s.authorization), ["Bearer first", "Bearer rotated"]);
	} finally {
		fake.server.close();
	}
});

test("the watch goes on after the server ends it, and lists again after 410 Gone", async () => {
	// list (v1) → watch from v1: one event, then the server ends the stream → watch from v2:
	// 410 Gone → list again (v9) → watch from v9, held open until the test stops it.
	const fake = await fakeApiserver((url, response, index) => {
		const watching = url.searchParams.get("watch") === "1";
		if (!watching) {
			const version = index === 0 ? "1" : "9";
			response.end(JSON.stringify({ metadata: { resourceVersion: version }, items: [lieutenant(`listed-${version}`, version)] }));
		} else if (url.searchParams.get("resourceVersion") === "1") {
			response.end(`${JSON.stringify({ type: "MODIFIED", object: lieutenant("api", "2") })}\n`);
		} else if (url.searchParams.get("resourceVersion") === "2") {
			response.end(`${JSON.stringify({ type: "ERROR", object: { code: 410, message: "too old resource version" } })}\n`);
		} else {
			response.write(`${JSON.stringify({ type: "DELETED", object: lieutenant("api", "10") })}\n`);
		}
	});
	const events: string[] = [];
	let stopped: () => void = () => {};
	const done = new Promise<void>((resolve) => (stopped = resolve));
	const watch = new LieutenantWatch(fake.kube, {
		listed: (items) => events.push(`listed ${items.map((i) => i.metadata.name).join(",")}`),
		seen: (lt) => events.push(`seen ${lt.metadata.name}`),
		gone: (lt) => {
			events.push(`gone ${lt.metadata.name}`);
			stopped();
		},
		failed: (message) => events.push(`failed ${message}`),
	});
	try {
		watch.start();
		await done;
		assert.deepEqual(events, ["listed listed-1", "seen listed-1", "seen api", "listed listed-9", "seen listed-9", "gone api"]);
		assert.deepEqual(
			fake.seen.map((s) => `${s.url.searchParams.get("watch") ?? "list"}@${s.url.searchParams.get("resourceVersion") ?? ""}`),
			["list@", "1@1", "1@2", "list@", "1@9"],
		);
		assert.ok(fake.seen.every((s) => s.url.pathname === "/apis/reef.vers.sh/v1alpha1/namespaces/ns/lieutenants"));
	} finally {
		watch.stop();
		fake.server.closeAllConnections();
		fake.server.close();
	}
});

test("create: the coordinator's label, and a lieutenant's child names it as parent", async () => {
	const bodies: Obj[] = [];
	const fake = await fakeApiserver((_url, response) => response.end(JSON.stringify({ metadata: { name: "w" } })));
	const server = fake.server;
	server.removeAllListeners("request");
	server.on("request", (request, response) => {
		let text = "";
		request.on("data", (chunk) => (text += chunk));
		request.on("end", () => {
			bodies.push(JSON.parse(text));
			response.end(text);
		});
	});
	try {
		await create(fake.kube, { name: "worker", role: "Build one module", model: "scripted/scripted-1" }, "lead", "lead");
		await create(fake.kube, { name: "solo", role: "r" }, "session-1");
		assert.deepEqual(bodies[0].metadata, { name: "worker", labels: { "reef.vers.sh/coordinator": "lead" } });
		assert.deepEqual(bodies[0].spec, {
			role: "Build one module",
			parentRef: { kind: "Lieutenant", name: "lead" },
			model: { provider: "scripted", id: "scripted-1" },
		});
		assert.equal(bodies[1].spec.parentRef, undefined);
		await assert.rejects(create(fake.kube, { name: "x", role: "r", model: "claude" }, "c"), /model "claude": expected PROVIDER\/ID/);
	} finally {
		server.close();
	}
});

test("send: a new task name, its mode, retried after a conflict; paused and destroyed refuse", async () => {
	let state = "Running";
	const patches: Obj[] = [];
	const fake = await fakeApiserver(() => {});
	fake.server.removeAllListeners("request");
	fake.server.on("request", (request, response) => {
		let text = "";
		request.on("data", (chunk) => (text += chunk));
		request.on("end", () => {
			if (request.method === "GET") {
				response.end(JSON.stringify({
					metadata: { name: "api", resourceVersion: String(10 + patches.length) },
					spec: { state, tasks: [{ name: "task-1", message: "a" }] },
					status: { phase: "Working", history: [{ task: "task-2" }] }, // task-2 was pruned
				}));
				return;
			}
			patches.push(JSON.parse(text));
			response.statusCode = patches.length === 1 ? 409 : 200; // someone else wrote first
			response.end(JSON.stringify(patches.length === 1 ? { message: "conflict", reason: "Conflict" } : {}));
		});
	});
	try {
		const sent = await send(fake.kube, "api", "Stop adding Prisma.", "steer");
		assert.deepEqual(sent, { task: "task-3", mode: "steer", notes: [] });
		assert.equal(patches.length, 2);
		assert.deepEqual(patches[1], {
			metadata: { resourceVersion: "11" },
			spec: { tasks: [{ name: "task-1", message: "a" }, { name: "task-3", message: "Stop adding Prisma.", mode: "steer" }] },
		});
		const queued = await send(fake.kube, "api", "Next step.", "prompt");
		assert.deepEqual(queued.notes, ["the lieutenant is working: it runs when the current task ends"]);
		state = "Paused";
		await assert.rejects(send(fake.kube, "api", "x", "prompt"), /lieutenant api is paused: resume it first \(vers_lt_resume\)/);
		state = "Destroyed";
		await assert.rejects(send(fake.kube, "api", "x", "prompt"), /lieutenant api is Destroyed: it takes no more tasks/);
		await assert.rejects(send(fake.kube, "api", "x", "later"), /mode "later": expected one of prompt, steer, followUp/);
	} finally {
		fake.server.close();
	}
});
