"""kubectl reef dashboard: the lieutenants and the VM tree in a browser, live.

The seed had an HTML dashboard and a visual tree; here the page is served from
the user's own machine and reads the cluster through the same client as every
other command (the user's kubeconfig and RBAC), so it shows exactly what the
user may see and changes nothing. It watches lieutenants and VMNodes
(mirror.py) and answers the page from memory, so open tabs and the page's
one-second polling cost the apiserver nothing more. TaskRecords are not watched
(a lieutenant may keep a thousand, each up to 256 KiB): the page asks for a
lieutenant's list when it opens it or a task ends, and for one record when it
is opened. It listens on loopback unless told
otherwise, answers only requests addressed to the name it listens on (so a web
page elsewhere cannot read it through DNS rebinding) and allows only its own
script to run in the page.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import re
import socket
import sys
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from reef_operator.cli.plugin import fleet, lieutenants, output, records
from reef_operator.cli.plugin.cluster import (
    Cluster,
    NotFound,
    Obj,
    PluginError,
    not_found_message,
)
from reef_operator.cli.plugin.mirror import Mirror

LOOPBACK = ("127.0.0.1", "localhost", "::1")
READ_TIMEOUT = 15.0     # seconds for a list (and for a page's first answer) before it fails
STATIC = {"/": ("dashboard.html", "text/html; charset=utf-8"),
          "/dashboard.js": ("dashboard.js", "text/javascript; charset=utf-8"),
          "/dashboard.css": ("dashboard.css", "text/css; charset=utf-8")}
# Kubernetes names (DNS-1123), matched on the raw path: nothing percent-encoded gets through.
_NAME = r"([a-z0-9](?:[-a-z0-9.]{0,251}[a-z0-9])?)"
DETAIL = re.compile(rf"^/api/lieutenants/{_NAME}/{_NAME}$")
RECORDS = re.compile(rf"^/api/lieutenants/{_NAME}/{_NAME}/records$")
RECORD = re.compile(rf"^/api/lieutenants/{_NAME}/{_NAME}/records/{_NAME}$")
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
                               "connect-src 'self'; img-src 'self'; base-uri 'none'; "
                               "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def fleet_view(mirror: Mirror) -> dict[str, Any]:
    """Everything the page's overview shows, in one answer."""
    lieutenants = mirror.items("lieutenants", READ_TIMEOUT)
    nodes = mirror.items("vmnodes", READ_TIMEOUT)
    on_node = {(lt["metadata"]["namespace"], (lt.get("status") or {}).get("vmNodeName")):
               lt["metadata"]["name"] for lt in lieutenants}
    return {
        "server": mirror.cluster.server,
        "namespace": None if mirror.all_namespaces else mirror.cluster.namespace,
        "readAt": _now(),
        "lieutenants": [_lieutenant_row(lt) for lt in lieutenants],
        "tree": [_branch_json(b, on_node) for b in fleet.forest(nodes)],
    }


def lieutenant_view(mirror: Mirror, namespace: str, name: str) -> dict[str, Any]:
    """One lieutenant in full: its tasks (message and outcome), live output, history."""
    there = [lt for lt in mirror.items("lieutenants", READ_TIMEOUT)
             if lt["metadata"]["namespace"] == namespace]
    lieutenant = next((lt for lt in there if lt["metadata"]["name"] == name), None)
    if lieutenant is None:
        raise NotFound(not_found_message("lieutenants", name, namespace,
                                         [lt["metadata"]["name"] for lt in there]))
    spec, status = lieutenant.get("spec") or {}, lieutenant.get("status") or {}
    outcomes = {t.get("name"): t for t in status.get("tasks") or []}
    current = status.get("currentTask") or {}
    return {
        **_lieutenant_row(lieutenant),
        "instructions": spec.get("instructions", ""),
        "conditions": [{k: c.get(k, "") for k in ("type", "status", "reason", "message")}
                       for c in status.get("conditions") or []],
        "tasks": [{"name": t.get("name"), "mode": t.get("mode", "prompt"),
                   "message": t.get("message", ""),
                   "phase": (outcomes.get(t.get("name")) or {}).get("phase", "Pending"),
                   "note": (outcomes.get(t.get("name")) or {}).get("note", "")}
                  for t in spec.get("tasks") or []],
        "live": str(current.get("output") or "") if current.get("name") else "",
        "history": [{k: h.get(k) for k in ("task", "completedAt", "stopReason", "response",
                                           "truncated")}
                    for h in status.get("history") or []],
    }


def records_view(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    """A lieutenant's records, oldest first, without their answers."""
    cluster.get("lieutenants", name, namespace)       # NotFound names the others
    rows = []
    for found in records.records(cluster, name, namespace):
        spec = found.get("spec") or {}
        rows.append({"task": spec.get("task"), "phase": spec.get("phase"),
                     "stopReason": spec.get("stopReason", ""),
                     "completedAt": spec.get("completedAt", ""),
                     "cost": float((spec.get("usage") or {}).get("cost") or 0),
                     "toolCalls": len(spec.get("toolCalls") or []),
                     "truncated": bool(spec.get("truncated"))})
    return {"records": rows}


def record_view(cluster: Cluster, namespace: str, name: str, task: str) -> dict[str, Any]:
    """One record in full: the task's message, full answer and tool calls."""
    spec = records.record(cluster, name, task, namespace).get("spec") or {}
    keys = ("task", "message", "mode", "phase", "stopReason", "note", "sentAt", "startedAt",
            "completedAt", "usage", "answer", "truncated", "toolCalls", "toolCallsDropped")
    return {k: spec.get(k) for k in keys}


def _lieutenant_row(lieutenant: Obj) -> dict[str, Any]:
    meta, spec = lieutenant["metadata"], lieutenant.get("spec") or {}
    status = lieutenant.get("status") or {}
    ready = output.condition_summary(lieutenant, "Ready")
    return {
        "namespace": meta.get("namespace"), "name": meta["name"],
        "role": spec.get("role", ""), "desiredState": spec.get("state", "Running"),
        "phase": status.get("phase") or "Pending",
        "task": (status.get("currentTask") or {}).get("name") or "",
        "taskCount": status.get("taskCount", 0),
        "vmNode": status.get("vmNodeName") or "", "vmId": status.get("vmId") or "",
        "model": output.model_label(spec), "tokens": output.total_tokens(status),
        "cost": float((status.get("usage") or {}).get("cost") or 0),
        "lastActivity": status.get("lastActivityTime") or "",
        "ready": ready,
        # The policy that holds it, if one does (IdlePaused, BudgetExhausted, Expired,
        # QuotaExceeded): the page shows each its own way, an idle pause as healthy.
        "hold": ready["reason"] if ready["reason"] in lieutenants.POLICY_REASONS else "",
    }


def _branch_json(branch: fleet.Branch, on_node: dict[tuple[Any, Any], str]) -> dict[str, Any]:
    node = branch.node
    meta = node["metadata"]
    return {
        "namespace": meta["namespace"], "name": meta["name"],
        "category": fleet.category_of(node), "state": fleet.state_of(node),
        "ready": output.condition_summary(node, "Ready"),
        "vmId": (node.get("status") or {}).get("vmId") or "",
        "lieutenant": on_node.get((meta["namespace"], meta["name"]), ""),
        "dna": fleet.dna(node),
        "repeated": branch.repeated,
        "children": [_branch_json(child, on_node) for child in branch.children],
    }


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def host_allowed(host_header: str, address: str, port: int) -> bool:
    """Whether a request's Host header names this dashboard.

    A DNS-rebinding page reaches us under its own DNS name, so the only names accepted are
    the one we listen on and `localhost` (no other site's page can be at `localhost`). An
    IP literal is the browser's own choice of address, never a rebinding.
    """
    name, sep, given_port = host_header.rpartition(":")
    if not sep or name.endswith(":") or (host_header.startswith("[") and
                                         not name.endswith("]")):
        name, given_port = host_header, "80"          # no port: the default one
    if given_port != str(port):
        return False
    bare = name.strip("[]").lower()
    if bare in (address.lower(), "localhost"):
        return True
    try:
        ipaddress.ip_address(bare)
    except ValueError:
        return False
    return True


class DashboardServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: str, port: int, cluster: Cluster,
                 all_namespaces: bool) -> None:
        self.address_family = socket.AF_INET6 if ":" in address else socket.AF_INET
        super().__init__((address, port), _Handler)
        self.mirror = Mirror(cluster, all_namespaces)
        self.address, self.port = address, int(self.server_address[1])
        shown = "127.0.0.1" if address in ("0.0.0.0", "::") else address
        self.url = f"http://{_bracketed(shown)}:{self.port}/"

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A tab closed mid-answer is normal; anything else is worth a line."""
        error = sys.exc_info()[1]
        if not isinstance(error, ConnectionError):
            print(f"dashboard: {type(error).__name__}: {error}", file=sys.stderr)


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


class _Handler(BaseHTTPRequestHandler):
    server: DashboardServer
    server_version = "kubectl-reef-dashboard"

    def do_GET(self) -> None:  # the stdlib calls it by this name
        if not host_allowed(self.headers.get("Host", ""), self.server.address,
                            self.server.port):
            self._json(HTTPStatus.FORBIDDEN, {"error": "this dashboard answers only at "
                                              f"{self.server.url}"})
            return
        path = urlsplit(self.path).path
        if path in STATIC:
            filename, content_type = STATIC[path]
            body = (resources.files("reef_operator.cli.plugin") / "static" /
                    filename).read_bytes()
            self._send(HTTPStatus.OK, body, content_type)
            return
        try:
            if path == "/api/fleet":
                answer = fleet_view(self.server.mirror)
            elif match := DETAIL.match(path):
                answer = lieutenant_view(self.server.mirror, *match.groups())
            elif match := RECORDS.match(path):
                answer = records_view(self.server.mirror.cluster, *match.groups())
            elif match := RECORD.match(path):
                answer = record_view(self.server.mirror.cluster, *match.groups())
            else:
                self._json(HTTPStatus.NOT_FOUND, {"error": f"no such page: {path}"})
                return
        except NotFound as error:
            self._json(HTTPStatus.NOT_FOUND, {"error": str(error)})
            return
        except PluginError as error:
            self._json(HTTPStatus.BAD_GATEWAY, {"error": str(error)})
            return
        except Exception as error:  # an object of a shape we did not expect: say so
            self._json(HTTPStatus.INTERNAL_SERVER_ERROR,
                       {"error": f"the dashboard failed on {path}: "
                                 f"{type(error).__name__}: {error}"})
            return
        self._json(HTTPStatus.OK, answer)

    def do_POST(self) -> None:
        self._json(HTTPStatus.METHOD_NOT_ALLOWED,
                   {"error": "the dashboard is read-only: use kubectl reef or kubectl"})

    do_PUT = do_PATCH = do_DELETE = do_POST

    def _json(self, status: HTTPStatus, body: object) -> None:
        self._send(status, json.dumps(body).encode(), "application/json")

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in SECURITY_HEADERS.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the page polls every second; errors reach the page itself."""


def serve(cluster: Cluster, address: str, port: int, all_namespaces: bool,
          announce: Any) -> None:
    cluster.read_timeout = READ_TIMEOUT
    try:
        server = DashboardServer(address, port, cluster, all_namespaces)
    except OSError as error:
        raise PluginError(f"cannot listen on {address}:{port}: {error.strerror}") from None
    where = "every namespace" if all_namespaces else f"namespace {cluster.namespace}"
    announce(f"dashboard for {where} at {server.url} (Ctrl-C stops it)")
    if address not in LOOPBACK:
        announce(f"note: listening on {address}: whoever reaches it sees what your "
                 "credentials can read")
    server.mirror.start()
    with server:
        try:
            server.serve_forever()
        finally:
            server.mirror.stop()
