/**
 * The Kubernetes API as the user's kubeconfig reaches it: node's https, nothing else.
 *
 * The kubeconfig is KUBECONFIG (the first file of a colon-separated list that names a
 * current context; the others lend it clusters and users by name) or ~/.kube/config. Its
 * current context gives the server, the user and the namespace; REEF_NAMESPACE overrides
 * the namespace. A user is a client certificate (file or data), a bearer `token`, or a
 * `tokenFile`: the file is read on every request, because on a lieutenant's VM the operator
 * rotates the token in it. Exec plugins and auth providers are refused with a message.
 */
import { readFileSync } from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import { homedir } from "node:os";
import { dirname, isAbsolute, join } from "node:path";
import { parse } from "yaml";

export type Obj = Record<string, any>;

/** An answer of the apiserver other than 2xx: its HTTP status and its own message. */
export class KubeError extends Error {
	constructor(
		readonly status: number,
		message: string,
		readonly reason: string = "",
	) {
		super(message);
	}
}

interface Connection {
	server: URL;
	namespace: string;
	ca?: Buffer;
	insecure: boolean;
	cert?: Buffer;
	key?: Buffer;
	token?: string;
	tokenFile?: string;
}

const MAX_BODY = 16 * 1024 * 1024; // an answer larger than this is refused, not held
const MAX_WATCH_LINE = 4 * 1024 * 1024; // one watch event (a Lieutenant is under 512 KiB)

export function kubeconfigPaths(env: NodeJS.ProcessEnv = process.env): string[] {
	const list = (env.KUBECONFIG ?? "").split(":").filter((p) => p);
	return list.length ? list : [join(homedir(), ".kube", "config")];
}

export function loadConnection(env: NodeJS.ProcessEnv = process.env): Connection {
	const files: { path: string; config: Obj }[] = [];
	for (const path of kubeconfigPaths(env)) {
		let text: string;
		try {
			text = readFileSync(path, "utf8");
		} catch (error) {
			if (env.KUBECONFIG) continue; // kubectl skips missing files of a list
			throw new Error(`no kubeconfig: cannot read ${path} (${(error as Error).message}); set KUBECONFIG`);
		}
		files.push({ path, config: (parse(text) as Obj) ?? {} });
	}
	if (!files.length) throw new Error(`no kubeconfig: none of KUBECONFIG=${env.KUBECONFIG} can be read`);
	const first = files.find((f) => f.config["current-context"]);
	if (!first) throw new Error(`kubeconfig ${files[0].path} has no current-context: run kubectl config use-context`);
	const contextName = String(first.config["current-context"]);
	const named = (section: string, name: string): { value: Obj; base: string } => {
		for (const f of files) {
			const found = ((f.config[section] as Obj[]) ?? []).find((e) => e?.name === name);
			if (found) return { value: (found[section.slice(0, -1)] as Obj) ?? {}, base: dirname(f.path) };
		}
		throw new Error(`kubeconfig: ${section.slice(0, -1)} "${name}" (of context "${contextName}") is not defined`);
	};
	const context = named("contexts", contextName).value;
	const cluster = named("clusters", String(context.cluster ?? ""));
	const user = context.user ? named("users", String(context.user)) : { value: {}, base: "" };
	if (user.value.exec || user.value["auth-provider"]) {
		throw new Error(
			`kubeconfig user "${context.user}" uses an exec plugin or auth provider, which pi-reef does not run: ` +
				"use a user with a token, a tokenFile or a client certificate",
		);
	}
	const file = (base: string, path: unknown): string => (isAbsolute(String(path)) ? String(path) : join(base, String(path)));
	const material = (entry: { value: Obj; base: string }, key: string): Buffer | undefined => {
		if (entry.value[`${key}-data`]) return Buffer.from(String(entry.value[`${key}-data`]), "base64");
		if (entry.value[key]) return readFileSync(file(entry.base, entry.value[key]));
		return undefined;
	};
	if (!cluster.value.server) throw new Error(`kubeconfig: cluster "${context.cluster}" has no server`);
	return {
		server: new URL(String(cluster.value.server)),
		namespace: env.REEF_NAMESPACE || String(context.namespace || "default"),
		ca: material(cluster, "certificate-authority"),
		insecure: Boolean(cluster.value["insecure-skip-tls-verify"]),
		cert: material(user, "client-certificate"),
		key: material(user, "client-key"),
		token: user.value.token ? String(user.value.token) : undefined,
		tokenFile: user.value.tokenFile ? file(user.base, user.value.tokenFile) : undefined,
	};
}

export class Kube {
	readonly namespace: string;

	constructor(private readonly connection: Connection) {
		this.namespace = connection.namespace;
	}

	static fromEnvironment(env: NodeJS.ProcessEnv = process.env): Kube {
		return new Kube(loadConnection(env));
	}

	/** The path of a reef kind's collection or object in the namespace. */
	path(plural: string, name?: string, query = ""): string {
		const base = `/apis/reef.vers.sh/v1alpha1/namespaces/${encodeURIComponent(this.namespace)}/${plural}`;
		return (name ? `${base}/${encodeURIComponent(name)}` : base) + (query ? `?${query}` : "");
	}

	async get(plural: string, name: string): Promise<Obj> {
		return this.request("GET", this.path(plural, name));
	}

	async list(plural: string, labelSelector = ""): Promise<Obj> {
		return this.request("GET", this.path(plural, undefined, labelSelector ? `labelSelector=${encodeURIComponent(labelSelector)}` : ""));
	}

	async create(plural: string, body: Obj): Promise<Obj> {
		return this.request("POST", this.path(plural), body);
	}

	async mergePatch(plural: string, name: string, patch: Obj): Promise<Obj> {
		return this.request("PATCH", this.path(plural, name), patch, "application/merge-patch+json");
	}

	private options(method: string, path: string, headers: Obj): https.RequestOptions {
		const c = this.connection;
		const auth: Obj = {};
		// Read on every request: the operator rotates a lieutenant's token in this file.
		const token = c.tokenFile ? readFileSync(c.tokenFile, "utf8").trim() : c.token;
		if (token) auth.Authorization = `Bearer ${token}`;
		return {
			method,
			protocol: c.server.protocol,
			hostname: c.server.hostname.replace(/^\[|\]$/g, ""),
			port: c.server.port || (c.server.protocol === "https:" ? 443 : 80),
			path: c.server.pathname.replace(/\/$/, "") + path,
			headers: { Accept: "application/json", ...auth, ...headers },
			ca: c.ca,
			cert: c.cert,
			key: c.key,
			rejectUnauthorized: !c.insecure,
		};
	}

	private transport(): typeof https | typeof http {
		return this.connection.server.protocol === "https:" ? https : http;
	}

	async request(method: string, path: string, body?: Obj, contentType = "application/json"): Promise<Obj> {
		const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
		const headers: Obj = payload ? { "Content-Type": contentType, "Content-Length": payload.length } : {};
		return new Promise((resolve, reject) => {
			const request = this.transport().request(this.options(method, path, headers), (response) => {
				const chunks: Buffer[] = [];
				let size = 0;
				response.on("data", (chunk: Buffer) => {
					size += chunk.length;
					if (size > MAX_BODY) {
						response.destroy(new Error(`the apiserver's answer to ${method} ${path} is over ${MAX_BODY} bytes`));
						return;
					}
					chunks.push(chunk);
				});
				response.on("error", reject);
				response.on("end", () => {
					const text = Buffer.concat(chunks).toString("utf8");
					let parsed: Obj = {};
					try {
						parsed = text ? JSON.parse(text) : {};
					} catch {
						parsed = { message: text.slice(0, 500) };
					}
					const status = response.statusCode ?? 0;
					if (status >= 200 && status < 300) resolve(parsed);
					else reject(new KubeError(status, String(parsed.message ?? `HTTP ${status}`), String(parsed.reason ?? "")));
				});
			});
			request.on("error", reject);
			request.setTimeout(30_000, () => request.destroy(new Error(`${method} ${path}: no answer from the apiserver in 30 s`)));
			if (payload) request.write(payload);
			request.end();
		});
	}

	/**
	 * One watch of a collection from `resourceVersion`: calls `onEvent` per event until the
	 * server ends the stream (it does, after its timeout) or `signal` aborts. Resolves when
	 * the stream ends; rejects with KubeError 410 when the version is too old (list again).
	 */
	watch(plural: string, resourceVersion: string, onEvent: (type: string, object: Obj) => void, signal: AbortSignal): Promise<void> {
		const query = `watch=1&allowWatchBookmarks=true&resourceVersion=${encodeURIComponent(resourceVersion)}`;
		return new Promise((resolve, reject) => {
			if (signal.aborted) return resolve();
			const request = this.transport().request(this.options("GET", this.path(plural, undefined, query), {}), (response) => {
				if ((response.statusCode ?? 0) >= 300) {
					response.resume();
					reject(new KubeError(response.statusCode ?? 0, `watch ${plural}: HTTP ${response.statusCode}`));
					return;
				}
				let pending = "";
				response.setEncoding("utf8");
				response.on("data", (chunk: string) => {
					pending += chunk;
					if (pending.length > MAX_WATCH_LINE && !pending.includes("\n")) {
						response.destroy(new Error(`watch ${plural}: an event over ${MAX_WATCH_LINE} bytes`));
						return;
					}
					let end: number;
					while ((end = pending.indexOf("\n")) >= 0) {
						const line = pending.slice(0, end);
						pending = pending.slice(end + 1);
						if (!line.trim()) continue;
						const event = JSON.parse(line) as Obj;
						if (event.type === "ERROR") {
							const status = Number(event.object?.code ?? 500);
							response.destroy();
							reject(new KubeError(status, String(event.object?.message ?? "watch error")));
							return;
						}
						onEvent(String(event.type), event.object as Obj);
					}
				});
				response.on("end", () => resolve());
				response.on("error", reject);
			});
			const stop = () => {
				request.destroy();
				resolve();
			};
			signal.addEventListener("abort", stop, { once: true });
			request.on("error", (error) => (signal.aborted ? resolve() : reject(error)));
			request.on("close", () => signal.removeEventListener("abort", stop));
			request.end();
		});
	}
}
