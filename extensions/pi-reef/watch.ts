/**
 * The lieutenants of the namespace, kept current by a Kubernetes list-and-watch that
 * reconnects: after the server ends a watch (it does, every few minutes) it watches again
 * from the last version seen; when that version is too old (410 Gone) or the connection
 * fails it lists again, after a backoff of 1 s doubling to 30 s. Every object seen (in the
 * list or an event) is handed to `seen`; a deleted one to `gone`.
 */
import { type Kube, KubeError, type Obj } from "./kube.ts";
import { PLURAL } from "./lieutenants.ts";

export interface WatchHandlers {
	seen(lieutenant: Obj): void;
	gone(lieutenant: Obj): void;
	listed(lieutenants: Obj[]): void;
	failed(message: string): void;
}

const FIRST_BACKOFF_MS = 1000;
const MAX_BACKOFF_MS = 30_000;

export class LieutenantWatch {
	private readonly abort = new AbortController();

	constructor(
		private readonly kube: Kube,
		private readonly handlers: WatchHandlers,
	) {}

	start(): void {
		void this.run();
	}

	stop(): void {
		this.abort.abort();
	}

	private async run(): Promise<void> {
		const signal = this.abort.signal;
		let backoff = FIRST_BACKOFF_MS;
		while (!signal.aborted) {
			try {
				const listed = await this.kube.list(PLURAL);
				const items = (listed.items as Obj[]) ?? [];
				this.handlers.listed(items);
				for (const item of items) this.handlers.seen(item);
				let version = String(listed.metadata?.resourceVersion ?? "");
				backoff = FIRST_BACKOFF_MS;
				while (!signal.aborted) {
					await this.kube.watch(
						PLURAL,
						version,
						(type, object) => {
							version = String(object.metadata?.resourceVersion ?? version);
							if (type === "DELETED") this.handlers.gone(object);
							else if (type === "ADDED" || type === "MODIFIED") this.handlers.seen(object);
						},
						signal,
					);
				}
			} catch (error) {
				if (signal.aborted) return;
				if (!(error instanceof KubeError && error.status === 410)) {
					this.handlers.failed(`watching lieutenants in ${this.kube.namespace}: ${(error as Error).message}`);
					await delay(backoff, signal);
					backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
				}
			}
		}
	}
}

function delay(ms: number, signal: AbortSignal): Promise<void> {
	return new Promise((resolve) => {
		const timer = setTimeout(resolve, ms);
		signal.addEventListener("abort", () => {
			clearTimeout(timer);
			resolve();
		}, { once: true });
	});
}
