"""Who keeps the ValidatingWebhookConfiguration: kopf (local runs) or the Helm chart."""

from __future__ import annotations

from pathlib import Path

import kopf
import pytest

from reef_operator import webhook
from reef_operator.certificates import CertificateAuthority


def _settings() -> kopf.OperatorSettings:
    return kopf.OperatorSettings()


def test_no_port_no_webhook(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REEF_WEBHOOK_PORT", raising=False)
    settings = _settings()
    assert webhook.configure(settings) is False
    assert settings.admission.server is None


def test_by_default_kopf_manages_the_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REEF_WEBHOOK_PORT", "9443")
    for name in ("REEF_WEBHOOK_MANAGED", "REEF_WEBHOOK_CERT", "REEF_WEBHOOK_KEY",
                 "REEF_WEBHOOK_CA"):
        monkeypatch.delenv(name, raising=False)
    settings = _settings()
    assert webhook.configure(settings) is True
    assert settings.admission.managed == webhook.WEBHOOK_CONFIGURATION
    server = settings.admission.server
    assert isinstance(server, kopf.WebhookServer)
    assert server.certfile and Path(server.certfile).is_file()   # a throwaway certificate


def test_managed_elsewhere_kopf_serves_the_given_certificate_and_writes_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    authority = CertificateAuthority(tmp_path, "test CA")
    pair = authority.issue_server("webhook", ["reef-operator-webhook.reef-system.svc"])
    monkeypatch.setenv("REEF_WEBHOOK_PORT", "9443")
    monkeypatch.setenv("REEF_WEBHOOK_HOST", "reef-operator-webhook.reef-system.svc")
    monkeypatch.setenv("REEF_WEBHOOK_CERT", str(pair.cert))
    monkeypatch.setenv("REEF_WEBHOOK_KEY", str(pair.key))
    monkeypatch.delenv("REEF_WEBHOOK_CA", raising=False)   # only the apiserver needs it
    monkeypatch.setenv("REEF_WEBHOOK_MANAGED", "false")
    settings = _settings()
    assert webhook.configure(settings) is True
    assert settings.admission.managed is None
    server = settings.admission.server
    assert isinstance(server, kopf.WebhookServer)
    assert (server.certfile, server.pkeyfile, server.port) == (str(pair.cert), str(pair.key),
                                                               9443)


def test_a_misspelt_switch_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REEF_WEBHOOK_PORT", "9443")
    monkeypatch.setenv("REEF_WEBHOOK_MANAGED", "externally")
    with pytest.raises(ValueError, match="REEF_WEBHOOK_MANAGED"):
        webhook.configure(_settings())


@pytest.mark.parametrize(("addr", "reached_at"), [
    (None, "127.0.0.1"), ("0.0.0.0", "127.0.0.1"), ("::", "::1"), ("10.1.2.3", "10.1.2.3"),
])
def test_the_probe_reaches_the_server_where_it_listens(
    monkeypatch: pytest.MonkeyPatch, addr: str | None, reached_at: str
) -> None:
    monkeypatch.setenv("REEF_WEBHOOK_PORT", "9443")
    if addr is None:
        monkeypatch.delenv("REEF_WEBHOOK_ADDR", raising=False)
    else:
        monkeypatch.setenv("REEF_WEBHOOK_ADDR", addr)
    assert webhook.enabled()
    assert webhook.listen_address() == (reached_at, 9443)


def test_without_a_port_nothing_listens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REEF_WEBHOOK_PORT", "")
    monkeypatch.setenv("REEF_WEBHOOK_ADDR", "10.1.2.3")
    assert not webhook.enabled()
    assert webhook.listen_address() is None


@pytest.mark.parametrize("word", ["no", "OFF", "0", "False"])
def test_the_switch_takes_the_words_every_switch_takes(
    monkeypatch: pytest.MonkeyPatch, word: str
) -> None:
    monkeypatch.setenv("REEF_WEBHOOK_MANAGED", word)
    assert webhook.managed() is False
