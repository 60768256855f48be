"""Fixtures shared by every test ring.

`control_plane` is one real etcd + kube-apiserver + kube-controller-manager for
the whole test session (built from Debian's source on a machine's first run);
`namespace` gives each test a fresh namespace in it.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from reef_devkit.controlplane import LocalControlPlane
from reef_devkit.operator_process import OperatorProcess
from reef_devkit.versim.harness import VersSimulator
from reef_operator.constants import GROUP, VERSION
from reef_operator.providers.vers.client import RetryPolicy, VersClient
from reef_operator.providers.vers.ssh import SshSettings, VersConnector
from reef_operator.secret import Secret

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Kube:
    """Clients for one identity against the local control plane."""

    api: client.ApiClient
    kubeconfig: Path
    kubectl_binary: Path

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

    def get(self, plural: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        """One reef custom object as a plain dict."""
        if namespace is None:
            found = self.custom.get_cluster_custom_object(GROUP, VERSION, plural, name)
        else:
            found = self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, plural,
                                                             name)
        return cast(dict[str, Any], found)

    def kubectl(self, *args: str, stdin: str | None = None,
                check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.kubectl_binary), "--kubeconfig", str(self.kubeconfig), *args],
            input=stdin, capture_output=True, text=True, timeout=60,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr}")
        return result


def _kube(kubeconfig: Path, kubectl: Path) -> Kube:
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    return Kube(client.ApiClient(configuration), kubeconfig, kubectl)


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalControlPlane]:
    plane = LocalControlPlane(tmp_path_factory.mktemp("control-plane"))
    try:
        plane.up()
        yield plane
    finally:
        plane.down()


@pytest.fixture(scope="session")
def admin(control_plane: LocalControlPlane) -> Kube:
    return _kube(control_plane.kubeconfig, control_plane.binaries().kubectl)


@pytest.fixture(scope="session")
def operator_identity(control_plane: LocalControlPlane) -> Kube:
    return _kube(control_plane.operator_kubeconfig, control_plane.binaries().kubectl)


@pytest.fixture
def namespace(admin: Kube, request: pytest.FixtureRequest) -> Iterator[str]:
    name = f"t-{request.node.name[:40].lower().strip('_')}-{uuid.uuid4().hex[:6]}"
    name = "".join(c if c.isalnum() else "-" for c in name).replace("--", "-")
    admin.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    admin.core.delete_namespace(name)


def as_tenant(admin: Kube, namespace: str, user: str, resources: Sequence[str] = ("*",),
              verbs: Sequence[str] = ("*",)) -> Kube:
    """`user`, impersonated through the admin's credentials, with a Role on reef objects in
    `namespace` and no other right anywhere: a team's identity as the operator meets it."""
    rbac = client.RbacAuthorizationV1Api(admin.api)
    role = f"reef-tenant-{user}"
    rbac.create_namespaced_role(namespace, client.V1Role(
        metadata=client.V1ObjectMeta(name=role),
        rules=[client.V1PolicyRule(api_groups=[GROUP], resources=list(resources),
                                   verbs=list(verbs))]))
    rbac.create_namespaced_role_binding(namespace, client.V1RoleBinding(
        metadata=client.V1ObjectMeta(name=role),
        role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role",
                                  name=role),
        subjects=[client.RbacV1Subject(api_group="rbac.authorization.k8s.io", kind="User",
                                       name=user)]))
    impersonating = client.ApiClient(admin.api.configuration, header_name="Impersonate-User",
                                     header_value=user)
    return Kube(impersonating, admin.kubeconfig, admin.kubectl_binary)


@pytest.fixture(scope="session")
def versim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VersSimulator]:
    """One Vers simulator for the session (boot delay 0); faults reset per test."""
    simulator = VersSimulator(tmp_path_factory.mktemp("versim"))
    try:
        yield simulator
    finally:
        simulator.stop()


@pytest.fixture
async def vers(versim: VersSimulator) -> AsyncIterator[VersClient]:
    versim.set_faults(error_rate=0, lose_response_rate=0, rate_limit_burst=0, latency=0,
                      max_vms=0)
    async with VersClient(versim.base_url, versim.api_key,
                          retry=RetryPolicy(base_delay=0.05, max_delay=0.2)) as client:
        yield client


@pytest.fixture
async def connector(versim: VersSimulator, vers: VersClient) -> AsyncIterator[VersConnector]:
    async def key(vm_id: str) -> Secret:
        return (await vers.ssh_key(vm_id)).private_key

    settings = SshSettings(vm_domain=f"vm.{versim.domain}", port=versim.tls_port,
                           connect_host="127.0.0.1", tls_verify=versim.ca_file,
                           connect_timeout=5)
    ssh = VersConnector(settings, key)
    yield ssh
    await ssh.close()


def wait_for(check: Callable[[], Any], within: float = 60.0, what: str = "",
             operator: OperatorProcess | None = None) -> Any:
    """Poll until `check` returns something truthy; an API error (the object is not there
    yet, the apiserver restarts) counts as not yet."""
    deadline = time.monotonic() + within
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except ApiException as error:
            last = error
        if last and not isinstance(last, ApiException):
            return last
        time.sleep(0.3)
    tail = operator.log_tail(60) if operator else ""
    raise AssertionError(f"timed out waiting for {what or check}: last {last!r}\n{tail}")
