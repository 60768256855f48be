"""Contract tests: the Vers client against the simulator, endpoint by endpoint."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from reef_devkit.versim.harness import VersSimulator
from reef_operator.providers.vers import errors
from reef_operator.providers.vers.client import RetryPolicy, VersClient
from reef_operator.secret import Secret


def _raw(versim: VersSimulator) -> httpx.Client:
    return httpx.Client(base_url=versim.base_url + "/api/v1", timeout=30,
                        headers={"Authorization": f"Bearer {versim.api_key.reveal()}"})


async def test_new_root_with_labels_is_listed_and_deleted(vers: VersClient) -> None:
    mark = {"test": uuid.uuid4().hex[:8]}
    vm_id = await vers.new_root(vcpu=1, memory_mib=512, labels=mark, wait_boot=True)
    status = await vers.status(vm_id)
    assert status.state == "running"
    assert status.labels == mark
    assert [vm.vm_id for vm in await vers.find_by_labels(mark)] == [vm_id]
    await vers.set_labels(vm_id, {**mark, "more": "yes"})
    assert (await vers.status(vm_id)).labels == {**mark, "more": "yes"}
    await vers.set_labels(vm_id, None)
    assert (await vers.status(vm_id)).labels == {}
    assert await vers.delete(vm_id) is True
    with pytest.raises(errors.NotFound):
        await vers.status(vm_id)
    # Deleting again: the platform answers 403 for an unknown id; the client knows it is gone.
    assert await vers.delete(vm_id) is False
    assert vm_id not in [vm.vm_id for vm in await vers.list_vms()]
    assert (await vers.metadata(vm_id)).deleted_at is not None


async def test_booting_becomes_running_after_the_boot_delay(tmp_path: Path) -> None:
    with VersSimulator(tmp_path / "slow", boot_delay=1.5) as slow:
        async with VersClient(slow.base_url, slow.api_key) as vers:
            vm_id = await vers.new_root()
            assert (await vers.status(vm_id)).state == "booting"
            for _ in range(100):
                if (await vers.status(vm_id)).state == "running":
                    break
                await asyncio.sleep(0.1)
            assert (await vers.status(vm_id)).state == "running"


def test_error_bodies_and_codes_match_the_platform(versim: VersSimulator) -> None:
    with _raw(versim) as raw:
        unknown = str(uuid.uuid4())
        answer = raw.delete(f"/vm/{unknown}")
        assert answer.status_code == 403
        assert answer.json() == {"error": f"VM {unknown} not found or not owned by you",
                                 "success": False}
        assert raw.get(f"/vm/{unknown}/status").status_code == 404
        assert raw.get("/vm/not-a-uuid/status").status_code == 400
        created = raw.post("/vm/new_root", json={"vm_config": {}})
        assert created.status_code == 201 and set(created.json()) == {"vm_id"}
        vm_id = created.json()["vm_id"]
        lowercase = raw.patch(f"/vm/{vm_id}/state", json={"state": "paused"})
        assert lowercase.status_code == 400 and "Paused" in lowercase.json()["error"]
        assert raw.patch(f"/vm/{vm_id}/state", json={"state": "Paused"}).status_code == 200
        assert raw.patch(f"/vm/{vm_id}/state", json={"state": "Paused"}).content == b""
        branch = raw.post(f"/vm/branch/by_commit/{unknown}")
        assert branch.status_code == 404 and branch.json()["vms"] == []
        assert "error" in branch.json()
        unauthorized = httpx.get(versim.base_url + "/api/v1/vms",
                                 headers={"Authorization": "Bearer wrong"})
        assert unauthorized.status_code == 401
        assert unauthorized.json() == {"error": "Unauthorized", "success": False}
        assert raw.delete(f"/vm/{vm_id}").json() == {"vm_id": vm_id}


async def test_errors_carry_the_servers_message(vers: VersClient, versim: VersSimulator) -> None:
    with pytest.raises(errors.BadRequest, match=r"vm_config\.vcpu_count must be a positive"):
        await vers.new_root(vcpu=0)
    with pytest.raises(errors.NotFound, match="image nope not found"):
        await vers.new_root(image_name="nope")
    with pytest.raises(errors.NotFound, match="not found") as missing:
        await vers.status(str(uuid.uuid4()))
    assert missing.value.status == 404 and missing.value.endpoint == "GET /vm/{id}/status"
    with pytest.raises(errors.BadRequest, match="exactly one of"):
        await vers.from_commit(commit_id="a", tag_name="b")
    async with VersClient(versim.base_url, Secret("wrong-key")) as stranger:
        with pytest.raises(errors.Unauthorized, match="Unauthorized"):
            await stranger.list_vms()
    versim.set_faults(max_vms=len(await vers.list_vms()) + 1)
    first = await vers.new_root()
    try:
        with pytest.raises(errors.Forbidden, match="VM limit reached"):
            await vers.new_root()
    finally:
        versim.set_faults(max_vms=0)
        await vers.delete(first)


async def test_pause_resume_and_sleeping(vers: VersClient, versim: VersSimulator) -> None:
    vm_id = await vers.new_root(wait_boot=True)
    await vers.pause(vm_id)
    assert (await vers.status(vm_id)).state == "paused"
    await vers.pause(vm_id)  # same state: a no-op, as far as anyone has seen
    await vers.resume(vm_id)
    assert (await vers.status(vm_id)).state == "running"
    versim.vm_action(vm_id, "sleep")
    with pytest.raises(errors.Conflict, match="sleeping"):
        await vers.status(vm_id)
    with pytest.raises(errors.Conflict, match="sleeping"):
        await vers.delete(vm_id)
    assert (await vers.metadata(vm_id)).state == "sleeping"
    versim.vm_action(vm_id, "wake")
    assert (await vers.status(vm_id)).state == "running"
    await vers.delete(vm_id)


async def test_commits_tags_branches_and_from_commit(vers: VersClient,
                                                     versim: VersSimulator) -> None:
    parent = await vers.new_root(wait_boot=True)
    commit_id = await vers.commit(parent, name="golden", description="for tests")
    assert (await vers.status(parent)).state == "running"  # resumed after the snapshot
    page = await vers.list_commits(limit=500)
    listed = next(c for c in page.commits if c.commit_id == commit_id)
    assert (listed.name, listed.description, listed.parent_vm_id) == (
        "golden", "for tests", parent)
    paused_commit = await vers.commit(parent, keep_paused=True)
    assert (await vers.status(parent)).state == "paused"

    child = await vers.from_commit(commit_id=commit_id)
    meta = await vers.metadata(child)
    assert (meta.parent_commit_id, meta.grandparent_vm_id) == (commit_id, parent)
    assert (await vers.status(child)).labels == {}  # from_commit takes no labels

    versim.tag("golden-api", commit_id)
    versim.tag("reef:v1", commit_id)
    by_tag = await vers.from_commit(tag_name="golden-api")
    by_ref = await vers.from_commit(ref="reef:v1")
    with pytest.raises(errors.BadRequest, match="repo:tag"):
        await vers.from_commit(ref="no-colon")
    with pytest.raises(errors.NotFound, match="tag nope not found"):
        await vers.from_commit(tag_name="nope")
    branched = await vers.branch(commit_id, count=2)
    assert len(branched) == 2 and len(set(branched)) == 2
    from_vm = await vers.branch(child, count=1)
    assert (await vers.metadata(from_vm[0])).grandparent_vm_id == child

    with pytest.raises(errors.Conflict, match="is used by VM"):
        await vers.delete_commit(commit_id)
    for vm_id in (child, by_tag, by_ref, *branched, *from_vm, parent):
        await vers.delete(vm_id)
    assert await vers.delete_commit(commit_id) is True
    assert await vers.delete_commit(commit_id) is False
    assert await vers.delete_commit(paused_commit) is True


async def test_grow_disk(vers: VersClient) -> None:
    vm_id = await vers.new_root(disk_mib=1024)
    with pytest.raises(errors.BadRequest, match="larger"):
        await vers.grow_disk(vm_id, 512)
    await vers.grow_disk(vm_id, 2048)
    await vers.delete(vm_id)


async def test_429_with_retry_after_is_retried(vers: VersClient, versim: VersSimulator) -> None:
    versim.reset_request_counts()
    versim.set_faults(rate_limit_burst=2, retry_after_ms=50)
    await vers.list_vms()
    assert versim.request_counts() == {"GET /vms": 3}
    versim.set_faults(rate_limit_burst=10)
    with pytest.raises(errors.RateLimited, match="Too many requests"):
        await vers.list_vms()
    assert versim.request_counts()["GET /vms"] == 3 + 4  # one try and three retries


async def test_a_lost_create_answer_never_makes_a_second_vm(vers: VersClient,
                                                           versim: VersSimulator) -> None:
    mark = {"reef.vers.sh/uid": str(uuid.uuid4())}
    versim.reset_request_counts()
    versim.set_faults(lose_response_rate=1.0)
    with pytest.raises(errors.OutcomeUnknown, match="may or may not exist"):
        await vers.new_root(labels=mark)
    assert versim.request_counts()["POST /vm/new_root"] == 1  # not retried blindly
    assert len(await vers.find_by_labels(mark)) == 1
    versim.set_faults(lose_response_rate=0)
    vm_id = await vers.new_root_once(mark)
    assert [vm.vm_id for vm in await vers.find_by_labels(mark)] == [vm_id]
    assert versim.request_counts()["POST /vm/new_root"] == 1
    await vers.delete(vm_id)


async def test_workload_completes_under_injected_errors(versim: VersSimulator) -> None:
    versim.set_faults(error_rate=0.2, rate_limit_burst=3, retry_after_ms=20,
                      lose_response_rate=0.2)
    versim.reset_request_counts()
    run = uuid.uuid4().hex[:8]
    try:
        async with VersClient(versim.base_url, versim.api_key,
                              retry=RetryPolicy(retries=6, base_delay=0.02,
                                                max_delay=0.1)) as vers:
            vm_ids = [await vers.new_root_once({"run": run, "n": str(n)}) for n in range(6)]
            for vm_id in vm_ids:
                await vers.pause(vm_id)
                assert (await vers.status(vm_id)).state == "paused"
                await vers.resume(vm_id)
                assert (await vers.metadata(vm_id)).state == "running"
            survivors = await vers.find_by_labels({"run": run})
            assert sorted(vm.vm_id for vm in survivors) == sorted(vm_ids)  # none twice
            for vm_id in vm_ids:
                assert await vers.delete(vm_id) in (True, False)
            versim.set_faults(error_rate=0, lose_response_rate=0)
            assert await vers.find_by_labels({"run": run}) == []
    finally:
        versim.set_faults(error_rate=0, lose_response_rate=0, rate_limit_burst=0)
    counts = versim.request_counts()
    minimal = 6 * 2 + 6 * 5 + 6  # create (+lookup), pause/status/resume/metadata, delete
    assert sum(counts.values()) < 3 * minimal, counts


def test_simulator_refuses_to_run_without_root(tmp_path: Path) -> None:
    tmp_path.chmod(0o777)
    result = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-m",
         "reef_devkit.versim", "--state-dir", str(tmp_path / "s"), "--api-key", "k"],
        capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 2
    assert "reef-versim needs root" in result.stderr
    assert "namespace" in result.stderr
