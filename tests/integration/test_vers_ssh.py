"""Reaching simulated VMs the way Vers users do: SSH inside TLS, routed by SNI."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from reef_devkit.versim.harness import VersSimulator
from reef_operator.providers.errors import HostKeyMismatch, ShellError
from reef_operator.providers.output import OUTPUT_LIMIT
from reef_operator.providers.vers import errors
from reef_operator.providers.vers.client import VersClient
from reef_operator.providers.vers.ssh import SshSettings, VersConnector


def _sim_vm(versim: VersSimulator, vm_id: str) -> dict[str, Any]:
    return next(vm for vm in versim.vms() if vm["vm_id"] == vm_id)


async def test_run_a_command_over_tls_and_sni(vers: VersClient, connector: VersConnector) -> None:
    vm_id = await vers.new_root(wait_boot=True)
    shell = await connector.shell(vm_id)
    result = await shell.run("echo hello from $(whoami) in $PWD; exit 3")
    assert result.exit_status == 3
    assert result.stdout == "hello from root in /root\n"
    assert shell.host_key_fingerprint.startswith("SHA256:")
    assert await connector.shell(vm_id) is shell  # one multiplexed connection, reused
    outputs = await asyncio.gather(*(shell.run(f"echo {n}") for n in range(20)))
    assert [o.stdout for o in outputs] == [f"{n}\n" for n in range(20)]
    await vers.delete(vm_id)


async def test_stock_openssh_client_connects_like_vers_users_do(
    vers: VersClient, versim: VersSimulator, tmp_path: Path
) -> None:
    vm_id = await vers.new_root(wait_boot=True)
    key_file = tmp_path / "key"
    key_file.write_text((await vers.ssh_key(vm_id)).private_key.reveal())
    key_file.chmod(0o600)
    result = subprocess.run(
        ["ssh", "-i", str(key_file), "-o", "BatchMode=yes",
         "-o", "StrictHostKeyChecking=accept-new",
         "-o", f"UserKnownHostsFile={tmp_path / 'known_hosts'}",
         "-o", f"ProxyCommand=openssl s_client -quiet -connect 127.0.0.1:{versim.tls_port} "
               "-servername %h",
         f"root@{vm_id}.vm.{versim.domain}", "echo it works; ls -A /tmp | wc -l"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["it", "works", "0"]  # a private, empty /tmp
    await vers.delete(vm_id)


async def test_unknown_vm_name_gets_no_connection(versim: VersSimulator,
                                                  connector: VersConnector) -> None:
    with pytest.raises(errors.VersError):
        await connector.run("11111111-2222-4333-8444-555555555555", "true")


async def test_host_key_is_pinned(vers: VersClient, connector: VersConnector) -> None:
    vm_id = await vers.new_root(wait_boot=True)
    pinned = (await connector.shell(vm_id)).host_key_fingerprint
    connector.forget(vm_id)
    assert (await connector.shell(vm_id, pinned)).host_key_fingerprint == pinned
    connector.forget(vm_id)
    other = await vers.new_root(wait_boot=True)
    impostor = (await connector.shell(other)).host_key_fingerprint
    with pytest.raises(HostKeyMismatch, match="refusing to connect") as mismatch:
        await connector.shell(vm_id, impostor)
    assert pinned in str(mismatch.value) or impostor in str(mismatch.value)
    # A pooled connection is held to the pin too.
    with pytest.raises(HostKeyMismatch):
        await connector.shell(other, pinned)
    await vers.delete(vm_id)
    await vers.delete(other)


async def test_two_vms_are_isolated(vers: VersClient, connector: VersConnector) -> None:
    first, second = await vers.new_root(wait_boot=True), await vers.new_root(wait_boot=True)
    await connector.run(first, "mkdir -p /tmp/pi-rpc && echo one > /tmp/pi-rpc/out && "
                        "echo mine > /root/file && (setsid sleep 300 >/dev/null 2>&1 &)")
    await connector.run(second, "mkdir -p /tmp/pi-rpc && echo two > /tmp/pi-rpc/out")
    assert (await connector.run(first, "cat /tmp/pi-rpc/out")).stdout == "one\n"
    assert (await connector.run(second, "cat /tmp/pi-rpc/out")).stdout == "two\n"
    assert (await connector.run(second, "test -e /root/file")).exit_status == 1
    assert "sleep 300" not in (await connector.run(second, "ps -eo args")).stdout
    assert "sleep 300" in (await connector.run(first, "ps -eo args")).stdout
    tools = await connector.run(second, "command -v tmux bash node")
    assert tools.exit_status == 0, "host binaries must be visible in a VM"
    await vers.delete(first)
    await vers.delete(second)


async def test_pause_freezes_processes_and_resume_continues_them(
    vers: VersClient, versim: VersSimulator, connector: VersConnector
) -> None:
    vm_id = await vers.new_root(wait_boot=True)
    # The counter is renamed into place so a read never sees a half-written file.
    await connector.run(vm_id, "setsid sh -c 'echo $$ > /root/pid; i=0; while true; do "
                        "i=$((i+1)); echo $i > /root/count.new; mv /root/count.new /root/count; "
                        "sleep 0.05; done' "
                        ">/dev/null 2>&1 < /dev/null &")
    pid_before = (await connector.run(vm_id, "sleep 0.3; cat /root/pid")).stdout
    count_file = Path(_sim_vm(versim, vm_id)["directory"]) / "root" / "count"

    await vers.pause(vm_id)
    frozen_at = count_file.read_text()
    await asyncio.sleep(0.6)
    assert count_file.read_text() == frozen_at, "a paused VM kept running"
    assert _sim_vm(versim, vm_id)["frozen"] is True
    # A connection to a frozen VM hangs (here: until the connect timeout).
    fresh = VersConnector(SshSettings(**{**connector.settings.__dict__,
                                         "connect_timeout": 1.5}), connector._key_source)
    started = time.monotonic()
    with pytest.raises(ShellError, match="timed out"):
        await fresh.run(vm_id, "true")
    assert time.monotonic() - started >= 1.4

    await vers.resume(vm_id)
    await asyncio.sleep(0.4)
    assert int(count_file.read_text()) > int(frozen_at)
    after = await connector.run(vm_id, "cat /root/pid; kill -0 $(cat /root/pid) && echo alive")
    assert after.stdout == pid_before + "alive\n"  # the same process, continued
    await vers.delete(vm_id)


async def test_a_dropped_connection_is_re_established(
    vers: VersClient, versim: VersSimulator, connector: VersConnector
) -> None:
    vm_id = await vers.new_root(wait_boot=True)
    first = await connector.shell(vm_id)
    assert (await first.run("echo before")).stdout == "before\n"
    # Cut it from the VM's side: kill the sshd process serving this connection.
    killed = 0
    for pid in _vm_pids(versim, vm_id):
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        if cmdline.startswith(b"sshd: root"):
            os.kill(pid, signal.SIGKILL)
            killed += 1
    assert killed
    for _ in range(50):
        if first.closed:
            break
        await asyncio.sleep(0.05)
    assert (await connector.run(vm_id, "echo after")).stdout == "after\n"
    assert (await connector.shell(vm_id)) is not first
    await vers.delete(vm_id)


async def test_delete_kills_everything_and_removes_files(
    vers: VersClient, versim: VersSimulator, connector: VersConnector
) -> None:
    vm_id = await vers.new_root(wait_boot=True)
    await connector.run(vm_id, "(setsid sleep 600 >/dev/null 2>&1 &); echo x > /root/f")
    directory = Path(_sim_vm(versim, vm_id)["directory"])
    pids = _vm_pids(versim, vm_id)
    assert len(pids) >= 2
    await vers.delete(vm_id)
    assert not directory.exists()
    assert [pid for pid in pids if _running(pid)] == []


async def test_a_commit_snapshots_the_filesystem(vers: VersClient,
                                                 connector: VersConnector) -> None:
    parent = await vers.new_root(wait_boot=True)
    await connector.run(parent, "mkdir -p /root/workspace && echo v1 > /root/workspace/app.txt "
                        "&& mkfifo /root/workspace/fifo")
    commit_id = await vers.commit(parent)
    await connector.run(parent, "echo v2 > /root/workspace/app.txt")
    child = await vers.from_commit(commit_id=commit_id)
    for _ in range(100):
        if (await vers.status(child)).state == "running":
            break
        await asyncio.sleep(0.05)
    assert (await connector.run(child, "cat /root/workspace/app.txt")).stdout == "v1\n"
    assert (await connector.run(parent, "cat /root/workspace/app.txt")).stdout == "v2\n"
    for vm_id in (parent, child):
        await vers.delete(vm_id)


async def test_secrets_never_reach_logs_reprs_or_errors(
    vers: VersClient, versim: VersSimulator, connector: VersConnector,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    api_key = versim.api_key.reveal()
    vm_id = await vers.new_root(wait_boot=True)
    private_key = (await vers.ssh_key(vm_id)).private_key
    texts = [repr(vers), repr(private_key), str(private_key), f"{private_key}",
             repr(versim.api_key)]
    await connector.run(vm_id, "true")
    versim.set_faults(error_rate=1.0)
    try:
        with pytest.raises(errors.VersError) as failure:
            await vers.list_vms()
        texts += [str(failure.value), repr(failure.value)]
    finally:
        versim.set_faults(error_rate=0)
    await vers.delete(vm_id)
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    haystack = "\n".join([*texts, caplog.text, ps, versim.log_file.read_text()])
    assert api_key not in haystack
    body = private_key.reveal().splitlines()[1]
    assert body not in haystack
    assert "injected failure" in haystack  # the logs did capture the traffic


def _vm_pids(versim: VersSimulator, vm_id: str) -> list[int]:
    for base in (Path("/sys/fs/cgroup/freezer"), Path("/sys/fs/cgroup")):
        for procs in base.glob(f"versim-*/{vm_id}/cgroup.procs"):
            return [int(p) for p in procs.read_text().split()]
    return []


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


async def test_a_commands_output_is_cut_at_the_bound_with_a_marker(
        vers: VersClient, connector: VersConnector) -> None:
    """A VM printing without end costs the operator OUTPUT_LIMIT at most; stdin still goes
    in whole and the exit status comes back."""
    vm_id = await vers.new_root(wait_boot=True)
    total = 2 * OUTPUT_LIMIT + 5
    result = await connector.run(vm_id, f"wc -c >&2; head -c {total} /dev/zero | tr '\\0' x; "
                                 "exit 3", stdin="y" * 100_000)
    assert result.exit_status == 3 and result.stderr.strip() == "100000"
    assert result.stdout == "x" * OUTPUT_LIMIT + (
        f"\n[output cut: {total - OUTPUT_LIMIT:,} bytes beyond the {OUTPUT_LIMIT:,}-byte "
        "bound]\n")
    await vers.delete(vm_id)
