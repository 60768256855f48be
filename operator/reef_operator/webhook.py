"""The admission webhook server's settings: where it listens and its certificate."""

from __future__ import annotations

import ipaddress
import os
import tempfile
from pathlib import Path

import kopf

from reef_operator.testing.pki import CertificateAuthority

WEBHOOK_CONFIGURATION = "reef.vers.sh"


def enabled() -> bool:
    return bool(os.environ.get("REEF_WEBHOOK_PORT"))


def configure(settings: kopf.OperatorSettings) -> bool:
    """Serve admission checks if REEF_WEBHOOK_PORT is set; True if configured.

    REEF_WEBHOOK_HOST is the name the apiserver calls (default 127.0.0.1, right
    for the local control plane; a Service name in a cluster). A certificate
    comes from REEF_WEBHOOK_CERT/REEF_WEBHOOK_KEY/REEF_WEBHOOK_CA, or is made
    for that host by a throwaway CA.
    """
    port = os.environ.get("REEF_WEBHOOK_PORT")
    if not port:
        return False
    host = os.environ.get("REEF_WEBHOOK_HOST", "127.0.0.1")
    cert, key, ca = (os.environ.get(k) for k in
                     ("REEF_WEBHOOK_CERT", "REEF_WEBHOOK_KEY", "REEF_WEBHOOK_CA"))
    if not (cert and key and ca):
        directory = Path(tempfile.mkdtemp(prefix="reef-webhook-"))
        authority = CertificateAuthority(directory, "reef-operator webhook CA")
        try:
            ipaddress.ip_address(host)
            pair = authority.issue_server("webhook", ["localhost"], (host,))
        except ValueError:
            pair = authority.issue_server("webhook", [host])
        cert, key, ca = str(pair.cert), str(pair.key), str(authority.cert_path)
    settings.admission.server = kopf.WebhookServer(
        addr=os.environ.get("REEF_WEBHOOK_ADDR", "0.0.0.0"), port=int(port), host=host,
        certfile=cert, pkeyfile=key, cafile=ca)
    settings.admission.managed = WEBHOOK_CONFIGURATION
    return True
