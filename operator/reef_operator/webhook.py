"""The admission webhook server: where it listens, its certificate, and who keeps the
ValidatingWebhookConfiguration.

Its settings (`REEF_WEBHOOK_*`, read from the environment) are rows of the settings
table (`reef_operator.config.table`, docs/configuration.md). With `REEF_WEBHOOK_MANAGED`
true, kopf creates and patches the ValidatingWebhookConfiguration `reef.vers.sh` with a
`url` clientConfig pointing at this process, which suits the local control plane; false,
the configuration is installed by someone else (the Helm chart: a `service` clientConfig
and a caBundle) and kopf leaves it alone, so the CA is optional, since only the apiserver
needs it.
"""

from __future__ import annotations

import ipaddress
import os
import tempfile
from pathlib import Path

import kopf

from reef_operator.certificates import CertificateAuthority
from reef_operator.config import WebhookConfig, read_env, webhook_config
from reef_operator.config.table import EVERY_INTERFACE, REEF_WEBHOOK_MANAGED

WEBHOOK_CONFIGURATION = "reef.vers.sh"


def _config() -> WebhookConfig | None:
    return webhook_config(os.environ)


def enabled() -> bool:
    return _config() is not None


def managed() -> bool:
    """Whether kopf keeps the ValidatingWebhookConfiguration (REEF_WEBHOOK_MANAGED)."""
    return read_env(REEF_WEBHOOK_MANAGED, os.environ)


def listen_address() -> tuple[str, int] | None:
    """Where this process's webhook server can be reached (None: no webhook)."""
    config = _config()
    if config is None:
        return None
    addr = config.addr
    return ("127.0.0.1" if addr == EVERY_INTERFACE else "::1" if addr == "::" else addr,
            config.port)


def configure(settings: kopf.OperatorSettings) -> bool:
    """Serve admission checks if REEF_WEBHOOK_PORT is set; True if configured."""
    config = _config()
    if config is None:
        return False
    host, is_managed = config.host, config.managed
    cert, key, ca = config.cert, config.key, config.ca
    if not (cert and key and (ca or not is_managed)):
        directory = Path(tempfile.mkdtemp(prefix="reef-webhook-"))
        authority = CertificateAuthority(directory, "reef-operator webhook CA")
        try:
            ipaddress.ip_address(host)
            pair = authority.issue_server("webhook", ["localhost"], (host,))
        except ValueError:
            pair = authority.issue_server("webhook", [host])
        cert, key, ca = str(pair.cert), str(pair.key), str(authority.cert_path)
    settings.admission.server = kopf.WebhookServer(
        addr=config.addr, port=config.port, host=host,
        certfile=cert, pkeyfile=key, cafile=ca)
    # None: kopf neither creates nor patches any webhook configuration.
    settings.admission.managed = WEBHOOK_CONFIGURATION if is_managed else None
    return True
