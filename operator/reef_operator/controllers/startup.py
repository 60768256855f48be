"""Operator start: kopf settings, configuration, providers, and the initial picture."""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

import kopf

from reef_operator import webhook
from reef_operator.config import REEF_NAMESPACE, load_config, read_env
from reef_operator.constants import FINALIZER
from reef_operator.controllers import runtime
from reef_operator.controllers.persistence import MemoryProgress, NoDiffBase
from reef_operator.kube.api import KubeApi, api_client
from reef_operator.providers import factory
from reef_operator.providers.base import Provider
from reef_operator.providers.instrumented import InstrumentedProvider
from reef_operator.vmnodes.fleet import Fleet
from reef_operator.vmnodes.pooling import PoolClaims
from reef_operator.vmnodes.profiles import ProfileBook
from reef_operator.vmnodes.reconcile import VmNodeReconciler

logger = logging.getLogger("reef_operator")


@kopf.on.startup()
async def start(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = MemoryProgress()
    settings.persistence.diffbase_storage = NoDiffBase()
    settings.posting.level = logging.INFO
    if webhook.configure(settings):
        if webhook.managed():
            logger.info("admission webhook enabled (ValidatingWebhookConfiguration %s, "
                        "kept by the operator)", webhook.WEBHOOK_CONFIGURATION)
        else:
            logger.info("admission webhook enabled (its ValidatingWebhookConfiguration is "
                        "installed with the chart or manifests)")
    settings.watching.server_timeout = 300
    # Our daemons exit within moments of being stopped; kopf waits that long for them
    # instead of scheduling a re-check, which it does by patching a dummy annotation
    # onto the object being deleted (one more write per deletion).
    settings.background.instant_exit_timeout = 2.0

    kube = KubeApi(api_client())
    config = await asyncio.to_thread(load_config, None, kube.core)
    for line in config.log_lines():
        logger.info(line)

    providers: dict[str, Provider] = factory.build(config)
    if "vers" not in providers:
        logger.warning("VERS_API_KEY is not set: only Local-provider profiles can be served")
    for name, why in factory.disabled(config).items():
        logger.info("provider %s: %s", name, why)
    # Every provider operation is counted and timed (metrics); the providers do not know.
    providers = {key: InstrumentedProvider(provider) for key, provider in providers.items()}

    fleet, profiles = Fleet(), ProfileBook(
        secret_namespace=read_env(REEF_NAMESPACE, os.environ))
    # The whole picture before the first reconcile, so no node is judged on a partial view.
    for body in await kube.list_all("bootprofiles"):
        profiles.upsert(body)
    vmnode_bodies = {}
    for body in await kube.list_all("vmnodes"):
        fleet.upsert(body)
        meta = body.get("metadata", {})
        vmnode_bodies[(meta.get("namespace", ""), meta.get("name", ""))] = body

    async def read_secret(namespace: str, name: str) -> Any:
        return await kube.read_secret(namespace, name)

    reconciler = VmNodeReconciler(kube, providers, fleet, profiles, config.default_profile,
                                  runtime.post_event, read_secret, factory.disabled(config),
                                  config.adoption_namespaces)
    rt = runtime.Runtime(config, kube, providers, fleet, profiles, reconciler)
    rt.vmnode_bodies.update(vmnode_bodies)
    # The policies too, so no VM is created over a limit before their watch catches up.
    for body in await kube.list_all("reefpolicies"):
        meta = body.get("metadata", {})
        rt.policies.setdefault(meta.get("namespace", ""), {})[meta.get("name", "")] = body
    reconciler.policy = rt.policy
    for body in await kube.list_all("vmpools"):
        meta = body.get("metadata", {})
        rt.pools[(meta.get("namespace", ""), meta.get("name", ""))] = body
    reconciler.pool_claims = PoolClaims(kube, rt.vmnode_bodies, rt.pool)
    runtime.install(rt)
