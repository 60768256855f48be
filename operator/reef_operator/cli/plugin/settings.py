"""`kubectl reef config`: the operator configuration, resolved as the operator resolves it.

Same code path as the operator's startup (`reef_operator.config.load_config`):
environment, then the ConfigMap, then the Secret (API key only), then the file.
The environment is this shell's, or with `--from-deployment` the operator
Deployment's literal `env` values, so the answer matches an operator run there.

`config set KEY VALUE` / `config unset KEY` change the ConfigMap (the seed's config
overrides), after checking the value with the operator's own parser: a value the
operator would refuse at start is refused here, and nothing is written.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from reef_operator.cli.plugin.cluster import Cluster, PluginError
from reef_operator.config import (
    BY_KEY,
    KEYS,
    REEF_CONFIGMAP,
    REEF_SECRET,
    ConfigError,
    Setting,
    is_given,
    load_config,
    read_env,
    resolve,
)
from reef_operator.constants import OPERATOR_NAMESPACE


def resolved(cluster: Cluster, env: dict[str, str], namespace: str) -> list[dict[str, str]]:
    try:
        config = load_config(env, cluster.core, namespace=namespace)
    except ConfigError as error:
        raise PluginError(f"the operator configuration is invalid: {error}") from None
    return [{"key": key, "value": value, "source": source}
            for key, value, source in config.describe()]


def deployment_env(cluster: Cluster, name: str, namespace: str = OPERATOR_NAMESPACE,
                   ) -> dict[str, str]:
    """Literal env values of the operator container; valueFrom entries are the Secret's
    business and are resolved from the Secret itself."""
    try:
        deployment = client.AppsV1Api(cluster.api).read_namespaced_deployment(name, namespace)
    except ApiException as error:
        if error.status == 404:
            raise PluginError(f"no Deployment {namespace}/{name}: is the operator installed "
                              "with Helm or manifests/? (without --from-deployment the "
                              "environment of this shell is used)") from None
        raise PluginError(f"cannot read Deployment {namespace}/{name}: {error.reason}") from None
    env: dict[str, str] = {}
    pod = deployment.spec.template.spec
    containers: list[Any] = (pod.containers if pod is not None else None) or []
    for container in containers[:1]:
        for item in container.env or []:
            if item.value is not None:
                env[item.name] = item.value
    return env


def changeable(env: dict[str, str], namespace: str, key: str,
               value: str | None) -> Setting[Any]:
    """The setting `config set/unset` may change in the ConfigMap, or the reason why not
    (before anything is read or written); the value itself is checked against the
    ConfigMap it joins."""
    setting = BY_KEY.get(key)
    if setting is None:
        raise PluginError(f"unknown key {key!r}: the operator reads {', '.join(KEYS)}")
    if key not in KEYS:
        raise PluginError(f"{key} is read from the operator's environment only, not from its "
                          "ConfigMap: set it in the Deployment (with Helm: the chart's values)")
    if value is not None and not value.strip():
        raise PluginError(f"an empty value would leave {key} unset: use `kubectl reef config "
                          f"unset {key}`")
    if setting.secret and value is not None:   # removing a leaked one is always allowed
        secret = read_env(REEF_SECRET, env)
        raise PluginError(f"{key} is a secret and never goes in a ConfigMap: put it in Secret "
                          f"{namespace}/{secret} (kubectl -n {namespace} create secret generic "
                          f"{secret} --from-literal={key}=…)")
    return setting


def change(cluster: Cluster, env: dict[str, str], namespace: str, key: str,
           value: str | None) -> list[str]:
    """Set (or with `value` None, remove) one key in the operator's ConfigMap."""
    setting = changeable(env, namespace, key, value)
    name = read_env(REEF_CONFIGMAP, env)
    core = client.CoreV1Api(cluster.api)
    with cluster.errors(f"cannot read ConfigMap {namespace}/{name}"):
        try:
            current = dict(core.read_namespaced_config_map(name, namespace).data or {})
        except ApiException as error:
            if error.status != 404:
                raise
            current = None
    if value is None:
        if current is None or key not in current:
            return [f"{key} is not set in ConfigMap {namespace}/{name}: nothing to do"]
        with cluster.errors(f"cannot change ConfigMap {namespace}/{name}"):
            core.patch_namespaced_config_map(name, namespace, {"data": {key: None}})
        done = f"{key} removed from ConfigMap {namespace}/{name}"
    else:
        # A file the operator reads exists (or not) in its container, not on this machine:
        # only the rest of the value can be checked here.
        checked = "true" if setting.names_a_file(value) else value
        try:
            resolve({}, {**(current or {}), key: checked}, configmap_name=f"{namespace}/{name}")
        except ConfigError as error:
            raise PluginError(f"not set: {error}") from None
        with cluster.errors(f"cannot change ConfigMap {namespace}/{name}"):
            if current is None:
                core.create_namespaced_config_map(namespace, client.V1ConfigMap(
                    metadata=client.V1ObjectMeta(name=name), data={key: value}))
            else:
                core.patch_namespaced_config_map(name, namespace, {"data": {key: value}})
        done = f"{key}={value} set in ConfigMap {namespace}/{name}"
    lines = [done]
    if value is not None and setting.names_a_file(value):
        lines.append(f"note: {value} is not checked here: it must be a file in the "
                     "operator's container")
    if is_given(setting, env):
        lines.append(f"note: {key} is also set in the environment given, which wins over the "
                     "ConfigMap")
    lines.append("the operator reads its configuration when it starts: kubectl -n "
                 f"{namespace} rollout restart deployment/reef-operator (with Helm or GitOps, "
                 "change the values there, or the next sync puts the old value back)")
    return lines
