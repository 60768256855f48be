"""`kubectl reef config`: the operator configuration, resolved as the operator resolves it.

Same code path as the operator's startup (`reef_operator.config.load_config`):
environment, then the ConfigMap, then the Secret (API key only), then the file.
The environment is this shell's, or with `--from-deployment` the operator
Deployment's literal `env` values, so the answer matches an operator run there.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from reef_operator.cli.plugin.cluster import Cluster, PluginError
from reef_operator.config import ConfigError, load_config
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
