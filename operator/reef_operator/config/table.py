"""Every setting the operator reads, declared once: key, kind, default, parser, meaning,
secret or not.

Everything else derives from these rows: parsing and the source of each value
(`resolve`), what `kubectl reef config` lists and may change, the startup log, the
chart's ConfigMap keys (`render/chart.py`) and docs/configuration.md (`render/configuration.py`).

The settings come in groups:

- `OPERATOR_SETTINGS`, layered: environment → ConfigMap (a secret: Secret) → file → default.
  They make the `OperatorConfig`.
- `LOCATION_SETTINGS`: where the layers are; from the environment only, since they say
  where to look for everything else.
- `WEBHOOK_SETTINGS`: the admission webhook server (`WebhookConfig`), from the environment
  only: the chart sets them in the Deployment next to the certificate it mounts.
- `KUBERNETES_SERVICE_HOST`: set by Kubernetes in every pod.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Generic, TypeVar

from reef_operator.config import parsers
from reef_operator.constants import OPERATOR_NAMESPACE
from reef_operator.secret import Secret

T = TypeVar("T")

NOT_SET: Final = "(not set)"


@dataclass(frozen=True)
class Derived(Generic[T]):
    """A default computed when the setting is resolved, from the environment and the values
    of the settings before it; `shown` is how the docs state it."""

    compute: Callable[[Mapping[str, str], Mapping[str, Any]], T]
    shown: str


@dataclass(frozen=True)
class Setting(Generic[T]):
    """One setting. `field` is the attribute of its group's typed value (`OperatorConfig`,
    `WebhookConfig`); a setting read on its own has none."""

    key: str
    kind: str              # what the value is, in words: the docs' "value" column
    parse: parsers.Parse[T]
    default: T | Derived[T]
    about: str             # what it does: the docs' "meaning" column
    field: str = ""
    # A secret is shown masked and read from the environment, a Secret or the file, never
    # from the ConfigMap.
    secret: bool = False
    # The value may be the path of a file in the operator's container: only that machine
    # can check it.
    may_name_a_file: bool = False

    def default_for(self, env: Mapping[str, str], values: Mapping[str, Any]) -> T:
        if isinstance(self.default, Derived):
            return self.default.compute(env, values)
        return self.default

    @property
    def default_text(self) -> str:
        """The default as the docs show it: `—` when there is none."""
        if isinstance(self.default, Derived):
            return self.default.shown
        return "—" if self.default is None else f"`{shown(self.default)}`"

    def names_a_file(self, text: str) -> bool:
        """Whether this value is the path of a file (which only the operator's machine can
        check) rather than a word."""
        return self.may_name_a_file and parsers.truth(text) is None


def shown(value: object) -> str:
    """A value as the log, `kubectl reef config` and the docs show it; a secret masked."""
    if value is None:
        return NOT_SET
    if isinstance(value, Secret):
        return value.masked()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return ",".join(value) if value else "(none)"
    return str(value)


def default_local_root(env: Mapping[str, str]) -> Path:
    """`$XDG_STATE_HOME/reef-operator/local`, else `~/.local/state/reef-operator/local`.

    A relative XDG_STATE_HOME is ignored, as the XDG spec requires.
    """
    state = env.get("XDG_STATE_HOME", "").strip()
    base = Path(state) if state and Path(state).is_absolute() else home(env) / ".local" / "state"
    return base / "reef-operator" / "local"


def home(env: Mapping[str, str]) -> Path:
    given = env.get("HOME", "").strip()
    return Path(given) if given else Path.home()


# Defaults other modules use (the benchmarks compare against the platform limit).
DEFAULT_PLATFORM_RATE: Final = 20.0
DEFAULT_PLATFORM_BURST: Final = 40
DEFAULT_CONFIGMAP: Final = "reef-operator-config"
DEFAULT_SECRET: Final = "reef-vers-credentials"
DEFAULT_CONFIG_FILE: Final = "~/.vers/config.json"  # shared with the Vers CLI
EVERY_INTERFACE: Final = "0.0.0.0"


# --- the operator's settings: environment → ConfigMap/Secret → file → default ---------------

VERS_API_KEY: Final = Setting[Secret | None](
    "VERS_API_KEY", "API key (one token)", parsers.api_key, None,
    "the Vers API key (Secret or environment, never the ConfigMap); without it only "
    "Local-provider profiles work", field="vers_api_key", secret=True)
VERS_BASE_URL: Final = Setting[str](
    "VERS_BASE_URL", "http(s) URL", parsers.base_url, "https://api.vers.sh",
    "the Vers API, host only; `/api/v1` is appended", field="vers_base_url")
VERS_VM_DOMAIN: Final = Setting[str](
    "VERS_VM_DOMAIN", "DNS domain", parsers.vm_domain,
    Derived(lambda _env, values: parsers.default_vm_domain(values["vers_base_url"]),
            "`vm.vers.sh` (`vm.<x>.vers.sh` for `https://api.<x>.vers.sh`)"),
    "VMs are `<vm_id>.<domain>`", field="vm_domain")
VERS_SSH_PORT: Final = Setting[int](
    "VERS_SSH_PORT", "port (1-65535)", parsers.port, 443,
    "SSH-in-TLS port of the VMs", field="ssh_port")
VERS_SSH_CONNECT_HOST: Final = Setting[str | None](
    "VERS_SSH_CONNECT_HOST", "host name or IP address", parsers.connect_host, None,
    "open TCP here instead (simulator, port-forward); SNI keeps the VM name",
    field="ssh_connect_host")
VERS_TLS_VERIFY: Final = Setting[bool | Path](
    "VERS_TLS_VERIFY", "`true`, `false` or a CA bundle file", parsers.boolean_or_file,
    # The platform's certificate is not verifiable; the pinned SSH host key authenticates
    # the VM.
    False,
    "verify the VMs' TLS certificates (against this CA bundle); the pinned SSH host key "
    "authenticates the VM", field="tls_verify", may_name_a_file=True)
REEF_DEFAULT_PROFILE: Final = Setting[str](
    "REEF_DEFAULT_PROFILE", "BootProfile name", parsers.profile, "full",
    "profile for nodes without `profileRef`", field="default_profile")
REEF_LOCAL_ROOT: Final = Setting[Path](
    "REEF_LOCAL_ROOT", "absolute path (`~` allowed)", parsers.absolute_path,
    Derived(lambda env, _values: default_local_root(env),
            "`~/.local/state/reef-operator/local` (under `$XDG_STATE_HOME` if set)"),
    "Local-provider VMs (keep it short: tmux socket paths are limited to 107 bytes)",
    field="local_root")
# Local "VMs" are processes in the operator's own container: an agent there (which runs shell
# commands by design) holds the operator's identity, so in a pod Local is off unless asked.
LOCAL_ENABLED: Final = "enabled"
LOCAL_DISABLED: Final = "disabled"
REEF_LOCAL_PROVIDER: Final = Setting[str](
    "REEF_LOCAL_PROVIDER", "`enabled` or `disabled`", parsers.one_of(LOCAL_ENABLED, LOCAL_DISABLED),
    Derived(lambda env, _values: LOCAL_DISABLED if env.get("KUBERNETES_SERVICE_HOST", "").strip()
            else LOCAL_ENABLED,
            "`enabled` outside a cluster, `disabled` in a pod (`KUBERNETES_SERVICE_HOST` set)"),
    "the Local provider: its VMs are processes in the operator's container, so their agents "
    "run with the operator's identity (its ServiceAccount token); for development only",
    field="local_provider")
REEF_PLATFORM_RATE: Final = Setting[float](
    "REEF_PLATFORM_RATE", "number > 0", parsers.rate, DEFAULT_PLATFORM_RATE,
    "platform calls per second: one limit for the whole operator, its waiting calls served "
    "by namespace in turn", field="platform_rate")
REEF_PLATFORM_BURST: Final = Setting[int](
    "REEF_PLATFORM_BURST", "whole number ≥ 1", parsers.count_of("calls"),
    DEFAULT_PLATFORM_BURST, "platform calls allowed at once above that rate",
    field="platform_burst")
# Each agent start is a handful of SSH commands and pi loading.
REEF_MAX_AGENT_STARTS: Final = Setting[int](
    "REEF_MAX_AGENT_STARTS", "whole number ≥ 1", parsers.count_of("agent starts"), 32,
    "lieutenants starting (or re-attaching to) their agent at once; the rest wait in "
    "phase `Starting`, let in by namespace in turn", field="max_agent_starts")
REEF_DEFAULT_MODEL_PROVIDER: Final = Setting[str](
    "REEF_DEFAULT_MODEL_PROVIDER", "word", parsers.word, "anthropic",
    "model provider of lieutenants whose spec names none", field="default_model_provider")
REEF_DEFAULT_MODEL_ID: Final = Setting[str](
    "REEF_DEFAULT_MODEL_ID", "word", parsers.word, "claude-sonnet-4-5",
    "model of lieutenants whose spec names none", field="default_model_id")
REEF_ADOPTION_NAMESPACES: Final = Setting[tuple[str, ...]](
    "REEF_ADOPTION_NAMESPACES", "namespaces, comma-separated", parsers.namespaces, (),
    "namespaces whose VMNodes may adopt a VM without owner labels by `spec.vmId` (adoption "
    "labels it); a VM labelled for another namespace or node is never adopted",
    field="adoption_namespaces")
REEF_DELEGATE_APISERVER: Final = Setting[str | None](
    "REEF_DELEGATE_APISERVER", "https URL", parsers.apiserver_url, None,
    "the apiserver address written into a delegating lieutenant's kubeconfig on its VM "
    "(spec.delegation); not set: the operator's own apiserver URL, which a Local or "
    "simulated VM reaches on the host's network", field="delegate_apiserver")


def checkout_pi_package() -> Path | None:
    """The pi package of the source checkout the operator runs from (an editable install:
    the repository's extensions/pi-reef); None when installed from a wheel."""
    package = Path(__file__).resolve().parents[3] / "extensions" / "pi-reef"
    return package if (package / "index.ts").is_file() else None


REEF_PI_PACKAGE: Final = Setting[Path | None](
    "REEF_PI_PACKAGE", "absolute path (`~` allowed)", parsers.absolute_path,
    Derived(lambda _env, _values: checkout_pi_package(),
            "the source checkout's `extensions/pi-reef`, if the operator runs from one"),
    "the pi package (the lieutenant tools) copied onto a delegating lieutenant's VM, where "
    "pi loads it; not set: none is installed", field="pi_package")

OPERATOR_SETTINGS: Final[tuple[Setting[Any], ...]] = (
    VERS_API_KEY, VERS_BASE_URL, VERS_VM_DOMAIN, VERS_SSH_PORT, VERS_SSH_CONNECT_HOST,
    VERS_TLS_VERIFY, REEF_DEFAULT_PROFILE, REEF_LOCAL_ROOT, REEF_LOCAL_PROVIDER, REEF_PLATFORM_RATE,
    REEF_PLATFORM_BURST, REEF_MAX_AGENT_STARTS, REEF_DEFAULT_MODEL_PROVIDER,
    REEF_DEFAULT_MODEL_ID, REEF_ADOPTION_NAMESPACES, REEF_DELEGATE_APISERVER,
    REEF_PI_PACKAGE,
)

# --- where the layers are: environment only -------------------------------------------------

REEF_NAMESPACE: Final = Setting[str](
    "REEF_NAMESPACE", "namespace", parsers.any_text, OPERATOR_NAMESPACE,
    "the operator's namespace: of the ConfigMap and the Secret, and the only namespace a "
    "BootProfile's env secretKeyRef may read from")
REEF_CONFIGMAP: Final = Setting[str](
    "REEF_CONFIGMAP", "ConfigMap name", parsers.any_text, DEFAULT_CONFIGMAP,
    "the ConfigMap of settings (`kubectl reef config set` changes it)")
REEF_SECRET: Final = Setting[str](
    "REEF_SECRET", "Secret name", parsers.any_text, DEFAULT_SECRET,
    "the Secret holding `VERS_API_KEY`")
REEF_CONFIG_FILE: Final = Setting[str | None](
    "REEF_CONFIG_FILE", "file path (`~` allowed)", parsers.any_text,
    Derived(lambda _env, _values: None, f"`{DEFAULT_CONFIG_FILE}` if it exists"),
    "a YAML file of settings (JSON if it ends in `.json`); it must exist when given, and "
    "keys the operator does not know are ignored (the default file is the Vers CLI's)")

LOCATION_SETTINGS: Final[tuple[Setting[Any], ...]] = (
    REEF_NAMESPACE, REEF_CONFIGMAP, REEF_SECRET, REEF_CONFIG_FILE,
)

# --- the admission webhook server: environment only -----------------------------------------

REEF_WEBHOOK_PORT: Final = Setting[int | None](
    "REEF_WEBHOOK_PORT", "port (1-65535)", parsers.port, None,
    "serve the admission checks on this port; unset: no webhook", field="port")
REEF_WEBHOOK_ADDR: Final = Setting[str](
    "REEF_WEBHOOK_ADDR", "IP address", parsers.any_text, EVERY_INTERFACE,
    "the address the webhook server listens on", field="addr")
REEF_WEBHOOK_HOST: Final = Setting[str](
    "REEF_WEBHOOK_HOST", "host name or IP address", parsers.any_text, "127.0.0.1",
    "the name the apiserver calls (a Service name in a cluster): in the generated "
    "certificate and in the URL kopf writes when it manages the configuration",
    field="host")
REEF_WEBHOOK_CERT: Final = Setting[str | None](
    "REEF_WEBHOOK_CERT", "file path", parsers.any_text, None,
    "the serving certificate; when it, its key or (kopf managing the configuration) its "
    "CA is missing, a throwaway CA makes one for the host", field="cert")
REEF_WEBHOOK_KEY: Final = Setting[str | None](
    "REEF_WEBHOOK_KEY", "file path", parsers.any_text, None,
    "the serving certificate's private key", field="key")
REEF_WEBHOOK_CA: Final = Setting[str | None](
    "REEF_WEBHOOK_CA", "file path", parsers.any_text, None,
    "the CA that signed the serving certificate (needed only when kopf manages the "
    "configuration)", field="ca")
REEF_WEBHOOK_MANAGED: Final = Setting[bool](
    "REEF_WEBHOOK_MANAGED", "`true` or `false`", parsers.boolean, True,
    "`true`: kopf creates and patches the ValidatingWebhookConfiguration `reef.vers.sh` with "
    "a URL pointing at this process (the local control plane); `false`: someone else "
    "installs it (the Helm chart: a Service and a caBundle) and kopf leaves it alone",
    field="managed")

WEBHOOK_SETTINGS: Final[tuple[Setting[Any], ...]] = (
    REEF_WEBHOOK_PORT, REEF_WEBHOOK_ADDR, REEF_WEBHOOK_HOST, REEF_WEBHOOK_CERT,
    REEF_WEBHOOK_KEY, REEF_WEBHOOK_CA, REEF_WEBHOOK_MANAGED,
)

# --- Kubernetes ------------------------------------------------------------------------------

KUBERNETES_SERVICE_HOST: Final = Setting[str | None](
    "KUBERNETES_SERVICE_HOST", "host", parsers.any_text, None,
    "set by Kubernetes in every pod: with the pod's service account token the operator "
    "uses in-cluster credentials, else the kubeconfig (`KUBECONFIG`, `~/.kube/config`)")

SETTINGS: Final[tuple[Setting[Any], ...]] = (
    *OPERATOR_SETTINGS, *LOCATION_SETTINGS, *WEBHOOK_SETTINGS, KUBERNETES_SERVICE_HOST,
)
BY_KEY: Final[Mapping[str, Setting[Any]]] = {setting.key: setting for setting in SETTINGS}

# The operator's layered keys, in the order they are described and logged.
KEYS: Final = tuple(setting.key for setting in OPERATOR_SETTINGS)
SECRET_KEYS: Final = frozenset(setting.key for setting in OPERATOR_SETTINGS if setting.secret)
# What the ConfigMap (and so the chart's `config` values) may hold.
CONFIGMAP_KEYS: Final = tuple(key for key in KEYS if key not in SECRET_KEYS)
