"""The Vers HTTP API (`/api/v1`), as the platform answers it, plus `/_sim` controls.

Paths, status codes and error bodies follow the platform: `{"error", "success":
false}` (branch routes: `{"vms": [], "error"}`), 201 for creates, 403 for
deleting an unknown VM, capitalised states in the PATCH body, bearer auth.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable
from dataclasses import asdict, fields
from typing import Any

from aiohttp import web

from reef_devkit.versim.platform import ApiError, Faults, Platform, SimVm

PREFIX = "/api/v1"
CREATE_ENDPOINTS = frozenset({
    "POST /vm/new_root", "POST /vm/from_commit", "POST /vm/{id}/commit", "POST /vm/{id}/branch",
    "POST /vm/branch/by_vm/{id}", "POST /vm/branch/by_commit/{id}",
    "POST /vm/branch/by_tag/{tag}", "POST /vm/branch/by_ref/{repo}/{tag}",
})
PLATFORM_KEY = web.AppKey("platform", Platform)
API_KEY = web.AppKey("api_key", str)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def build_app(platform: Platform, api_key: str) -> web.Application:
    app = web.Application(middlewares=[_platform_behaviour], client_max_size=8 * 1024 * 1024)
    app[PLATFORM_KEY] = platform
    app[API_KEY] = api_key
    routes = [
        web.post(f"{PREFIX}/vm/new_root", new_root),
        web.post(f"{PREFIX}/vm/from_commit", from_commit),
        web.get(f"{PREFIX}/vms", list_vms),
        web.post(f"{PREFIX}/vm/branch/by_vm/{{id}}", branch_by_vm),
        web.post(f"{PREFIX}/vm/branch/by_commit/{{id}}", branch_by_commit),
        web.post(f"{PREFIX}/vm/branch/by_tag/{{tag}}", branch_by_tag),
        web.post(f"{PREFIX}/vm/branch/by_ref/{{repo}}/{{tag}}", branch_by_ref),
        web.get(f"{PREFIX}/vm/{{id}}/status", status),
        web.get(f"{PREFIX}/vm/{{id}}/metadata", metadata),
        web.patch(f"{PREFIX}/vm/{{id}}/state", set_state),
        web.post(f"{PREFIX}/vm/{{id}}/commit", commit),
        web.post(f"{PREFIX}/vm/{{id}}/branch", branch),
        web.delete(f"{PREFIX}/vm/{{id}}", delete),
        web.get(f"{PREFIX}/vm/{{id}}/ssh_key", ssh_key),
        web.patch(f"{PREFIX}/vm/{{id}}/label", label),
        web.patch(f"{PREFIX}/vm/{{id}}/disk", grow_disk),
        web.get(f"{PREFIX}/commits", list_commits),
        web.delete(f"{PREFIX}/commits/{{id}}", delete_commit),
        web.get("/_sim/requests", sim_requests),
        web.post("/_sim/requests/reset", sim_reset_requests),
        web.get("/_sim/faults", sim_get_faults),
        web.put("/_sim/faults", sim_set_faults),
        web.get("/_sim/vms", sim_vms),
        web.post("/_sim/vms/{id}/{action}", sim_vm_action),
        web.put("/_sim/tags/{tag}", sim_tag),
    ]
    app.add_routes(routes)
    return app


def endpoint_name(request: web.Request) -> str:
    """`METHOD /path/{template}` without the /api/v1 prefix, as the request log counts it."""
    resource = request.match_info.route.resource
    canonical = resource.canonical if resource is not None else request.path
    return f"{request.method} {canonical.removeprefix(PREFIX)}"


@web.middleware
async def _platform_behaviour(request: web.Request, handler: Handler) -> web.StreamResponse:
    platform = request.app[PLATFORM_KEY]
    if request.headers.get("Authorization") != f"Bearer {request.app[API_KEY]}":
        return _error(401, "Unauthorized")
    if request.path.startswith("/_sim/"):
        return await handler(request)
    endpoint = endpoint_name(request)
    platform.request_counts[endpoint] = platform.request_counts.get(endpoint, 0) + 1
    faults = platform.faults
    if faults.latency:
        await asyncio.sleep(faults.latency)
    if faults.rate_limit_burst > 0:
        faults.rate_limit_burst -= 1
        response = _error(429, "Too many requests", branch="branch" in endpoint)
        response.headers["Retry-After"] = str(max(1, round(faults.retry_after_ms / 1000)))
        response.headers["Retry-After-Ms"] = str(faults.retry_after_ms)
        return response
    if faults.error_rate and random.random() < faults.error_rate:
        return _error(random.choice((500, 502, 503)), "injected failure",
                      branch="branch" in endpoint)
    try:
        answer = await handler(request)
    except ApiError as error:
        return _error(error.status, error.message, branch="branch" in endpoint)
    if (endpoint in CREATE_ENDPOINTS and faults.lose_response_rate
            and random.random() < faults.lose_response_rate):
        # The create happened; the caller never hears about it.
        if request.transport is not None:
            request.transport.abort()
        raise asyncio.CancelledError
    return answer


def _error(status: int, message: str, branch: bool = False) -> web.Response:
    body: dict[str, Any] = ({"vms": [], "error": message} if branch
                            else {"error": message, "success": False})
    return web.json_response(body, status=status)


async def _json(request: web.Request, required: bool = True) -> dict[str, Any]:
    if not request.can_read_body:
        if required:
            raise ApiError(400, "missing JSON body")
        return {}
    try:
        data = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "invalid JSON body") from None
    if not isinstance(data, dict):
        raise ApiError(400, "JSON body must be an object")
    return data


def _flag(request: web.Request, name: str) -> bool:
    value = request.query.get(name, "false").lower()
    if value not in ("true", "false"):
        raise ApiError(400, f"query parameter {name} must be true or false")
    return value == "true"


def _platform(request: web.Request) -> Platform:
    return request.app[PLATFORM_KEY]


# -- VMs ----------------------------------------------------------------------------------
async def new_root(request: web.Request) -> web.Response:
    body = await _json(request)
    config = body.get("vm_config")
    if not isinstance(config, dict):
        raise ApiError(400, "vm_config is required")
    vm = await _platform(request).new_root(config, _flag(request, "wait_boot"))
    return web.json_response({"vm_id": vm.vm_id}, status=201)


async def from_commit(request: web.Request) -> web.Response:
    body = await _json(request)
    given = {k: body[k] for k in ("commit_id", "tag_name", "ref") if body.get(k)}
    if len(given) != 1:
        raise ApiError(400, "exactly one of commit_id, tag_name or ref is required")
    platform = _platform(request)
    if "commit_id" in given:
        commit = platform.commit_by_id(str(given["commit_id"]))
    elif "tag_name" in given:
        commit = platform.commit_by_tag(str(given["tag_name"]))
    else:
        ref = str(given["ref"])
        if ref.count(":") != 1 or ref.startswith(":") or ref.endswith(":"):
            raise ApiError(400, f"invalid ref {ref!r}: expected repo:tag")
        commit = platform.commit_by_tag(ref)
    vm = await platform.from_commit(commit)
    return web.json_response({"vm_id": vm.vm_id}, status=201)


async def list_vms(request: web.Request) -> web.Response:
    return web.json_response([vm.summary() for vm in _platform(request).vms.values()
                              if vm.deleted_at is None])


async def status(request: web.Request) -> web.Response:
    return web.json_response(_platform(request).awake_vm(request.match_info["id"]).summary())


async def metadata(request: web.Request) -> web.Response:
    platform = _platform(request)
    vm_id = request.match_info["id"]
    vm = platform.vms.get(vm_id) or platform.live_vm(vm_id)  # deleted VMs keep metadata
    return web.json_response(vm.metadata())


async def set_state(request: web.Request) -> web.Response:
    platform = _platform(request)
    vm = platform.awake_vm(request.match_info["id"])
    body = await _json(request)
    await platform.set_state(vm, str(body.get("state")), _flag(request, "skip_wait_boot"))
    return web.Response(status=200)


async def commit(request: web.Request) -> web.Response:
    platform = _platform(request)
    vm = platform.awake_vm(request.match_info["id"])
    body = await _json(request, required=False)
    created = await platform.commit(vm, str(body.get("name") or ""),
                                    str(body.get("description") or ""),
                                    _flag(request, "keep_paused"))
    return web.json_response({"commit_id": created.commit_id}, status=201)


async def delete(request: web.Request) -> web.Response:
    platform = _platform(request)
    vm_id = request.match_info["id"]
    try:
        vm = platform.live_vm(vm_id)
    except ApiError as error:
        if error.status == 404:  # the platform's answer for an unknown VM
            raise ApiError(403, f"VM {vm_id} not found or not owned by you") from None
        raise
    if vm.state == "sleeping":
        raise ApiError(409, f"VM {vm_id} is sleeping")
    await platform.delete(vm)
    return web.json_response({"vm_id": vm_id})


async def ssh_key(request: web.Request) -> web.Response:
    vm = _platform(request).live_vm(request.match_info["id"])
    key = vm.client_key.export_private_key("openssh").decode()
    return web.json_response({"ssh_private_key": key, "ssh_port": 443})


async def label(request: web.Request) -> web.Response:
    vm = _platform(request).live_vm(request.match_info["id"])
    body = await _json(request)
    labels = body.get("labels", "missing")
    if labels == "missing" or not (labels is None or (isinstance(labels, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in labels.items()))):
        raise ApiError(400, "labels must be an object of strings or null")
    vm.labels = labels
    return web.json_response({"vm_id": vm.vm_id, "labels": labels})


async def grow_disk(request: web.Request) -> web.Response:
    vm = _platform(request).awake_vm(request.match_info["id"])
    size = (await _json(request)).get("fs_size_mib")
    if not isinstance(size, int) or size <= int(vm.config.get("fs_size_mib", 0)):
        raise ApiError(400, "fs_size_mib must be larger than the current disk size")
    vm.config["fs_size_mib"] = size
    return web.Response(status=200)


# -- branches -----------------------------------------------------------------------------
async def _branch_from_vm(platform: Platform, vm: SimVm, count: int) -> list[SimVm]:
    snapshot = await platform.commit(vm, "", "", keep_paused=False)
    return [await platform.from_commit(snapshot) for _ in range(count)]


def _count(request: web.Request) -> int:
    try:
        count = int(request.query.get("count", "1"))
    except ValueError:
        raise ApiError(400, "count must be an integer") from None
    if not 1 <= count <= 100:
        raise ApiError(400, "count must be between 1 and 100")
    return count


def _branched(vms: list[SimVm]) -> web.Response:
    return web.json_response({"vms": [{"vm_id": vm.vm_id} for vm in vms]}, status=201)


async def branch(request: web.Request) -> web.Response:
    platform, source_id, count = _platform(request), request.match_info["id"], _count(request)
    if source_id in platform.vms:
        return _branched(await _branch_from_vm(platform, platform.awake_vm(source_id), count))
    commit_ = platform.commit_by_id(source_id)
    return _branched([await platform.from_commit(commit_) for _ in range(count)])


async def branch_by_vm(request: web.Request) -> web.Response:
    platform = _platform(request)
    vm = platform.awake_vm(request.match_info["id"])
    return _branched(await _branch_from_vm(platform, vm, _count(request)))


async def branch_by_commit(request: web.Request) -> web.Response:
    platform = _platform(request)
    commit_ = platform.commit_by_id(request.match_info["id"])
    return _branched([await platform.from_commit(commit_) for _ in range(_count(request))])


async def branch_by_tag(request: web.Request) -> web.Response:
    platform = _platform(request)
    commit_ = platform.commit_by_tag(request.match_info["tag"])
    return _branched([await platform.from_commit(commit_) for _ in range(_count(request))])


async def branch_by_ref(request: web.Request) -> web.Response:
    platform = _platform(request)
    commit_ = platform.commit_by_tag(f"{request.match_info['repo']}:{request.match_info['tag']}")
    return _branched([await platform.from_commit(commit_) for _ in range(_count(request))])


# -- commits ------------------------------------------------------------------------------
async def list_commits(request: web.Request) -> web.Response:
    try:
        limit = int(request.query.get("limit", "100"))
        offset = int(request.query.get("offset", "0"))
    except ValueError:
        raise ApiError(400, "limit and offset must be integers") from None
    if limit < 1 or offset < 0:
        raise ApiError(400, "limit must be positive and offset not negative")
    commits = sorted(_platform(request).commits.values(), key=lambda c: c.created_at)
    page = commits[offset:offset + limit]
    return web.json_response({"commits": [c.summary() for c in page], "total": len(commits),
                              "limit": limit, "offset": offset})


async def delete_commit(request: web.Request) -> web.Response:
    platform = _platform(request)
    platform.delete_commit(platform.commit_by_id(request.match_info["id"]))
    return web.Response(status=204)


# -- simulator controls (not part of the platform) -----------------------------------------
async def sim_requests(request: web.Request) -> web.Response:
    counts = _platform(request).request_counts
    return web.json_response({"counts": counts, "total": sum(counts.values())})


async def sim_reset_requests(request: web.Request) -> web.Response:
    _platform(request).request_counts.clear()
    return web.json_response({"ok": True})


async def sim_get_faults(request: web.Request) -> web.Response:
    return web.json_response(asdict(_platform(request).faults))


async def sim_set_faults(request: web.Request) -> web.Response:
    body = await _json(request)
    known = {f.name for f in fields(Faults)}
    unknown = set(body) - known
    if unknown:
        raise ApiError(400, f"unknown faults {sorted(unknown)}; known: {sorted(known)}")
    faults = _platform(request).faults
    for name, value in body.items():
        setattr(faults, name, type(getattr(faults, name))(value))
    return web.json_response(asdict(faults))


async def sim_vms(request: web.Request) -> web.Response:
    return web.json_response([
        {**vm.summary(), "sshd_port": vm.sandbox.port, "directory": str(vm.sandbox.directory),
         "frozen": vm.sandbox.freezer.frozen() if vm.deleted_at is None else False,
         "deleted": vm.deleted_at is not None}
        for vm in _platform(request).vms.values()
    ])


async def sim_vm_action(request: web.Request) -> web.Response:
    platform = _platform(request)
    vm = platform.live_vm(request.match_info["id"])
    action = request.match_info["action"]
    if action == "sleep":
        vm.state = "sleeping"
    elif action == "wake":
        vm.state = "paused" if vm.sandbox.freezer.frozen() else "running"
    elif action == "freeze":
        await platform.freeze_behind_back(vm)
    elif action == "thaw":
        await platform.thaw_behind_back(vm)
    elif action == "kill":
        await platform.kill(vm)
    else:
        raise ApiError(400, f"unknown action {action!r}: sleep, wake, freeze, thaw or kill")
    return web.json_response(vm.summary())


async def sim_tag(request: web.Request) -> web.Response:
    platform = _platform(request)
    commit_ = platform.commit_by_id(str((await _json(request)).get("commit_id", "")))
    platform.tags[request.match_info["tag"]] = commit_.commit_id
    return web.json_response({"tag": request.match_info["tag"], "commit_id": commit_.commit_id})
