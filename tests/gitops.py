"""What GitOps tools make of a real object: Argo CD's health (our Lua, run by lua5.1 the
way Argo CD runs it) and kstatus' verdict (a port of cli-utils' status.Compute for
custom resources).

Argo CD hands the object to the script as the global `obj` in a gopher-lua (Lua 5.1)
sandbox without io or os, and takes the table the chunk returns. lua5.1 has no JSON
library, so the object travels as a Lua table literal.
"""

from __future__ import annotations

import functools
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config

from reef_operator.api.conditions import BY_KIND
from reef_operator.kube.conditions import find_condition
from reef_operator.kube.watch import Change, Collection, CustomObjects, ListWatch
from reef_operator.render.argocd import CM_PATCH, health_key
from tests.conftest import REPO_ROOT

ARGO_STATUSES = ("Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown")

# Runs health.lua like Argo CD: `obj` global, only the base, string, table and math
# libraries, the chunk's return value is the health.
HARNESS = """
local source = io.read("*a")
local chunk = assert(loadstring(source, "=health.lua"))
local sandbox = {
  obj = OBJ, assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs,
  pcall = pcall, select = select, tonumber = tonumber, tostring = tostring, type = type,
  unpack = unpack, string = string, table = table, math = math,
}
setfenv(chunk, sandbox)
local hs = chunk()
io.write(tostring(hs.status), "\\n", tostring(hs.message or ""))
"""


@dataclass(frozen=True)
class Verdict:
    health: str
    message: str
    kstatus: str


def lua_literal(value: Any) -> str:
    """A JSON-like value as a Lua 5.1 expression (null becomes nil: an absent key)."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        out = []
        for byte in value.encode():
            char = chr(byte)
            out.append(char if 32 <= byte < 127 and char not in '"\\' else f"\\{byte:03d}")
        return '"' + "".join(out) + '"'
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"[{lua_literal(str(k))}] = {lua_literal(v)}"
                               for k, v in value.items() if v is not None) + "}"
    if isinstance(value, list | tuple):
        return "{" + ", ".join(lua_literal(v) for v in value) + "}"
    raise TypeError(f"not JSON: {value!r}")


def argo_health(obj: Mapping[str, Any]) -> tuple[str, str]:
    """(status, message) as Argo CD's custom health check would report them.

    The script is the one the rendered argocd-cm patch installs for the object's kind
    (`render --check` keeps it equal to manifests/argocd/health.lua).
    """
    script = installed_health_scripts()[str(obj.get("kind"))]
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as harness:
        harness.write(HARNESS.replace("OBJ", lua_literal(obj), 1))
        harness.flush()
        # The harness is the program; the script under test arrives on stdin.
        result = subprocess.run(["lua5.1", harness.name], input=script, capture_output=True,
                                text=True, timeout=30, check=False)
    if result.returncode != 0:
        raise AssertionError(f"health.lua failed: {result.stderr}")
    status, _, message = result.stdout.partition("\n")
    assert status in ARGO_STATUSES, result.stdout
    return status, message


def kstatus(obj: Mapping[str, Any]) -> str:
    """sigs.k8s.io/cli-utils/pkg/kstatus/status.Compute for a custom resource."""
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    if meta.get("deletionTimestamp"):
        return "Terminating"
    generation = meta.get("generation")
    if generation is not None and "observedGeneration" in status \
            and status["observedGeneration"] != generation:
        return "InProgress"
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Reconciling" and condition.get("status") == "True":
            return "InProgress"
        if condition.get("type") == "Stalled" and condition.get("status") == "True":
            return "Failed"
    return "Current"


def verdict(obj: Mapping[str, Any]) -> Verdict:
    """Health and kstatus, checked against what docs/crd-reference.md says they are."""
    health, message = argo_health(obj)
    result = Verdict(health, message, kstatus(obj))
    status = obj.get("status") or {}
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    if status.get("observedGeneration") != (obj.get("metadata") or {}).get("generation") \
            or "reef.vers.sh/paused" in annotations:
        return result
    _check_documented(obj, result)
    return result


def _check_documented(obj: Mapping[str, Any], result: Verdict) -> None:
    """The object's Ready/Reconciling/Stalled are a documented row, with the same health."""
    kind = str(obj.get("kind"))
    ready = find_condition(obj, "Ready")
    rows = BY_KIND[kind].rows(str(ready.get("reason")))
    assert rows, f"{kind} reason {ready.get('reason')!r} is not in the conditions catalogue"
    seen = tuple(find_condition(obj, t).get("status") for t in ("Ready", "Reconciling", "Stalled"))

    def matches(expected: bool | None, actual: str | None) -> bool:
        return expected is None or str(expected) == actual

    fitting = [row for row in rows if all(matches(e, a) for e, a in zip(
        (row.ready, row.reconciling, row.stalled), seen, strict=True))]
    assert fitting, f"{kind} {seen} with reason {ready.get('reason')} is documented as {rows}"
    assert result.health in {row.health for row in fitting}, (result, fitting)
    if kind == "Lieutenant":
        assert find_condition(obj, "Degraded").get("status") == find_condition(obj, "Stalled").get(
            "status"), obj["status"]["conditions"]
    for found in (obj.get("status") or {}).get("conditions") or []:
        assert found["type"] in BY_KIND[kind].type_names, found
        assert found.get("observedGeneration") is not None, found


@functools.cache
def installed_health_scripts() -> dict[str, str]:
    """The scripts as they stand in the rendered argocd-cm patch, per kind."""
    data = yaml.safe_load((REPO_ROOT / CM_PATCH).read_text())["data"]
    return {kind: str(data[health_key(kind)]) for kind in BY_KIND}


class Recorder:
    """Every version of one kind's objects in a namespace, from the first list on, as a
    list and watch deliver them (reef_operator.kube.watch).

    Transient states (a status written for a second between two others) are caught
    this way without racing a poll; each version can then be judged on its own.
    """

    def __init__(self, kubeconfig: Path, plural: str, namespace: str) -> None:
        configuration = client.Configuration()
        config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
        custom = client.CustomObjectsApi(client.ApiClient(configuration))
        self.plural = plural
        self.seen: list[dict[str, Any]] = []
        self._collection = Collection(self._record)
        self._follower = ListWatch(CustomObjects(custom, plural, namespace), self._collection,
                                   name=f"recorder-{plural}")

    def __enter__(self) -> Recorder:
        self._follower.start()
        answered = self._collection.answered.wait(10)
        if not answered or self._collection.failure is not None:
            self._follower.stop()
            raise AssertionError(f"watch on {self.plural} did not start: "
                                 f"{self._collection.failure}")
        return self

    def __exit__(self, *exc: object) -> None:
        self._follower.stop(wait=15)

    def versions(self, name: str) -> list[dict[str, Any]]:
        with self._collection.changed:
            return [obj for obj in self.seen if obj["metadata"]["name"] == name]

    def _record(self, change: Change, obj: dict[str, Any]) -> None:
        if change != "DELETED":
            self.seen.append(obj)
