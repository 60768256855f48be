"""Pool claims survive the operator's SIGKILL: killed the moment the first claim lands on a
member, and again the moment the first lieutenant's node holds a VM (mid-handover for the
others). Afterwards nothing differs from a run without kills: five lieutenants created at
once hold five different VMs, three warm from the pool of three and two of their own,
each answered its task exactly once, the pool is back to three ready members, and the
platform runs no VM beyond those eight (none leaked, none made twice).

Real apiserver, the operator as its own process, the Vers simulator with a boot delay
(refills take longer than a restart, so the count of warm VMs handed out is exact), real
pi, the scripted model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from reef_devkit.controlplane import LocalControlPlane
from reef_devkit.operator_process import OperatorProcess, simulator_env
from reef_devkit.scripted_model.harness import ScriptedModel
from reef_devkit.versim.harness import VersSimulator
from reef_operator.constants import ANNOTATION_CLAIMED_BY, GROUP, LABEL_POOL, VERSION
from tests.conftest import Kube
from tests.e2e.conftest import vers_boot_profile, wait_for
from tests.e2e.test_vm_pool import (
    POOL,
    answered,
    lieutenant_body,
    pool_body,
    pool_status,
    ready_members,
)

pytestmark = pytest.mark.controlplane

PROFILE = "e2e-pool-vers"   # the name pool_body() refers to
BOOT_DELAY = 12.0
SCRIPT = """
tasks:
  - match: "Pool task"
    steps:
      - text: "Done on my VM."
"""


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScriptedModel]:
    with ScriptedModel(SCRIPT, tmp_path_factory.mktemp("model")) as scripted:
        yield scripted


@pytest.fixture(scope="module")
def slow_boot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VersSimulator]:
    with VersSimulator(tmp_path_factory.mktemp("versim"), boot_delay=BOOT_DELAY) as sim:
        yield sim


@pytest.fixture(scope="module")
def profile(admin: Kube) -> Iterator[str]:
    with vers_boot_profile(admin, PROFILE) as name:
        yield name


def test_sigkills_during_claims_change_nothing(
        admin: Kube, namespace: str, control_plane: LocalControlPlane, model: ScriptedModel,
        slow_boot: VersSimulator, profile: str, tmp_path: Path) -> None:
    admin.core.create_namespaced_config_map(namespace, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="models"), data={"models.json": model.models_json()}))
    operator = OperatorProcess(control_plane.operator_kubeconfig, tmp_path / "operator.log",
                               {**simulator_env(slow_boot),
                                "REEF_LOCAL_ROOT": str(tmp_path / "vms")})
    operator.start()

    def nodes() -> list[dict[str, Any]]:
        return list(admin.custom.list_namespaced_custom_object(  # type: ignore[index]
            GROUP, VERSION, namespace, "vmnodes")["items"])

    def claim_landed() -> bool:
        return any(ANNOTATION_CLAIMED_BY in (n["metadata"].get("annotations") or {})
                   for n in nodes() if (n["metadata"].get("labels") or {}).get(LABEL_POOL))

    def a_lieutenant_holds_a_vm() -> bool:
        return any((n.get("status") or {}).get("vmId") for n in nodes()
                   if n["metadata"]["name"].startswith("lt"))

    try:
        admin.kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(pool_body()))
        warm = {m["status"]["vmId"] for m in ready_members(admin, namespace, 3, operator)}

        names = [f"lt{n}" for n in range(5)]
        admin.kubectl("apply", "-n", namespace, "-f", "-",
                      stdin=yaml.safe_dump_all([lieutenant_body(name) for name in names]))
        for moment, what in ((claim_landed, "the first claim"),
                             (a_lieutenant_holds_a_vm, "the first handover")):
            wait_for(moment, 60, what, operator, every=0.05)
            operator.kill()
            operator.start()

        vms = {name: answered(admin, namespace, name, operator)["vmId"] for name in names}
        assert len(set(vms.values())) == 5, f"a VM was handed out twice: {vms}"
        assert len(set(vms.values()) & warm) == 3, (vms, warm)
        asked = [r["conversation"][-1]["text"] for r in model.requests() if r["conversation"]]
        for name in names:
            assert asked.count(f"Pool task for {name}") == 1, asked

        refilled = ready_members(admin, namespace, 3, operator)
        assert wait_for(lambda: pool_status(admin, namespace).get("claimed") == 3, 30,
                        "three claimed", operator)
        live = {vm["vm_id"] for vm in slow_boot.vms() if not vm["deleted"]}
        assert live == set(vms.values()) | {m["status"]["vmId"] for m in refilled}, live
        assert POOL in admin.kubectl("get", "vmpools", "-n", namespace).stdout
    finally:
        operator.stop()
