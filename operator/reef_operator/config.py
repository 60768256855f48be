"""The operator's configuration, resolved in one place.

Every setting the operator reads comes from here, so a value has exactly one
meaning, one default and one error message, and the startup log can say where
each value came from. Resolution order, as the seed system did it:

    environment → ConfigMap data (the API key: Secret data) → a file → default

The pure core is `resolve()`: plain mappings in, a frozen `OperatorConfig` out,
no cluster and no file reading, so every rule is testable without I/O. The
edges are thin and separate: `load_file()` reads the file, and
`read_cluster_sources()` reads the ConfigMap and Secret with the official
`kubernetes` client; `load_config()` ties them together at startup.

Rules that hold for every key and source:
- Values are stripped; an empty value counts as unset, so a blank
  `VERS_SSH_CONNECT_HOST=` in a manifest falls through to the next source
  instead of becoming an empty host name.
- A bad value raises `ConfigError` naming the key, the source and what is
  allowed, and stops the operator: a half-understood configuration is worse
  than none.
- The API key is a `Secret` from the moment it is read; no message, log line or
  `repr` carries more of it than `Secret.masked()`.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit

import yaml
from kubernetes.client.exceptions import ApiException

from reef_operator.api.schema import DNS_SUBDOMAIN
from reef_operator.constants import OPERATOR_NAMESPACE
from reef_operator.providers.vers.ssh import SshSettings
from reef_operator.secret import Secret

logger = logging.getLogger(__name__)

T = TypeVar("T")

# The keys, in the order they are described and logged.
VERS_API_KEY: Final = "VERS_API_KEY"
VERS_BASE_URL: Final = "VERS_BASE_URL"
VERS_VM_DOMAIN: Final = "VERS_VM_DOMAIN"
VERS_SSH_PORT: Final = "VERS_SSH_PORT"
VERS_SSH_CONNECT_HOST: Final = "VERS_SSH_CONNECT_HOST"
VERS_TLS_VERIFY: Final = "VERS_TLS_VERIFY"
REEF_DEFAULT_PROFILE: Final = "REEF_DEFAULT_PROFILE"
REEF_LOCAL_ROOT: Final = "REEF_LOCAL_ROOT"
REEF_PLATFORM_RATE: Final = "REEF_PLATFORM_RATE"
REEF_PLATFORM_BURST: Final = "REEF_PLATFORM_BURST"
REEF_MAX_AGENT_STARTS: Final = "REEF_MAX_AGENT_STARTS"
REEF_DEFAULT_MODEL_PROVIDER: Final = "REEF_DEFAULT_MODEL_PROVIDER"
REEF_DEFAULT_MODEL_ID: Final = "REEF_DEFAULT_MODEL_ID"

KEYS: Final = (
    VERS_API_KEY, VERS_BASE_URL, VERS_VM_DOMAIN, VERS_SSH_PORT, VERS_SSH_CONNECT_HOST,
    VERS_TLS_VERIFY, REEF_DEFAULT_PROFILE, REEF_LOCAL_ROOT, REEF_PLATFORM_RATE,
    REEF_PLATFORM_BURST, REEF_MAX_AGENT_STARTS, REEF_DEFAULT_MODEL_PROVIDER,
    REEF_DEFAULT_MODEL_ID,
)
SECRET_KEYS: Final = frozenset({VERS_API_KEY})

# Where the sources are; these are read from the environment only, since they
# say where to look for everything else.
REEF_CONFIG_FILE: Final = "REEF_CONFIG_FILE"
REEF_CONFIGMAP: Final = "REEF_CONFIGMAP"
REEF_SECRET: Final = "REEF_SECRET"
REEF_NAMESPACE: Final = "REEF_NAMESPACE"

DEFAULT_BASE_URL: Final = "https://api.vers.sh"
DEFAULT_VM_DOMAIN: Final = "vm.vers.sh"
DEFAULT_SSH_PORT: Final = 443
DEFAULT_PROFILE: Final = "full"
DEFAULT_PLATFORM_RATE: Final = 20.0
DEFAULT_PLATFORM_BURST: Final = 40
# Lieutenants starting (or re-attaching to) their agent at once; the others wait their
# turn in phase Starting. Each start is a handful of SSH commands and pi loading.
DEFAULT_MAX_AGENT_STARTS: Final = 32
DEFAULT_MODEL_PROVIDER: Final = "anthropic"
DEFAULT_MODEL_ID: Final = "claude-sonnet-4-5"
DEFAULT_CONFIGMAP: Final = "reef-operator-config"
DEFAULT_SECRET: Final = "reef-vers-credentials"
DEFAULT_CONFIG_FILE: Final = "~/.vers/config.json"  # shared with the Vers CLI
API_PREFIX: Final = "/api/v1"

SOURCE_ENV: Final = "env"
SOURCE_DEFAULT: Final = "default"
NOT_SET: Final = "(not set)"

_DNS_SUBDOMAIN = re.compile(DNS_SUBDOMAIN)
_DNS_NAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?"
    r"(\.[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?)*$")
_TOKEN = re.compile(r"^[\x21-\x7e]+$")  # printable ASCII, no spaces: safe in a header
# The platform's certificate is not verifiable; the pinned SSH host key authenticates the VM.
_NO_TLS_VERIFY: bool | Path = False
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


class ConfigError(ValueError):
    """A configuration value (or source) the operator cannot use.

    The message names the key, where the value came from and what is allowed;
    it never holds a secret's value.
    """

    def __init__(self, message: str, *, key: str = "", source: str = "") -> None:
        super().__init__(message)
        self.key = key
        self.source = source


@dataclass(frozen=True)
class OperatorConfig:
    """The resolved configuration; `sources` maps each key to where its value came from."""

    vers_api_key: Secret | None
    vers_base_url: str
    vm_domain: str
    ssh_port: int
    ssh_connect_host: str | None
    tls_verify: bool | Path
    default_profile: str
    local_root: Path
    platform_rate: float
    platform_burst: int
    max_agent_starts: int
    default_model_provider: str
    default_model_id: str
    # Not hashed: a dict cannot be, and two configs with equal values are the same config.
    sources: dict[str, str] = field(default_factory=dict, hash=False)

    def ssh_settings(self) -> SshSettings:
        """How the Vers provider reaches VMs; the remaining knobs keep SshSettings' defaults."""
        return SshSettings(vm_domain=self.vm_domain, port=self.ssh_port,
                           connect_host=self.ssh_connect_host, tls_verify=self.tls_verify)

    def require_api_key(self) -> Secret:
        """The API key, for the one provider that needs it; its absence is a clear error."""
        if self.vers_api_key is None:
            raise ConfigError(
                f"{VERS_API_KEY} is not set: put it in the environment, in the Secret's data, "
                "or in the config file", key=VERS_API_KEY, source=SOURCE_DEFAULT)
        return self.vers_api_key

    def source_of(self, key: str) -> str:
        return self.sources.get(key, SOURCE_DEFAULT)

    def describe(self) -> list[tuple[str, str, str]]:
        """(key, value as shown, source) for every key; the API key shown masked."""
        shown: dict[str, str] = {
            VERS_API_KEY: self.vers_api_key.masked() if self.vers_api_key else NOT_SET,
            VERS_BASE_URL: self.vers_base_url,
            VERS_VM_DOMAIN: self.vm_domain,
            VERS_SSH_PORT: str(self.ssh_port),
            VERS_SSH_CONNECT_HOST: self.ssh_connect_host or NOT_SET,
            VERS_TLS_VERIFY: (str(self.tls_verify).lower() if isinstance(self.tls_verify, bool)
                              else str(self.tls_verify)),
            REEF_DEFAULT_PROFILE: self.default_profile,
            REEF_LOCAL_ROOT: str(self.local_root),
            REEF_PLATFORM_RATE: f"{self.platform_rate:g}",
            REEF_PLATFORM_BURST: str(self.platform_burst),
            REEF_MAX_AGENT_STARTS: str(self.max_agent_starts),
            REEF_DEFAULT_MODEL_PROVIDER: self.default_model_provider,
            REEF_DEFAULT_MODEL_ID: self.default_model_id,
        }
        return [(key, shown[key], self.source_of(key)) for key in KEYS]

    def log_lines(self) -> list[str]:
        """One line per key for the startup log, so an operator's logs answer
        "which API, which key, from where" without a shell in the pod."""
        return [f"config {key}={value} (from {source})" for key, value, source in self.describe()]


# --- the pure core ---------------------------------------------------------------------------


def resolve(
    env: Mapping[str, str],
    configmap: Mapping[str, str] | None = None,
    secret: Mapping[str, str] | None = None,
    file_values: Mapping[str, Any] | None = None,
    *,
    configmap_name: str = "",
    secret_name: str = "",
    file_path: str = "",
) -> OperatorConfig:
    """Resolve every key from its sources, first found wins: env → ConfigMap/Secret → file.

    `configmap_name` and `secret_name` are shown as `namespace/name` in sources
    and messages; `file_path` likewise. Only VERS_API_KEY is taken from the
    Secret, and it is refused in a ConfigMap, whose contents anyone with read
    access to the namespace's config can see.
    """
    configmap_label = _label("configmap", configmap_name)
    secret_label = _label("secret", secret_name)
    file_label = _label("file", file_path)

    if configmap is not None and VERS_API_KEY in configmap:
        raise ConfigError(
            f"{VERS_API_KEY} found in {configmap_label}: put VERS_API_KEY in a Secret, "
            "not a ConfigMap (and rotate the key: the ConfigMap exposed it)",
            key=VERS_API_KEY, source=configmap_label)
    if configmap:
        unknown = sorted(set(configmap) - set(KEYS))
        if unknown:
            logger.warning("%s has keys the operator does not know, ignored: %s",
                           configmap_label, ", ".join(unknown))

    layers: list[tuple[str, Mapping[str, str]]] = [(SOURCE_ENV, env)]
    if configmap is not None:
        layers.append((configmap_label, configmap))
    if secret is not None:
        layers.append((secret_label, {k: v for k, v in secret.items() if k in SECRET_KEYS}))
    if file_values is not None:
        layers.append((file_label, _file_texts(file_values, file_label)))

    sources: dict[str, str] = {}

    def pick(key: str, parse: Callable[[str, str, str], T], default: T) -> T:
        for label, values in layers:
            raw = values.get(key)
            if raw is not None and raw.strip():
                sources[key] = label
                return parse(raw.strip(), key, label)
        sources[key] = SOURCE_DEFAULT
        return default

    api_key = pick(VERS_API_KEY, _api_key, None)
    base_url = pick(VERS_BASE_URL, _base_url, DEFAULT_BASE_URL)
    return OperatorConfig(
        vers_api_key=api_key,
        vers_base_url=base_url,
        vm_domain=pick(VERS_VM_DOMAIN, _vm_domain, _default_vm_domain(base_url)),
        ssh_port=pick(VERS_SSH_PORT, _port, DEFAULT_SSH_PORT),
        ssh_connect_host=pick(VERS_SSH_CONNECT_HOST, _connect_host, None),
        tls_verify=pick(VERS_TLS_VERIFY, _tls_verify, _NO_TLS_VERIFY),
        default_profile=pick(REEF_DEFAULT_PROFILE, _profile, DEFAULT_PROFILE),
        local_root=pick(REEF_LOCAL_ROOT, _local_root, default_local_root(env)),
        platform_rate=pick(REEF_PLATFORM_RATE, _rate, DEFAULT_PLATFORM_RATE),
        platform_burst=pick(REEF_PLATFORM_BURST, _burst, DEFAULT_PLATFORM_BURST),
        max_agent_starts=pick(REEF_MAX_AGENT_STARTS, _starts, DEFAULT_MAX_AGENT_STARTS),
        default_model_provider=pick(REEF_DEFAULT_MODEL_PROVIDER, _word, DEFAULT_MODEL_PROVIDER),
        default_model_id=pick(REEF_DEFAULT_MODEL_ID, _word, DEFAULT_MODEL_ID),
        sources=sources,
    )


def default_local_root(env: Mapping[str, str]) -> Path:
    """`$XDG_STATE_HOME/reef-operator/local`, else `~/.local/state/reef-operator/local`.

    A relative XDG_STATE_HOME is ignored, as the XDG spec requires.
    """
    state = env.get("XDG_STATE_HOME", "").strip()
    base = Path(state) if state and Path(state).is_absolute() else _home(env) / ".local" / "state"
    return base / "reef-operator" / "local"


def _label(kind: str, name: str) -> str:
    return f"{kind} {name}" if name else kind


def _home(env: Mapping[str, str]) -> Path:
    home = env.get("HOME", "").strip()
    return Path(home) if home else Path.home()


def _expand(text: str, env: Mapping[str, str] | None = None) -> Path:
    if env is not None and (text == "~" or text.startswith("~/")):
        return _home(env) / text[2:]
    return Path(text).expanduser()


def _file_texts(values: Mapping[str, Any], label: str) -> dict[str, str]:
    """A YAML/JSON file's scalars as the text the other sources would hold.

    Keys the operator does not know are ignored without a warning: the default
    file is the Vers CLI's, which holds settings of its own.
    """
    texts: dict[str, str] = {}
    for key in KEYS:
        value = values.get(key)
        if value is None:
            continue
        if isinstance(value, bool):
            texts[key] = "true" if value else "false"
        elif isinstance(value, str | int | float):
            texts[key] = str(value)
        else:
            raise ConfigError(
                f"{key} from {label}: expected a single value, found a "
                f"{type(value).__name__}", key=key, source=label)
    return texts


def _bad(key: str, source: str, text: str, problem: str) -> ConfigError:
    return ConfigError(f"{key} from {source}: {text!r} {problem}", key=key, source=source)


def _api_key(text: str, key: str, source: str) -> Secret | None:
    # The value goes into an Authorization header; a space or newline inside
    # means the Secret holds more than a key (a whole file, two lines).
    if not _TOKEN.match(text):
        raise ConfigError(
            f"{key} from {source}: the value contains spaces, control or non-ASCII "
            "characters; an API key is a single token (value not shown)",
            key=key, source=source)
    return Secret(text)


def _base_url(text: str, key: str, source: str) -> str:
    """Host-only base URL; a trailing /api/v1 (as other Vers tools write it) is dropped."""
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise _bad(key, source, text, "is not a URL") from None
    if parts.username is not None or parts.password is not None:
        # Not echoed: the text holds a credential.
        raise ConfigError(f"{key} from {source}: the URL carries credentials; put the API "
                          f"key in {VERS_API_KEY} instead (value not shown)",
                          key=key, source=source)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _bad(key, source, text, "is not an http(s) URL such as https://api.vers.sh")
    if parts.query or parts.fragment:
        raise _bad(key, source, text, "must not have a query or fragment")
    path = parts.path.rstrip("/").removesuffix(API_PREFIX).rstrip("/")
    return f"{parts.scheme}://{parts.netloc}{path}"


def _default_vm_domain(base_url: str) -> str:
    """vm.<x>.vers.sh for api.<x>.vers.sh (staging pairs this way); vm.vers.sh otherwise.

    Only Vers's own host names are paired, so a simulator or proxy URL never
    invents a VM domain.
    """
    host = (urlsplit(base_url).hostname or "").lower()
    if host.startswith("api.") and (host == "api.vers.sh" or host.endswith(".vers.sh")):
        return "vm." + host.removeprefix("api.")
    return DEFAULT_VM_DOMAIN


def _vm_domain(text: str, key: str, source: str) -> str:
    domain = text.strip(".").lower()
    if not _DNS_NAME.match(domain):
        raise _bad(key, source, text, "is not a DNS domain such as vm.vers.sh "
                   "(no scheme, port or path)")
    return domain


def _port(text: str, key: str, source: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise _bad(key, source, text, "is not a port number (1-65535)")
    return port


def _connect_host(text: str, key: str, source: str) -> str:
    host = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    if "://" in host or "/" in host or any(c.isspace() for c in host):
        raise _bad(key, source, text, "is not a host name or IP address (no scheme or path)")
    if host.count(":") == 1:
        raise _bad(key, source, text,
                   f"is not a host name or IP address; set the port in {VERS_SSH_PORT}")
    return host


def _tls_verify(text: str, key: str, source: str) -> bool | Path:
    word = text.lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    path = Path(text).expanduser()
    if not path.is_file():
        raise _bad(key, source, text, "is neither true, false nor the path of an existing "
                   "CA bundle file")
    return path


def names_a_file(key: str, text: str) -> bool:
    """Whether this value of `key` is the path of a file on the operator's machine (which
    only that machine can check)."""
    return key == VERS_TLS_VERIFY and text.strip().lower() not in _TRUE | _FALSE


def _profile(text: str, key: str, source: str) -> str:
    if len(text) > 253 or not _DNS_SUBDOMAIN.match(text):
        raise _bad(key, source, text, "is not a BootProfile name (lowercase letters, digits, "
                   "'-' and '.', at most 253 characters)")
    return text


def _local_root(text: str, key: str, source: str) -> Path:
    # Relative paths would depend on the directory the operator was started in.
    path = Path(text).expanduser()
    if not path.is_absolute():
        raise _bad(key, source, text, "is not an absolute path (~ is allowed)")
    return path


def _rate(text: str, key: str, source: str) -> float:
    try:
        rate = float(text)
    except ValueError:
        rate = math.nan
    if not (math.isfinite(rate) and rate > 0):
        raise _bad(key, source, text, "is not a number of calls per second greater than 0")
    return rate


def _count_of(what: str) -> Callable[[str, str, str], int]:
    """A parser for a whole number of `what`, at least 1."""
    def parse(text: str, key: str, source: str) -> int:
        try:
            count = int(text)
        except ValueError:
            count = 0
        if count < 1:
            raise _bad(key, source, text, f"is not a whole number of {what} of at least 1")
        return count
    return parse


_burst = _count_of("calls")
_starts = _count_of("agent starts")


def _word(text: str, key: str, source: str) -> str:
    if any(c.isspace() for c in text) or len(text) > 256:
        raise _bad(key, source, text, "must be a single word without spaces (at most 256 "
                   "characters)")
    return text


# --- the I/O edges ---------------------------------------------------------------------------


def load_file(path: Path) -> dict[str, Any]:
    """A config file's mapping: JSON for `.json`, YAML otherwise; an empty file is `{}`.

    Parse errors report the position only, never the offending text, since
    the file may hold the API key.
    """
    label = f"config file {path}"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise ConfigError(f"cannot read {label}: {reason}", source=label) from None
    data: Any
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text) if text.strip() else None
        except json.JSONDecodeError as error:
            raise ConfigError(f"{label} is not valid JSON (line {error.lineno}, column "
                              f"{error.colno}: {error.msg})", source=label) from None
    else:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as error:
            where = ""
            mark = getattr(error, "problem_mark", None)
            if mark is not None:
                where = f" (line {mark.line + 1}, column {mark.column + 1})"
            raise ConfigError(f"{label} is not valid YAML{where}", source=label) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{label} must hold a mapping of configuration keys, found a "
                          f"{type(data).__name__}", source=label)
    return {str(key): value for key, value in data.items()}


def config_file_path(env: Mapping[str, str]) -> Path | None:
    """REEF_CONFIG_FILE (which must exist), else ~/.vers/config.json if it exists."""
    explicit = env.get(REEF_CONFIG_FILE, "").strip()
    if explicit:
        path = _expand(explicit, env)
        if not path.is_file():
            raise _bad(REEF_CONFIG_FILE, SOURCE_ENV, explicit, "is not an existing file")
        return path
    path = _expand(DEFAULT_CONFIG_FILE, env)
    return path if path.is_file() else None


def read_cluster_sources(
    core_v1_api: Any, namespace: str, configmap_name: str, secret_name: str,
) -> tuple[dict[str, str] | None, dict[str, str] | None]:
    """The ConfigMap's data and the Secret's decoded data; a missing object is None.

    Both are optional (everything may come from env), so 404 is not an error;
    any other API error is, since it means the operator cannot see its own
    configuration (most often RBAC).
    """
    configmap_obj = _read(core_v1_api.read_namespaced_config_map, "ConfigMap",
                          namespace, configmap_name)
    secret_obj = _read(core_v1_api.read_namespaced_secret, "Secret", namespace, secret_name)
    configmap = None if configmap_obj is None else dict(configmap_obj.data or {})
    secret = None if secret_obj is None else _decode_secret(
        secret_obj.data or {}, f"secret {namespace}/{secret_name}")
    return configmap, secret


def _read(method: Any, kind: str, namespace: str, name: str) -> Any:
    try:
        return method(name, namespace)
    except ApiException as error:
        if error.status == 404:
            return None
        raise ConfigError(f"cannot read {kind} {namespace}/{name}: {error.status} "
                          f"{error.reason}", source=f"{kind.lower()} {namespace}/{name}"
                          ) from None


def _decode_secret(data: Mapping[str, str], label: str) -> dict[str, str]:
    """Secret data is base64; keys the operator reads must decode to UTF-8 text, others
    (binary certificates, say) are skipped rather than failing the operator."""
    decoded: dict[str, str] = {}
    for key, encoded in data.items():
        try:
            decoded[key] = base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            if key in KEYS:
                raise ConfigError(f"{key} from {label}: the value is not base64-encoded UTF-8 "
                                  "text (value not shown)", key=key, source=label) from None
    return decoded


def load_config(
    env: Mapping[str, str] | None = None,
    core_v1_api: Any = None,
    *,
    namespace: str | None = None,
    configmap_name: str | None = None,
    secret_name: str | None = None,
) -> OperatorConfig:
    """The operator's configuration at startup.

    Without `core_v1_api` no cluster is asked (local runs, tests). Names not
    given come from REEF_NAMESPACE, REEF_CONFIGMAP and REEF_SECRET, defaulting
    to reef-system, reef-operator-config and reef-vers-credentials.
    """
    env = os.environ if env is None else env
    namespace = namespace or env.get(REEF_NAMESPACE, "").strip() or OPERATOR_NAMESPACE
    configmap_name = configmap_name or env.get(REEF_CONFIGMAP, "").strip() or DEFAULT_CONFIGMAP
    secret_name = secret_name or env.get(REEF_SECRET, "").strip() or DEFAULT_SECRET
    configmap: dict[str, str] | None = None
    secret: dict[str, str] | None = None
    if core_v1_api is not None:
        configmap, secret = read_cluster_sources(core_v1_api, namespace, configmap_name,
                                                 secret_name)
    path = config_file_path(env)
    file_values = load_file(path) if path is not None else None
    return resolve(env, configmap, secret, file_values,
                   configmap_name=f"{namespace}/{configmap_name}",
                   secret_name=f"{namespace}/{secret_name}",
                   file_path=str(path) if path is not None else "")
