"""The admission webhook server's settings: where it listens, its certificate, and who
keeps the ValidatingWebhookConfiguration.

Environment:

- `REEF_WEBHOOK_PORT`: serve admission checks on this port (unset: no webhook).
- `REEF_WEBHOOK_ADDR`: listen address (default 0.0.0.0).
- `REEF_WEBHOOK_HOST`: the name the apiserver calls (default 127.0.0.1, right for the
  local control plane; a Service name in a cluster). Used for the generated certificate
  and for the URL kopf writes when it manages the configuration.
- `REEF_WEBHOOK_CERT` / `REEF_WEBHOOK_KEY` / `REEF_WEBHOOK_CA`: the serving certificate,
  its key and the CA that signed it. Without them a throwaway CA makes one for the host.
- `REEF_WEBHOOK_MANAGED`: `true` (default): kopf creates and patches the
  ValidatingWebhookConfiguration `reef.vers.sh` with a `url` clientConfig pointing at this
  process, which suits the local control plane. `false`: the configuration is installed by
  someone else (the Helm chart: a `service` clientConfig and a caBundle) and kopf leaves
  it alone; the CA is then optional, since only the apiserver needs it.
"""

from __future__ import annotations

import ipaddress
import os
import tempfile
from pathlib import Path

import kopf

from reef_operator.testing.pki import CertificateAuthority

WEBHOOK_CONFIGURATION = "reef.vers.sh"
EVERY_INTERFACE = "0.0.0.0"  # where the webhook server listens unless REEF_WEBHOOK_ADDR says

_FALSE = frozenset({"false", "no", "off", "0"})
_TRUE = frozenset({"true", "yes", "on", "1"})


def enabled() -> bool:
    return bool(os.environ.get("REEF_WEBHOOK_PORT"))


def managed() -> bool:
    """Whether kopf keeps the ValidatingWebhookConfiguration (REEF_WEBHOOK_MANAGED)."""
    word = os.environ.get("REEF_WEBHOOK_MANAGED", "").strip().lower()
    if word in _FALSE:
        return False
    if word and word not in _TRUE:
        raise ValueError(f"REEF_WEBHOOK_MANAGED={word!r}: expected true or false")
    return True


def listen_address() -> tuple[str, int] | None:
    """Where this process's webhook server can be reached (None: no webhook)."""
    port = os.environ.get("REEF_WEBHOOK_PORT")
    if not port:
        return None
    addr = os.environ.get("REEF_WEBHOOK_ADDR", EVERY_INTERFACE)
    return ("127.0.0.1" if addr in (EVERY_INTERFACE, "") else "::1" if addr == "::" else addr,
            int(port))


def configure(settings: kopf.OperatorSettings) -> bool:
    """Serve admission checks if REEF_WEBHOOK_PORT is set; True if configured."""
    port = os.environ.get("REEF_WEBHOOK_PORT")
    if not port:
        return False
    host = os.environ.get("REEF_WEBHOOK_HOST", "127.0.0.1")
    is_managed = managed()
    cert, key, ca = (os.environ.get(k) or None for k in
                     ("REEF_WEBHOOK_CERT", "REEF_WEBHOOK_KEY", "REEF_WEBHOOK_CA"))
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
        addr=os.environ.get("REEF_WEBHOOK_ADDR", EVERY_INTERFACE), port=int(port), host=host,
        certfile=cert, pkeyfile=key, cafile=ca)
    # None: kopf neither creates nor patches any webhook configuration.
    settings.admission.managed = WEBHOOK_CONFIGURATION if is_managed else None
    return True
