// kubectl reef dashboard: polls the plugin's read-only JSON and draws it.
// Text from the cluster is only ever set as text (never parsed as HTML): a model's answer
// may contain anything.
"use strict";

const POLL_MS = 1000;
let fleet = null;          // the last /api/fleet answer
let selected = null;       // "namespace/name" of the lieutenant shown in detail
let recordsRead = null;    // what the records table was read for: lieutenant and tasks ended
let openRecord = null;     // the task whose record is shown
const drawn = {};          // what each part of the page was last drawn from

// Redraw a part only when its data changed, so scrolling and selecting text in it survive
// the polling.
function changed(part, data) {
  const text = JSON.stringify(data);
  if (drawn[part] === text) return false;
  drawn[part] = text;
  return true;
}

function el(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes || {})) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const FETCH_TIMEOUT_MS = 20000;   // the server gives the apiserver 15 s per read

async function getJSON(url) {
  const response = await fetch(url, {
    cache: "no-store", signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
  let body = {};
  try { body = await response.json(); } catch (_) { /* not JSON: the status says it */ }
  if (!response.ok) {
    const error = new Error(body.error || `${response.status} ${response.statusText}`);
    error.status = response.status;
    throw error;
  }
  return body;
}

function showProblem(text) {
  const problem = document.getElementById("problem");
  problem.textContent = text;
  problem.hidden = !text;
}

function ago(timestamp) {
  if (!timestamp) return "";
  const seconds = Math.max(0, Math.round((Date.now() - Date.parse(timestamp)) / 1000));
  if (seconds < 60) return `${seconds}s ago`;
  if (seconds < 7200) return `${Math.floor(seconds / 60)}m ago`;
  if (seconds < 172800) return `${Math.floor(seconds / 3600)}h ago`;
  return `${Math.floor(seconds / 86400)}d ago`;
}

// `hold`: the policy holding a lieutenant (IdlePaused, BudgetExhausted, Expired,
// QuotaExceeded) colours its phase its own way: an idle pause is healthy, not a problem.
function phase(text, hold) {
  return el("span", { class: `phase phase-${text}${hold ? ` held-${hold}` : ""}` }, text);
}

// The Ready condition's reason, and for a lieutenant a policy holds, the operator's message.
function reason(lt) {
  return el("td", { class: "reason" }, lt.ready.reason,
    lt.hold && lt.ready.message ? el("div", { class: "note held-message" }, lt.ready.message)
      : null);
}

// -- lieutenants table ------------------------------------------------------------------

function renderLieutenants() {
  const body = document.querySelector("#lieutenants tbody");
  // Redrawn at every poll: its ages move on.
  const rows = fleet.lieutenants.map((lt) => {
    const key = `${lt.namespace}/${lt.name}`;
    const row = el("tr", {
      "data-lieutenant": key, class: key === selected ? "selected" : "",
      onclick: () => { location.hash = `#lieutenant/${key}`; },
    },
    el("td", {}, fleet.namespace ? lt.name : key),
    el("td", { title: lt.ready.message || "" }, phase(lt.phase, lt.hold)), reason(lt),
    el("td", {}, lt.task), el("td", {}, lt.taskCount),
    el("td", { class: "vm" }, lt.vmId), el("td", {}, lt.model),
    el("td", {}, lt.tokens), el("td", {}, `$${lt.cost.toFixed(4)}`),
    el("td", {}, ago(lt.lastActivity)));
    return row;
  });
  body.replaceChildren(...rows);
  document.getElementById("no-lieutenants").hidden = rows.length > 0;
}

// -- one lieutenant -----------------------------------------------------------------------

function selectedFromHash() {
  const match = location.hash.match(/^#lieutenant\/([^/]+)\/([^/]+)$/);
  return match ? `${decodeURIComponent(match[1])}/${decodeURIComponent(match[2])}` : null;
}

function renderDetail(lt) {
  document.getElementById("detail").hidden = false;
  document.getElementById("detail-name").replaceChildren(
    `${lt.name} `, phase(lt.phase, lt.hold));
  document.getElementById("detail-role").textContent = lt.role;
  const ready = lt.ready.reason ? `${lt.ready.reason}: ${lt.ready.message}` : "";
  document.getElementById("detail-state").textContent =
    `desired ${lt.desiredState}; VM ${lt.vmId || "-"} on node ${lt.vmNode || "-"}` +
    (ready ? `; ${ready}` : "");
  if (changed("tasks", lt.tasks)) {
    document.getElementById("detail-tasks").replaceChildren(...lt.tasks.map((task) =>
    el("li", { "data-task": task.name },
      el("strong", {}, task.name), " ", phase(task.phase),
      task.mode !== "prompt" ? ` (${task.mode}) ` : " ",
      task.message.split("\n")[0],
      task.note ? el("div", { class: "note" }, task.note) : null)));
  }

  const live = document.getElementById("live-output");
  const atBottom = live.scrollTop + live.clientHeight >= live.scrollHeight - 4;
  document.getElementById("live-heading").textContent =
    lt.task ? `Live output (${lt.task})` : "Live output (idle)";
  if (live.textContent !== lt.live) live.textContent = lt.live;
  if (atBottom) live.scrollTop = live.scrollHeight;

  if (changed("history", lt.history)) {
    document.getElementById("history").replaceChildren(...lt.history.map((entry, index) =>
      el("div", { class: "response", "data-task": entry.task },
        el("h4", {}, `=== Response ${index + 1} === task ${entry.task}, ` +
          `${entry.stopReason || "stop"}${entry.truncated ? " [truncated]" : ""}, ` +
          `completed ${entry.completedAt || "-"}`),
        el("pre", {}, entry.response || ""))));
  }
}

// -- its records (read when the lieutenant is opened and when one of its tasks ends) -------

function lieutenantPath(key) {
  const [namespace, name] = key.split("/");
  return `api/lieutenants/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`;
}

async function refreshRecords(lt) {
  const ended = lt.tasks.filter((t) => ["Succeeded", "Failed", "Aborted"].includes(t.phase));
  const key = `${selected}:${ended.length}`;
  if (recordsRead === key) return;
  recordsRead = key;
  const forLieutenant = selected;
  const answer = await getJSON(`${lieutenantPath(forLieutenant)}/records`);
  if (forLieutenant !== selected) return;
  const rows = answer.records.map((record) => el("tr", {
    "data-record": record.task, class: record.task === openRecord ? "selected" : "",
    onclick: () => { showRecord(forLieutenant, record.task); },
  },
  el("td", {}, record.task), el("td", {}, phase(record.phase)),
  el("td", {}, record.stopReason), el("td", {}, record.toolCalls),
  el("td", {}, `$${record.cost.toFixed(4)}`), el("td", {}, record.completedAt)));
  document.querySelector("#records tbody").replaceChildren(...rows);
  document.getElementById("no-records").hidden = rows.length > 0;
}

async function showRecord(forLieutenant, task) {
  openRecord = task;
  for (const row of document.querySelectorAll("#records tbody tr")) {
    row.className = row.dataset.record === task ? "selected" : "";
  }
  try {
    const record = await getJSON(
      `${lieutenantPath(forLieutenant)}/records/${encodeURIComponent(task)}`);
    if (forLieutenant !== selected || openRecord !== task) return;
    document.getElementById("record").hidden = false;
    document.getElementById("record-title").textContent =
      `task ${record.task}: ${record.phase}, ${record.stopReason || "stop"}` +
      `${record.truncated ? " [truncated]" : ""}, completed ${record.completedAt || "-"}`;
    document.getElementById("record-message").textContent = record.message || "";
    document.getElementById("record-tools").replaceChildren(...(record.toolCalls || []).map(
      (call) => el("li", { class: call.ok === false ? "note" : "" },
        el("strong", {}, call.name), " ", call.arguments || "",
        call.ok === false ? " (error)" : "")));
    document.getElementById("record-answer").textContent = record.answer || "";
    showProblem("");
  } catch (error) {
    showProblem(error.message);
  }
}

function clearDetail() {
  document.getElementById("detail").hidden = true;
  document.getElementById("record").hidden = true;
  document.querySelector("#records tbody").replaceChildren();
  recordsRead = null;
  openRecord = null;
  document.getElementById("live-output").textContent = "";
  delete drawn.tasks;
  delete drawn.history;
}

// Returns a problem to show, or "".
async function refreshDetail() {
  const wanted = selectedFromHash();
  if (wanted !== selected) {
    selected = wanted;
    clearDetail();
  }
  if (!wanted) return "";
  const [namespace, name] = wanted.split("/");
  try {
    const lt = await getJSON(
      `api/lieutenants/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`);
    if (wanted !== selected) return "";          // an answer for a lieutenant left since
    renderDetail(lt);
    await refreshRecords(lt);
    return "";
  } catch (error) {
    if (error.status !== 404) throw error;
    if (wanted === selected) clearDetail();
    return error.message;
  }
}

// -- the VM tree --------------------------------------------------------------------------

function nodeWords(node) {
  return [node.name, node.category, node.state, node.vmId, node.lieutenant,
    ...node.dna.modules, ...node.dna.capabilities].join(" ").toLowerCase();
}

function matches(node, terms) {
  const words = nodeWords(node);
  return terms.every((term) => words.includes(term));
}

// A branch is drawn when it or something below it matches; ancestors of matches are
// drawn faded, as context.
function drawBranch(node, terms, counter) {
  const hit = terms.length === 0 || matches(node, terms);
  const children = node.children.map((child) => drawBranch(child, terms, counter))
    .filter(Boolean);
  counter.total += 1;
  if (hit) counter.hits += 1;
  if (!hit && children.length === 0) return null;
  const ready = node.ready.status && node.ready.status !== "True" && node.ready.reason
    ? el("span", { class: "badge", title: node.ready.message }, node.ready.reason) : null;
  const genes = [
    ...node.dna.modules.map((m) => el("span", { class: "gene module" }, m)),
    ...node.dna.capabilities.map((c) => el("span", { class: "gene capability" }, c)),
  ];
  const lieutenant = node.lieutenant ? el("a", {
    href: `#lieutenant/${node.namespace}/${node.lieutenant}`,
  }, `lieutenant ${node.lieutenant}`) : null;
  return el("li", {
    "data-vmnode": `${node.namespace}/${node.name}`,
    class: terms.length && hit ? "match" : (terms.length ? "context" : ""),
  },
  el("span", { class: "node" },
    el("strong", { class: "name" }, node.name),
    el("span", { class: "badge" }, node.category),
    el("span", {}, node.state), ready,
    el("span", { class: "vm" }, node.vmId || "-"), lieutenant, ...genes,
    node.repeated ? el("span", { class: "badge" }, "cycle") : null),
  children.length ? el("ul", {}, ...children) : null);
}

function renderTree() {
  if (!fleet) return;
  const query = document.getElementById("find").value.trim().toLowerCase();
  if (!changed("tree", [fleet.tree, query])) return;
  const terms = query ? query.split(/\s+/) : [];
  const counter = { hits: 0, total: 0 };
  const branches = fleet.tree.map((node) => drawBranch(node, terms, counter)).filter(Boolean);
  document.getElementById("tree").replaceChildren(...branches);
  document.getElementById("find-count").textContent = terms.length
    ? `${counter.hits} of ${counter.total} VMs match`
    : `${counter.total} VM${counter.total === 1 ? "" : "s"}`;
}

// -- polling ------------------------------------------------------------------------------

async function refresh() {
  try {
    fleet = await getJSON("api/fleet");
    document.getElementById("where").textContent =
      `${fleet.server}, ${fleet.namespace ? `namespace ${fleet.namespace}` : "all namespaces"}`;
    document.getElementById("read-at").textContent = `read ${fleet.readAt}`;
    renderLieutenants();
    renderTree();
    showProblem(await refreshDetail());
  } catch (error) {
    // fetch rejects with a TypeError when nothing answers (each browser words it its own way)
    showProblem(error instanceof TypeError
      ? "the dashboard stopped (kubectl reef dashboard is not running)"
      : error.name === "TimeoutError" ? "the dashboard did not answer in time"
      : error.message);
  }
}

async function poll() {
  await refresh();
  setTimeout(poll, POLL_MS);
}

window.addEventListener("hashchange", () => { refreshDetail().then(showProblem, () => {}); });
document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("find").addEventListener("input", renderTree);
  poll();
});
