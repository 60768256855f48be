"""The settings table drives parsing, defaults, secrets, the docs, the chart and
`kubectl reef config`: one row per setting, nothing declared twice."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from reef_operator import config
from reef_operator.cli.plugin.cluster import PluginError
from reef_operator.cli.plugin.settings import changeable
from reef_operator.config import (
    KEYS,
    OPERATOR_SETTINGS,
    SETTINGS,
    WEBHOOK_SETTINGS,
    ConfigError,
    OperatorConfig,
    WebhookConfig,
    read_env,
    resolve,
    webhook_config,
)
from reef_operator.config.table import (
    KUBERNETES_SERVICE_HOST,
    REEF_WEBHOOK_MANAGED,
    VERS_TLS_VERIFY,
    Derived,
    Setting,
)
from reef_operator.render import chart
from reef_operator.render.configuration import config_reference_markdown
from reef_operator.secret import Secret

REPO_ROOT = Path(__file__).resolve().parents[2]
HOME_ENV = {"HOME": "/home/op"}
SECRET_TEXT = "vers_sk_live_0123456789abcdefSECRETTAIL"

# For each operator setting: a value it accepts (and what it becomes) and one it refuses.
SAMPLES: dict[str, tuple[str, Any, str]] = {
    "VERS_API_KEY": (SECRET_TEXT, Secret(SECRET_TEXT), "two words"),
    "VERS_BASE_URL": ("https://api.example/api/v1", "https://api.example", "api.example"),
    "VERS_VM_DOMAIN": ("VM.Example.", "vm.example", "https://vm.example"),
    "VERS_SSH_PORT": ("2222", 2222, "70000"),
    "VERS_SSH_CONNECT_HOST": ("[::1]", "::1", "127.0.0.1:22"),
    "VERS_TLS_VERIFY": ("on", True, "/no/such/bundle.pem"),
    "REEF_DEFAULT_PROFILE": ("swarm", "swarm", "Swarm Profile"),
    "REEF_LOCAL_ROOT": ("/srv/vms", Path("/srv/vms"), "relative/vms"),
    "REEF_LOCAL_PROVIDER": ("Enabled", "enabled", "on"),
    "REEF_PLATFORM_RATE": ("2.5", 2.5, "0"),
    "REEF_PLATFORM_BURST": ("3", 3, "0"),
    "REEF_MAX_AGENT_STARTS": ("4", 4, "-4"),
    "REEF_DEFAULT_MODEL_PROVIDER": ("openai", "openai", "open ai"),
    "REEF_DEFAULT_MODEL_ID": ("gpt-5", "gpt-5", "gpt 5"),
    "REEF_ADOPTION_NAMESPACES": ("team-a, legacy", ("team-a", "legacy"), "Team_A"),
    "REEF_PI_PACKAGE": ("/opt/pi-reef", Path("/opt/pi-reef"), "pi-reef"),
    "REEF_DELEGATE_APISERVER": ("https://10.0.0.1:6443/", "https://10.0.0.1:6443",
                                "http://10.0.0.1:6443"),
}


def _fields(cls: type[Any]) -> list[str]:
    return [f.name for f in dataclasses.fields(cls) if f.name != "sources"]


# --- the table itself ------------------------------------------------------------------------


def test_each_key_is_declared_once_with_words_for_the_docs() -> None:
    keys = [setting.key for setting in SETTINGS]
    assert len(keys) == len(set(keys))
    assert all(setting.kind and setting.about for setting in SETTINGS)


def test_the_typed_values_have_one_field_per_row_in_the_table_order() -> None:
    assert _fields(OperatorConfig) == [setting.field for setting in OPERATOR_SETTINGS]
    assert _fields(WebhookConfig) == [setting.field for setting in WEBHOOK_SETTINGS]


def test_every_operator_setting_has_a_sample() -> None:
    assert set(SAMPLES) == set(KEYS)


# --- parsing and defaults --------------------------------------------------------------------


@pytest.mark.parametrize("setting", OPERATOR_SETTINGS, ids=lambda s: s.key)
def test_the_rows_parser_reads_each_source(setting: Setting[Any]) -> None:
    text, parsed, _refused = SAMPLES[setting.key]
    secret = {setting.key: text} if setting.secret else None
    configmap = None if setting.secret else {setting.key: text}
    for resolved, source in [
        (resolve({**HOME_ENV, setting.key: f"  {text}\n"}), "env"),
        (resolve(HOME_ENV, configmap, secret, configmap_name="ns/cm", secret_name="ns/s"),
         "secret ns/s" if setting.secret else "configmap ns/cm"),
        (resolve(HOME_ENV, file_values={setting.key: text}, file_path="/f.yaml"),
         "file /f.yaml"),
    ]:
        assert getattr(resolved, setting.field) == parsed
        assert resolved.sources[setting.key] == source


@pytest.mark.parametrize("setting", OPERATOR_SETTINGS, ids=lambda s: s.key)
def test_the_rows_parser_refuses_naming_key_and_source(setting: Setting[Any]) -> None:
    _text, _parsed, refused = SAMPLES[setting.key]
    with pytest.raises(ConfigError) as caught:
        resolve({**HOME_ENV, setting.key: refused})
    assert str(caught.value).startswith(f"{setting.key} from env: ")
    assert (caught.value.key, caught.value.source) == (setting.key, "env")


def test_unset_and_blank_settings_take_the_rows_default() -> None:
    blank = {setting.key: " " for setting in OPERATOR_SETTINGS}
    resolved = resolve({**HOME_ENV, **blank}, {"VERS_SSH_PORT": ""})
    for setting in OPERATOR_SETTINGS:
        expected = setting.default_for(HOME_ENV, {"vers_base_url": "https://api.vers.sh"})
        assert getattr(resolved, setting.field) == expected, setting.key
        assert resolved.sources[setting.key] == "default"
    assert resolved.vm_domain == "vm.vers.sh"
    assert resolved.local_root == Path("/home/op/.local/state/reef-operator/local")


def test_a_derived_default_follows_the_settings_before_it() -> None:
    staging = resolve({**HOME_ENV, "VERS_BASE_URL": "https://api.staging.vers.sh"})
    assert (staging.vm_domain, staging.sources["VERS_VM_DOMAIN"]) == (
        "vm.staging.vers.sh", "default")


def test_the_local_provider_is_on_outside_a_cluster_and_off_in_a_pod() -> None:
    assert resolve(HOME_ENV).local_provider == "enabled"
    in_pod = resolve({**HOME_ENV, "KUBERNETES_SERVICE_HOST": "10.96.0.1"})
    assert (in_pod.local_provider, in_pod.sources["REEF_LOCAL_PROVIDER"]) == (
        "disabled", "default")
    asked = resolve({**HOME_ENV, "KUBERNETES_SERVICE_HOST": "10.96.0.1"},
                    {"REEF_LOCAL_PROVIDER": "enabled"}, configmap_name="ns/cm")
    assert (asked.local_provider, asked.sources["REEF_LOCAL_PROVIDER"]) == (
        "enabled", "configmap ns/cm")


def test_read_env_reads_one_setting_with_the_same_rules() -> None:
    assert read_env(KUBERNETES_SERVICE_HOST, {}) is None
    assert read_env(KUBERNETES_SERVICE_HOST, {"KUBERNETES_SERVICE_HOST": "  "}) is None
    assert read_env(KUBERNETES_SERVICE_HOST, {"KUBERNETES_SERVICE_HOST": "10.0.0.1"}) == (
        "10.0.0.1")
    assert read_env(config.REEF_CONFIGMAP, {}) == "reef-operator-config"
    assert read_env(config.REEF_NAMESPACE, {"REEF_NAMESPACE": " ops "}) == "ops"


@pytest.mark.parametrize(("word", "meaning"), [
    ("true", True), ("Yes", True), ("ON", True), ("1", True),
    ("false", False), ("no", False), ("Off", False), ("0", False),
])
def test_every_switch_speaks_the_same_words(word: str, meaning: bool) -> None:
    assert read_env(REEF_WEBHOOK_MANAGED, {"REEF_WEBHOOK_MANAGED": word}) is meaning
    assert resolve({**HOME_ENV, "VERS_TLS_VERIFY": word}).tls_verify is meaning


def test_a_switch_refuses_other_words() -> None:
    with pytest.raises(ConfigError, match=r"^REEF_WEBHOOK_MANAGED from env: 'externally' "):
        read_env(REEF_WEBHOOK_MANAGED, {"REEF_WEBHOOK_MANAGED": "externally"})


def test_only_a_file_setting_names_files() -> None:
    assert VERS_TLS_VERIFY.names_a_file("/etc/ssl/ca.pem")
    assert not VERS_TLS_VERIFY.names_a_file("TRUE")
    assert not [s.key for s in SETTINGS if s is not VERS_TLS_VERIFY and s.names_a_file("/x")]


# --- the webhook's settings ------------------------------------------------------------------


def test_no_port_no_webhook_whatever_else_is_set() -> None:
    assert webhook_config({"REEF_WEBHOOK_MANAGED": "bogus", "REEF_WEBHOOK_PORT": " "}) is None


def test_webhook_settings_with_their_defaults() -> None:
    assert webhook_config({"REEF_WEBHOOK_PORT": "9443", "REEF_WEBHOOK_CA": ""}) == (
        WebhookConfig(port=9443, addr="0.0.0.0", host="127.0.0.1", cert=None, key=None,
                      ca=None, managed=True))
    given = webhook_config({"REEF_WEBHOOK_PORT": "8443", "REEF_WEBHOOK_ADDR": "::",
                            "REEF_WEBHOOK_HOST": "svc.ns.svc", "REEF_WEBHOOK_CERT": "/t/c",
                            "REEF_WEBHOOK_KEY": "/t/k", "REEF_WEBHOOK_MANAGED": "no"})
    assert given == WebhookConfig(port=8443, addr="::", host="svc.ns.svc", cert="/t/c",
                                  key="/t/k", ca=None, managed=False)


def test_a_bad_webhook_port_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"^REEF_WEBHOOK_PORT from env: 'https' is not a port"):
        webhook_config({"REEF_WEBHOOK_PORT": "https"})


# --- secrets ---------------------------------------------------------------------------------


def test_secrets_are_masked_everywhere_they_are_shown() -> None:
    secrets = [setting for setting in OPERATOR_SETTINGS if setting.secret]
    assert [setting.key for setting in secrets] == ["VERS_API_KEY"]
    resolved = resolve(HOME_ENV, {}, {s.key: SECRET_TEXT for s in secrets})
    shown = " ".join([*(" ".join(row) for row in resolved.describe()), *resolved.log_lines(),
                      repr(resolved)])
    assert SECRET_TEXT not in shown and SECRET_TEXT[4:] not in shown
    for setting in secrets:
        assert (setting.key, Secret(SECRET_TEXT).masked(), "secret") in resolved.describe()


def test_secrets_are_refused_in_a_configmap_and_read_only_from_a_secret() -> None:
    for setting in OPERATOR_SETTINGS:
        text, parsed, _refused = SAMPLES[setting.key]
        from_secret = resolve(HOME_ENV, None, {setting.key: text})
        if setting.secret:
            assert getattr(from_secret, setting.field) == parsed
            with pytest.raises(ConfigError, match="not a ConfigMap") as caught:
                resolve(HOME_ENV, {setting.key: text})
            assert text not in str(caught.value)
        else:
            assert from_secret.sources[setting.key] == "default", setting.key


# --- what derives from the table -------------------------------------------------------------


def test_the_docs_list_every_setting_with_its_default() -> None:
    docs = config_reference_markdown()
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `([A-Z_]+)`.*$", docs, re.M)}
    assert list(rows) == [setting.key for setting in SETTINGS]
    for setting in SETTINGS:
        assert f"| {setting.default_text} |" in rows[setting.key]
        assert ("★" in rows[setting.key]) is setting.secret
    assert "| `VERS_SSH_PORT` | `443` | port (1-65535) |" in docs
    assert "| `REEF_PLATFORM_RATE` | `20` |" in docs


def _generated(name: str) -> list[str]:
    match = re.search(rf'define "{re.escape(name)}" -}}}}\n(.*?)\n', chart.helpers())
    assert match is not None
    return match.group(1).split()


def test_the_chart_accepts_exactly_the_configmap_settings() -> None:
    assert _generated("reef-operator.generated.configKeys") == [
        setting.key for setting in OPERATOR_SETTINGS if not setting.secret]
    assert _generated("reef-operator.generated.secretKeys") == ["VERS_API_KEY"]


def test_the_charts_values_offer_every_configmap_setting_with_its_default() -> None:
    text = (REPO_ROOT / "helm/reef-operator/values.yaml").read_text()
    values = yaml.safe_load(text)["config"]
    assert list(values) == list(config.CONFIGMAP_KEYS)
    assert set(values.values()) == {""}        # empty: the operator's own default
    comments = dict(re.findall(r'^  ([A-Z_]+): ""\s+# (.*)$', text, re.M))
    for setting in OPERATOR_SETTINGS:
        if setting.key in values and setting.default is not None and not isinstance(
                setting.default, Derived):
            assert config.shown(setting.default) in comments[setting.key], setting.key


def test_kubectl_reef_config_changes_only_configmap_settings() -> None:
    assert changeable({}, "reef-system", "REEF_PLATFORM_RATE", "5").key == "REEF_PLATFORM_RATE"
    assert changeable({}, "reef-system", "VERS_API_KEY", None).key == "VERS_API_KEY"
    with pytest.raises(PluginError, match="unknown key 'REEF_SPEED'"):
        changeable({}, "reef-system", "REEF_SPEED", "1")
    with pytest.raises(PluginError, match="environment only"):
        changeable({}, "reef-system", "REEF_WEBHOOK_PORT", "9443")
    with pytest.raises(PluginError, match="config unset REEF_DEFAULT_PROFILE"):
        changeable({}, "reef-system", "REEF_DEFAULT_PROFILE", " ")
    with pytest.raises(PluginError) as caught:
        changeable({"REEF_SECRET": "mine"}, "ops", "VERS_API_KEY", SECRET_TEXT)
    assert "never goes in a ConfigMap: put it in Secret ops/mine" in str(caught.value)
    assert SECRET_TEXT not in str(caught.value)


def test_every_setting_the_chart_and_manifests_name_is_in_the_table() -> None:
    named = {name for directory in ("helm", "manifests")
             for path in (REPO_ROOT / directory).rglob("*") if path.is_file()
             for name in re.findall(r"\b(?:REEF|VERS)_[A-Z_]+\b", path.read_text())}
    assert {"REEF_WEBHOOK_MANAGED", "REEF_NAMESPACE", "VERS_API_KEY"} <= named
    assert named <= set(config.BY_KEY)
