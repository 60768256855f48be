"""A real etcd + kube-apiserver + kube-controller-manager on loopback, run as daemons.

`up()` is idempotent and self-healing: whatever component is not running is
started (on the ports recorded at first start, so kubeconfigs stay valid),
then the CRDs and the operator's RBAC are applied. `down()` stops every
process and removes the state directory. Every failing step raises
`ControlPlaneError` naming the step and quoting the component's log.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import ssl
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from reef_devkit.controlplane import bootstrap
from reef_devkit.controlplane.build import Binaries, ensure_binaries
from reef_devkit.controlplane.errors import ControlPlaneError
from reef_devkit.controlplane.keys import rsa_signing_key
from reef_devkit.controlplane.processes import (
    free_port,
    log_tail,
    port_listening,
    running_pid,
    start_daemon,
    stop_daemon,
)
from reef_operator.certificates import CertificateAuthority, KeyPair, write_private
from reef_operator.constants import OPERATOR_NAMESPACE, OPERATOR_SERVICE_ACCOUNT

COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager")
ADMIN_USER = "reef-admin"
OPERATOR_USER = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{OPERATOR_SERVICE_ACCOUNT}"
ADMIN_CONTEXT = "reef-dev"
OPERATOR_CONTEXT = "reef-dev-operator"
READY_TIMEOUT_SECONDS = 90.0


@dataclass
class Ports:
    etcd_client: int
    etcd_peer: int
    apiserver: int


@dataclass(frozen=True)
class Pki:
    ca_cert: Path
    serving: KeyPair
    service_account: KeyPair  # .cert is the public key


def ensure_pki(directory: Path) -> Pki:
    ca = CertificateAuthority(directory, "reef-operator local CA")
    serving = ca.issue_server(
        "apiserver",
        ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"],
        ("127.0.0.1", "10.0.0.1"),
    )
    return Pki(ca.cert_path, serving, rsa_signing_key(directory, "service-account"))


@dataclass
class Tokens:
    admin: str
    operator: str


def default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "reef-operator" / "dev"


class LocalControlPlane:
    """One local control plane, identified by its state directory."""

    def __init__(
        self,
        state_dir: Path | None = None,
        *,
        cache_dir: Path | None = None,
        controller_manager: bool = True,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.state_dir = (state_dir or default_state_dir()).absolute()
        self.cache_dir = cache_dir
        self.components = COMPONENTS if controller_manager else COMPONENTS[:2]
        self._log = log or (lambda message: print(message, flush=True))

    # -- paths the user and the tests rely on --------------------------------------------
    @property
    def kubeconfig(self) -> Path:
        """Admin kubeconfig (current context: admin; also holds the operator context)."""
        return self.state_dir / "kubeconfig"

    @property
    def operator_kubeconfig(self) -> Path:
        """Kubeconfig of the operator's own identity, bound only by the operator's RBAC."""
        return self.state_dir / "operator.kubeconfig"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self._ports().apiserver}"

    @property
    def ca_file(self) -> Path:
        return self.state_dir / "pki" / "ca.crt"

    def binaries(self) -> Binaries:
        return ensure_binaries(self.cache_dir, self._log)

    def log_file(self, component: str) -> Path:
        return self.state_dir / "logs" / f"{component}.log"

    # -- lifecycle ---------------------------------------------------------------------
    def up(self) -> None:
        """Start what is not running, wait until it serves, install CRDs and RBAC."""
        binaries = self.binaries()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.state_dir.chmod(0o700)
        ports, tokens = self._ports(create=True), self._tokens(create=True)
        pki = ensure_pki(self.state_dir / "pki")
        self._write_credentials(ports, tokens, pki)
        for component in self.components:
            if running_pid(self._pid_file(component)) is not None:
                continue
            self._start(component, binaries, ports, pki)
            self._wait_ready(component, ports, tokens)
        bootstrap.install(self.kubeconfig)
        self._log(f"control plane ready at {self.server} (state: {self.state_dir})")

    def down(self) -> None:
        """Stop every component and remove the state directory; no process is left."""
        ports = self._ports() if (self.state_dir / "state.json").exists() else None
        for component in reversed(COMPONENTS):
            stop_daemon(self._pid_file(component))
        if ports is not None:
            busy = [p for p in asdict(ports).values() if port_listening(p)]
            if busy:
                raise ControlPlaneError(f"control plane stopped but ports {busy} are still bound")
        shutil.rmtree(self.state_dir, ignore_errors=True)

    def restart(self, component: str) -> None:
        """Stop and start one component (resilience tests restart the apiserver this way)."""
        stop_daemon(self._pid_file(component))
        self.up()

    def running(self) -> dict[str, int | None]:
        return {c: running_pid(self._pid_file(c)) for c in self.components}

    def env_lines(self) -> list[str]:
        """Shell lines that point kubectl at this control plane (for `eval`)."""
        self._state()  # says so if there is no control plane here
        kubectl_dir = self.binaries().directory
        return [
            f"export KUBECONFIG={self.kubeconfig}",
            f'export PATH="{kubectl_dir}:$PATH"',
        ]

    # -- internals ---------------------------------------------------------------------
    def _pid_file(self, component: str) -> Path:
        return self.state_dir / "run" / f"{component}.pid"

    def _state(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads((self.state_dir / "state.json").read_text())
        except FileNotFoundError:
            raise ControlPlaneError(
                f"no local control plane in {self.state_dir}: run `reef-operator dev up`"
            ) from None
        return data

    def _ports(self, create: bool = False) -> Ports:
        state_file = self.state_dir / "state.json"
        if create and not state_file.exists():
            ports = Ports(free_port(), free_port(), free_port())
            state_file.write_text(json.dumps({"ports": asdict(ports)}, indent=2))
        return Ports(**self._state()["ports"])

    def _tokens(self, create: bool = False) -> Tokens:
        token_file = self.state_dir / "tokens.json"
        if create and not token_file.exists():
            write_private(
                token_file,
                json.dumps(asdict(Tokens(secrets.token_hex(24), secrets.token_hex(24)))),
            )
        return Tokens(**json.loads(token_file.read_text()))

    def _write_credentials(self, ports: Ports, tokens: Tokens, pki: Pki) -> None:
        write_private(
            self.state_dir / "tokens.csv",
            f'{tokens.admin},{ADMIN_USER},{ADMIN_USER},"system:masters"\n'
            f"{tokens.operator},{OPERATOR_USER},{OPERATOR_USER},"
            f'"system:serviceaccounts,system:serviceaccounts:{OPERATOR_NAMESPACE}"\n',
        )
        server = f"https://127.0.0.1:{ports.apiserver}"
        admin = _kubeconfig(server, pki.ca_cert, {ADMIN_CONTEXT: tokens.admin,
                                                  OPERATOR_CONTEXT: tokens.operator})
        write_private(self.kubeconfig, admin)
        write_private(self.operator_kubeconfig,
                       _kubeconfig(server, pki.ca_cert, {OPERATOR_CONTEXT: tokens.operator}))

    def _start(self, component: str, binaries: Binaries, ports: Ports, pki: Pki) -> None:
        argv = self._argv(component, binaries, ports, pki)
        port = {"etcd": ports.etcd_client, "kube-apiserver": ports.apiserver}.get(component)
        if port is not None and port_listening(port):
            raise ControlPlaneError(
                f"cannot start {component}: port {port} is taken by another process "
                f"(`reef-operator dev down` and `up` again picks new ports)"
            )
        self._log(f"starting {component}")
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.state_dir)}
        start_daemon(argv, self._pid_file(component), self.log_file(component), env)

    def _argv(self, component: str, binaries: Binaries, ports: Ports, pki: Pki) -> list[str]:
        etcd_url = f"http://127.0.0.1:{ports.etcd_client}"
        peer_url = f"http://127.0.0.1:{ports.etcd_peer}"
        if component == "etcd":
            etcd = shutil.which("etcd")
            if etcd is None:
                raise ControlPlaneError("etcd is not installed (apt package etcd-server)")
            return [
                etcd, "--name", "default", "--data-dir", str(self.state_dir / "etcd"),
                "--listen-client-urls", etcd_url, "--advertise-client-urls", etcd_url,
                "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
                "--initial-cluster", f"default={peer_url}",
            ]
        if component == "kube-apiserver":
            return [
                str(binaries.kube_apiserver),
                f"--etcd-servers={etcd_url}",
                "--bind-address=127.0.0.1",
                f"--secure-port={ports.apiserver}",
                "--insecure-port=0",
                # A loopback advertise address makes the endpoints controller complain.
                "--advertise-address=10.0.0.1",
                f"--tls-cert-file={pki.serving.cert}",
                f"--tls-private-key-file={pki.serving.key}",
                f"--client-ca-file={pki.ca_cert}",
                f"--token-auth-file={self.state_dir / 'tokens.csv'}",
                f"--service-account-key-file={pki.service_account.cert}",
                f"--service-account-signing-key-file={pki.service_account.key}",
                "--service-account-issuer=https://kubernetes.default.svc",
                "--authorization-mode=RBAC",
                "--service-cluster-ip-range=10.0.0.0/24",
                "--disable-admission-plugins=ServiceAccount",
                "--audit-log-path=" + str(self.state_dir / "logs" / "audit.log"),
                "--audit-policy-file=" + str(self._audit_policy()),
                "--audit-log-maxsize=200",
                "--audit-log-maxbackup=1",
            ]
        if component == "kube-controller-manager":
            return [
                str(binaries.kube_controller_manager),
                f"--kubeconfig={self.kubeconfig}",
                f"--service-account-private-key-file={pki.service_account.key}",
                f"--root-ca-file={pki.ca_cert}",
                "--leader-elect=false",
                "--use-service-account-credentials=false",
                "--port=0",
                "--secure-port=0",
                "--controllers=*,-csrsigning,-csrapproving,-csrcleaner,-nodeipam",
            ]
        raise ControlPlaneError(f"unknown component {component!r}")

    def _audit_policy(self) -> Path:
        # Metadata only (who did what to which resource), never request bodies:
        # benchmarks count requests from it and Secrets must not land in a log.
        path = self.state_dir / "audit-policy.yaml"
        path.write_text(yaml.safe_dump({
            "apiVersion": "audit.k8s.io/v1",
            "kind": "Policy",
            "omitStages": ["RequestReceived"],
            "rules": [{"level": "Metadata"}],
        }))
        return path

    def _wait_ready(self, component: str, ports: Ports, tokens: Tokens) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        last_error = "not answering yet"
        while time.monotonic() < deadline:
            if running_pid(self._pid_file(component)) is None:
                raise ControlPlaneError(
                    f"{component} exited while starting; last lines of "
                    f"{self.log_file(component)}:\n{log_tail(self.log_file(component))}"
                )
            ready, last_error = self._probe(component, ports, tokens)
            if ready:
                return
            time.sleep(0.3)
        raise ControlPlaneError(
            f"{component} not ready after {READY_TIMEOUT_SECONDS:.0f}s ({last_error}); last lines "
            f"of {self.log_file(component)}:\n{log_tail(self.log_file(component))}"
        )

    def _probe(self, component: str, ports: Ports, tokens: Tokens) -> tuple[bool, str]:
        try:
            if component == "etcd":
                answer = httpx.get(f"http://127.0.0.1:{ports.etcd_client}/health", timeout=2)
                return answer.status_code == 200, answer.text
            if component == "kube-apiserver":
                context = ssl.create_default_context(cafile=str(self.ca_file))
                answer = httpx.get(
                    f"https://127.0.0.1:{ports.apiserver}/readyz",
                    headers={"Authorization": f"Bearer {tokens.admin}"},
                    verify=context,
                    timeout=5,
                )
                return answer.status_code == 200, f"readyz {answer.status_code}"
        except httpx.HTTPError as error:
            return False, type(error).__name__
        # The controller manager serves nothing; staying alive a moment is the signal.
        time.sleep(1)
        return running_pid(self._pid_file(component)) is not None, "exited"


def _kubeconfig(server: str, ca_file: Path, contexts: dict[str, str]) -> str:
    return yaml.safe_dump({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "reef-dev", "cluster": {"server": server,
                                                      "certificate-authority": str(ca_file)}}],
        "users": [{"name": name, "user": {"token": token}} for name, token in contexts.items()],
        "contexts": [{"name": name, "context": {"cluster": "reef-dev", "user": name}}
                     for name in contexts],
        "current-context": next(iter(contexts)),
    }, sort_keys=False)
