"""The operator's configuration: sources, order, validation, and never leaking the key."""

from __future__ import annotations

import base64
import logging
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from reef_operator.config import (
    KEYS,
    ConfigError,
    OperatorConfig,
    config_file_path,
    default_local_root,
    load_config,
    load_file,
    read_cluster_sources,
    resolve,
)
from reef_operator.secret import Secret

API_KEY = "vers_sk_live_0123456789abcdefSECRETTAIL"
CM = "reef-system/reef-operator"
SEC = "reef-system/reef-vers"
FILE = "/root/.vers/config.json"
HOME_ENV = {"HOME": "/home/op"}


def cluster(env: dict[str, str] | None = None, configmap: dict[str, str] | None = None,
            secret: dict[str, str] | None = None,
            file_values: dict[str, Any] | None = None) -> OperatorConfig:
    return resolve({**HOME_ENV, **(env or {})}, configmap, secret, file_values,
                   configmap_name=CM, secret_name=SEC, file_path=FILE)


def assert_no_leak(text: str) -> None:
    assert API_KEY not in text
    assert API_KEY[4:] not in text


# --- defaults and order ----------------------------------------------------------------------


def test_defaults() -> None:
    config = resolve(HOME_ENV, None, None, None)
    assert config.vers_api_key is None
    assert config.vers_base_url == "https://api.vers.sh"
    assert config.vm_domain == "vm.vers.sh"
    assert config.ssh_port == 443
    assert config.ssh_connect_host is None
    assert config.tls_verify is False
    assert config.default_profile == "full"
    assert config.local_root == Path("/home/op/.local/state/reef-operator/local")
    assert config.platform_rate == 20.0
    assert config.platform_burst == 40
    assert config.default_model_provider == "anthropic"
    assert config.default_model_id == "claude-sonnet-4-5"
    assert config.sources == dict.fromkeys(KEYS, "default")


def test_local_root_follows_xdg_state_home_when_absolute() -> None:
    assert default_local_root({"XDG_STATE_HOME": "/var/state", **HOME_ENV}) == Path(
        "/var/state/reef-operator/local")
    assert default_local_root({"XDG_STATE_HOME": "rel", **HOME_ENV}) == Path(
        "/home/op/.local/state/reef-operator/local")


@pytest.mark.parametrize(("key", "attr", "values", "parsed"), [
    ("VERS_SSH_PORT", "ssh_port", ("2201", "2202", 2203), (2201, 2202, 2203)),
    ("REEF_DEFAULT_PROFILE", "default_profile", ("env-p", "cm-p", "file-p"),
     ("env-p", "cm-p", "file-p")),
    ("REEF_PLATFORM_RATE", "platform_rate", ("5", "6", 7.5), (5.0, 6.0, 7.5)),
    ("VERS_VM_DOMAIN", "vm_domain", ("env.example", "cm.example", "file.example"),
     ("env.example", "cm.example", "file.example")),
])
def test_env_beats_configmap_beats_file(key: str, attr: str, values: tuple[str, str, Any],
                                        parsed: tuple[Any, Any, Any]) -> None:
    env, cm, file = values
    all_three = cluster({key: env}, {key: cm}, None, {key: file})
    assert (getattr(all_three, attr), all_three.sources[key]) == (parsed[0], "env")
    from_cm = cluster({}, {key: cm}, None, {key: file})
    assert (getattr(from_cm, attr), from_cm.sources[key]) == (parsed[1], f"configmap {CM}")
    from_file = cluster({}, {}, None, {key: file})
    assert (getattr(from_file, attr), from_file.sources[key]) == (parsed[2], f"file {FILE}")


def test_sources_name_each_origin() -> None:
    config = cluster(
        env={"VERS_SSH_PORT": "8443"},
        configmap={"REEF_DEFAULT_PROFILE": "minimal"},
        secret={"VERS_API_KEY": API_KEY},
        file_values={"REEF_PLATFORM_BURST": 7, "REEF_DEFAULT_PROFILE": "ignored"},
    )
    assert config.sources["VERS_SSH_PORT"] == "env"
    assert config.sources["REEF_DEFAULT_PROFILE"] == "configmap reef-system/reef-operator"
    assert config.sources["VERS_API_KEY"] == "secret reef-system/reef-vers"
    assert config.sources["REEF_PLATFORM_BURST"] == "file /root/.vers/config.json"
    assert config.sources["VERS_BASE_URL"] == "default"
    assert set(config.sources) == set(KEYS)
    assert config.platform_burst == 7


def test_blank_values_fall_through() -> None:
    config = cluster({"VERS_SSH_CONNECT_HOST": "  ", "VERS_SSH_PORT": ""},
                     {"VERS_SSH_PORT": "2222"})
    assert config.ssh_connect_host is None
    assert config.sources["VERS_SSH_CONNECT_HOST"] == "default"
    assert config.ssh_port == 2222


def test_unknown_configmap_keys_are_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="reef_operator.config"):
        cluster({}, {"VERS_SSH_PROT": "22"})
    assert "VERS_SSH_PROT" in caplog.text


def test_file_values_of_other_tools_are_ignored_but_nested_values_refused() -> None:
    config = cluster(file_values={"apiKey": "x", "versUrl": "y", "VERS_TLS_VERIFY": True})
    assert config.tls_verify is True
    with pytest.raises(ConfigError, match=r"VERS_SSH_PORT from file /root/\.vers/config\.json"):
        cluster(file_values={"VERS_SSH_PORT": [443]})


# --- individual keys -------------------------------------------------------------------------


@pytest.mark.parametrize(("given", "expected"), [
    ("https://api.vers.sh", "https://api.vers.sh"),
    ("https://api.vers.sh/", "https://api.vers.sh"),
    ("https://api.vers.sh/api/v1", "https://api.vers.sh"),
    ("https://api.vers.sh/api/v1/", "https://api.vers.sh"),
    ("http://127.0.0.1:8080/api/v1", "http://127.0.0.1:8080"),
    ("https://proxy.example/vers/api/v1", "https://proxy.example/vers"),
])
def test_base_url_is_host_only(given: str, expected: str) -> None:
    assert cluster({"VERS_BASE_URL": given}).vers_base_url == expected


@pytest.mark.parametrize("given", ["api.vers.sh", "ftp://api.vers.sh", "https://",
                                   "https://api.vers.sh?x=1", "https://h:notaport"])
def test_bad_base_url(given: str) -> None:
    with pytest.raises(ConfigError, match="VERS_BASE_URL from env"):
        cluster({"VERS_BASE_URL": given})


def test_base_url_with_credentials_is_refused_without_echoing_them() -> None:
    with pytest.raises(ConfigError) as caught:
        cluster({"VERS_BASE_URL": f"https://user:{API_KEY}@api.vers.sh"})
    assert "credentials" in str(caught.value)
    assert_no_leak(str(caught.value))


def test_vm_domain_pairs_with_a_staging_api_but_not_with_a_simulator() -> None:
    assert cluster({"VERS_BASE_URL": "https://api.staging.vers.sh"}).vm_domain == (
        "vm.staging.vers.sh")
    assert cluster({"VERS_BASE_URL": "http://127.0.0.1:9000"}).vm_domain == "vm.vers.sh"
    assert cluster({"VERS_BASE_URL": "https://api.staging.vers.sh",
                    "VERS_VM_DOMAIN": "vm.example"}).vm_domain == "vm.example"


def test_tls_verify(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    assert cluster({"VERS_TLS_VERIFY": "true"}).tls_verify is True
    assert cluster({"VERS_TLS_VERIFY": "False"}).tls_verify is False
    assert cluster({}, {"VERS_TLS_VERIFY": str(bundle)}).tls_verify == bundle
    assert cluster(file_values={"VERS_TLS_VERIFY": False}).tls_verify is False
    with pytest.raises(ConfigError) as caught:
        cluster({}, {"VERS_TLS_VERIFY": str(tmp_path / "missing.pem")})
    message = str(caught.value)
    assert message.startswith(f"VERS_TLS_VERIFY from configmap {CM}: ")
    assert "missing.pem" in message and "CA bundle" in message


@pytest.mark.parametrize("port", ["abc", "0", "65536", "-1", "44.3"])
def test_bad_port_names_key_and_source(port: str) -> None:
    with pytest.raises(ConfigError) as caught:
        cluster({}, {"VERS_SSH_PORT": port})
    assert str(caught.value) == (
        f"VERS_SSH_PORT from configmap reef-system/reef-operator: {port!r} "
        "is not a port number (1-65535)")
    assert isinstance(caught.value, ValueError)
    assert caught.value.key == "VERS_SSH_PORT"
    assert caught.value.source == f"configmap {CM}"


@pytest.mark.parametrize("rate", ["0", "-2", "fast", "nan", "inf"])
def test_bad_rate_names_key_and_source(rate: str) -> None:
    with pytest.raises(ConfigError, match=r"^REEF_PLATFORM_RATE from env: .* greater than 0"):
        cluster({"REEF_PLATFORM_RATE": rate})


@pytest.mark.parametrize("burst", ["0", "1.5", "many"])
def test_bad_burst(burst: str) -> None:
    with pytest.raises(ConfigError, match=rf"^REEF_PLATFORM_BURST from file {re.escape(FILE)}: "):
        cluster(file_values={"REEF_PLATFORM_BURST": burst})


def test_connect_host() -> None:
    assert cluster({"VERS_SSH_CONNECT_HOST": "127.0.0.1"}).ssh_connect_host == "127.0.0.1"
    assert cluster({"VERS_SSH_CONNECT_HOST": "[::1]"}).ssh_connect_host == "::1"
    with pytest.raises(ConfigError, match="VERS_SSH_PORT"):
        cluster({"VERS_SSH_CONNECT_HOST": "127.0.0.1:2222"})
    with pytest.raises(ConfigError, match="VERS_SSH_CONNECT_HOST from env"):
        cluster({"VERS_SSH_CONNECT_HOST": "https://x"})


def test_bad_profile_and_local_root() -> None:
    with pytest.raises(ConfigError, match="REEF_DEFAULT_PROFILE from env: 'Full Profile'"):
        cluster({"REEF_DEFAULT_PROFILE": "Full Profile"})
    with pytest.raises(ConfigError, match="REEF_LOCAL_ROOT from env: 'rel/dir'"):
        cluster({"REEF_LOCAL_ROOT": "rel/dir"})
    assert cluster({"REEF_LOCAL_ROOT": "/srv/vms"}).local_root == Path("/srv/vms")


# --- the API key -----------------------------------------------------------------------------


def test_api_key_from_secret_or_env() -> None:
    from_secret = cluster({}, {}, {"VERS_API_KEY": API_KEY + "\n", "other": "x"})
    assert from_secret.vers_api_key == Secret(API_KEY)
    assert from_secret.sources["VERS_API_KEY"] == f"secret {SEC}"

    from_env = cluster({"VERS_API_KEY": "env-key"}, {}, {"VERS_API_KEY": API_KEY})
    assert isinstance(from_env.vers_api_key, Secret)
    assert from_env.vers_api_key.reveal() == "env-key"
    assert from_env.sources["VERS_API_KEY"] == "env"

    from_file = cluster({}, {}, {}, {"VERS_API_KEY": "file-key"})
    assert from_file.require_api_key() == Secret("file-key")
    assert cluster({}, {}, {"VERS_API_KEY": API_KEY},
                   {"VERS_API_KEY": "file-key"}).require_api_key() == Secret(API_KEY)


def test_only_the_api_key_is_read_from_the_secret() -> None:
    config = cluster({}, {}, {"VERS_SSH_PORT": "22"})
    assert config.ssh_port == 443


def test_missing_api_key_is_a_clear_error_when_required() -> None:
    with pytest.raises(ConfigError, match="VERS_API_KEY is not set"):
        cluster().require_api_key()


def test_api_key_in_configmap_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        cluster({"VERS_API_KEY": "env-key"}, {"VERS_API_KEY": API_KEY})
    message = str(caught.value)
    assert "put VERS_API_KEY in a Secret, not a ConfigMap" in message
    assert CM in message
    assert_no_leak(message)


def test_api_key_with_spaces_is_refused_without_showing_it() -> None:
    with pytest.raises(ConfigError) as caught:
        cluster({}, {}, {"VERS_API_KEY": f"{API_KEY}\n{API_KEY}"})
    assert str(caught.value).startswith(f"VERS_API_KEY from secret {SEC}: ")
    assert_no_leak(str(caught.value))


def test_the_key_appears_nowhere() -> None:
    config = cluster({}, {}, {"VERS_API_KEY": API_KEY})
    rows = config.describe()
    assert [row[0] for row in rows] == list(KEYS)
    assert ("VERS_API_KEY", Secret(API_KEY).masked(), f"secret {SEC}") in rows
    for text in [*(" ".join(row) for row in rows), *config.log_lines(), repr(config),
                 str(config)]:
        assert_no_leak(text)


def test_describe_and_log_lines_show_every_value() -> None:
    config = cluster({"VERS_SSH_PORT": "2222"})
    shown = {key: (value, source) for key, value, source in config.describe()}
    assert shown["VERS_API_KEY"] == ("(not set)", "default")
    assert shown["VERS_SSH_PORT"] == ("2222", "env")
    assert shown["VERS_TLS_VERIFY"] == ("false", "default")
    assert shown["REEF_PLATFORM_RATE"] == ("20", "default")
    lines = config.log_lines()
    assert len(lines) == len(KEYS)
    assert "config VERS_SSH_PORT=2222 (from env)" in lines


def test_config_is_frozen_and_hashable() -> None:
    config = cluster()
    with pytest.raises(AttributeError):
        config.ssh_port = 1  # type: ignore[misc]
    assert hash(config) == hash(cluster())
    assert config == cluster()


# --- the file --------------------------------------------------------------------------------


def test_load_yaml_and_json(tmp_path: Path) -> None:
    yaml_file = tmp_path / "config.yaml"
    yaml_file.write_text("VERS_SSH_PORT: 2222\nVERS_TLS_VERIFY: true\nother: [1, 2]\n")
    assert load_file(yaml_file) == {"VERS_SSH_PORT": 2222, "VERS_TLS_VERIFY": True,
                                    "other": [1, 2]}
    json_file = tmp_path / "config.json"
    json_file.write_text('{"VERS_BASE_URL": "https://api.vers.sh/api/v1", "apiKey": "x"}')
    values = load_file(json_file)
    config = resolve(HOME_ENV, None, None, values, file_path=str(json_file))
    assert config.vers_base_url == "https://api.vers.sh"
    assert config.sources["VERS_BASE_URL"] == f"file {json_file}"
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert load_file(empty) == {}


def test_non_mapping_file_is_an_error(tmp_path: Path) -> None:
    listing = tmp_path / "list.yaml"
    listing.write_text("- VERS_SSH_PORT\n- 22\n")
    with pytest.raises(ConfigError, match=r"must hold a mapping.*found a list"):
        load_file(listing)
    scalar = tmp_path / "scalar.json"
    scalar.write_text('"just a string"')
    with pytest.raises(ConfigError, match="found a str"):
        load_file(scalar)


def test_unparsable_file_does_not_echo_its_text(tmp_path: Path) -> None:
    broken_json = tmp_path / "config.json"
    broken_json.write_text('{"VERS_API_KEY": "' + API_KEY + '" "x": 1}')
    with pytest.raises(ConfigError, match="not valid JSON") as caught:
        load_file(broken_json)
    assert_no_leak(str(caught.value))
    broken_yaml = tmp_path / "config.yaml"
    broken_yaml.write_text(f"VERS_API_KEY: {API_KEY}\n  bad: : [\n")
    with pytest.raises(ConfigError, match="not valid YAML") as caught:
        load_file(broken_yaml)
    assert_no_leak(str(caught.value))
    with pytest.raises(ConfigError, match="cannot read"):
        load_file(tmp_path / "absent.yaml")


def test_config_file_path(tmp_path: Path) -> None:
    assert config_file_path({"HOME": str(tmp_path)}) is None
    default = tmp_path / ".vers" / "config.json"
    default.parent.mkdir()
    default.write_text("{}")
    assert config_file_path({"HOME": str(tmp_path)}) == default
    other = tmp_path / "reef.yaml"
    other.write_text("{}")
    assert config_file_path({"HOME": str(tmp_path), "REEF_CONFIG_FILE": str(other)}) == other
    with pytest.raises(ConfigError, match="REEF_CONFIG_FILE from env"):
        config_file_path({"HOME": str(tmp_path), "REEF_CONFIG_FILE": str(tmp_path / "no")})


# --- the cluster -----------------------------------------------------------------------------


class FakeCoreV1:
    """Just the two reads the operator makes; absent objects answer 404 like the API."""

    def __init__(self, configmaps: dict[tuple[str, str], dict[str, str] | None],
                 secrets: dict[tuple[str, str], dict[str, str] | None],
                 failure: ApiException | None = None) -> None:
        self.configmaps, self.secrets, self.failure = configmaps, secrets, failure

    def read_namespaced_config_map(self, name: str, namespace: str) -> SimpleNamespace:
        return self._get(self.configmaps, name, namespace)

    def read_namespaced_secret(self, name: str, namespace: str) -> SimpleNamespace:
        return self._get(self.secrets, name, namespace)

    def _get(self, objects: dict[tuple[str, str], dict[str, str] | None], name: str,
             namespace: str) -> SimpleNamespace:
        if self.failure is not None:
            raise self.failure
        if (namespace, name) not in objects:
            raise ApiException(status=404, reason="Not Found")
        return SimpleNamespace(data=objects[(namespace, name)])


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_read_cluster_sources_decodes_the_secret() -> None:
    api = FakeCoreV1({("ns", "cm"): {"VERS_SSH_PORT": "2222"}},
                     {("ns", "sec"): {"VERS_API_KEY": b64(API_KEY), "blob": b64("x")}})
    configmap, secret = read_cluster_sources(api, "ns", "cm", "sec")
    assert configmap == {"VERS_SSH_PORT": "2222"}
    assert secret == {"VERS_API_KEY": API_KEY, "blob": "x"}


def test_read_cluster_sources_404_is_none() -> None:
    assert read_cluster_sources(FakeCoreV1({}, {}), "ns", "cm", "sec") == (None, None)


def test_read_cluster_sources_empty_objects() -> None:
    api = FakeCoreV1({("ns", "cm"): None}, {("ns", "sec"): None})
    assert read_cluster_sources(api, "ns", "cm", "sec") == ({}, {})


def test_read_cluster_sources_other_errors_are_config_errors() -> None:
    api = FakeCoreV1({}, {}, failure=ApiException(status=403, reason="Forbidden"))
    with pytest.raises(ConfigError, match="cannot read ConfigMap ns/cm: 403 Forbidden"):
        read_cluster_sources(api, "ns", "cm", "sec")


def test_undecodable_api_key_is_an_error_but_other_binary_keys_are_skipped() -> None:
    binary = base64.b64encode(b"\xff\xfe").decode()
    api = FakeCoreV1({}, {("ns", "sec"): {"ca.der": binary}})
    assert read_cluster_sources(api, "ns", "cm", "sec") == (None, {})
    api = FakeCoreV1({}, {("ns", "sec"): {"VERS_API_KEY": "not base64!"}})
    with pytest.raises(ConfigError, match="VERS_API_KEY from secret ns/sec"):
        read_cluster_sources(api, "ns", "cm", "sec")


def test_load_config_ties_it_together(tmp_path: Path) -> None:
    (tmp_path / ".vers").mkdir()
    (tmp_path / ".vers" / "config.json").write_text(
        '{"VERS_API_KEY": "file-key", "REEF_PLATFORM_BURST": 9}')
    api = FakeCoreV1({("reef-system", "reef-operator-config"): {"REEF_DEFAULT_PROFILE": "lite"}},
                     {("reef-system", "reef-vers-credentials"): {"VERS_API_KEY": b64(API_KEY)}})
    env = {"HOME": str(tmp_path), "VERS_SSH_PORT": "2222"}
    config = load_config(env, api)
    assert config.ssh_port == 2222
    assert config.default_profile == "lite"
    assert config.sources["REEF_DEFAULT_PROFILE"] == (
        "configmap reef-system/reef-operator-config")
    assert config.vers_api_key == Secret(API_KEY)
    assert config.sources["VERS_API_KEY"] == "secret reef-system/reef-vers-credentials"
    assert config.platform_burst == 9
    assert config.sources["REEF_PLATFORM_BURST"] == (
        f"file {tmp_path / '.vers' / 'config.json'}")


def test_load_config_names_from_env_and_without_a_cluster(tmp_path: Path) -> None:
    api = FakeCoreV1({("ops", "my-cm"): {"VERS_SSH_PORT": "2200"}}, {})
    env = {"HOME": str(tmp_path), "REEF_NAMESPACE": "ops", "REEF_CONFIGMAP": "my-cm",
           "REEF_SECRET": "my-secret"}
    config = load_config(env, api)
    assert config.ssh_port == 2200
    assert config.sources["VERS_SSH_PORT"] == "configmap ops/my-cm"
    assert load_config({"HOME": str(tmp_path)}).sources == dict.fromkeys(KEYS, "default")
