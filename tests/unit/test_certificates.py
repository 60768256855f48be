"""The operator's own certificate authority: certificates strict TLS clients accept."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from reef_operator import certificates
from reef_operator.certificates import (
    CA_VALIDITY,
    SERVING_VALIDITY,
    CertificateAuthority,
    KeyPair,
)

SERVICE = "reef-operator-webhook.reef-system.svc"


def _load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _handshake(authority: CertificateAuthority, pair: KeyPair, server_name: str) -> None:
    """A TLS handshake in memory: OpenSSL verifies the chain and the host name."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(pair.cert, pair.key)
    client = ssl.create_default_context(cafile=str(authority.cert_path))
    to_server, to_client = ssl.MemoryBIO(), ssl.MemoryBIO()
    from_server, from_client = ssl.MemoryBIO(), ssl.MemoryBIO()
    server_side = server.wrap_bio(to_server, from_server, server_side=True)
    client_side = client.wrap_bio(to_client, from_client, server_hostname=server_name)
    done = {"client": False, "server": False}
    for _ in range(10):
        for name, side in (("client", client_side), ("server", server_side)):
            if not done[name]:
                try:
                    side.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        to_server.write(from_client.read())
        to_client.write(from_server.read())
        if all(done.values()):
            return
    raise AssertionError("handshake did not finish")


def test_a_serving_certificate_passes_a_strict_tls_client_for_each_of_its_names(
    tmp_path: Path,
) -> None:
    authority = CertificateAuthority(tmp_path, "reef-operator webhook CA")
    pair = authority.issue_server("webhook", [SERVICE, "localhost"], ("127.0.0.1",))
    for name in (SERVICE, "localhost", "127.0.0.1"):
        _handshake(authority, pair, name)
    with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
        _handshake(authority, pair, "elsewhere.example")


def test_a_certificate_from_another_authority_is_refused(tmp_path: Path) -> None:
    ours = CertificateAuthority(tmp_path / "ours", "reef-operator webhook CA")
    theirs = CertificateAuthority(tmp_path / "theirs", "reef-operator webhook CA")
    pair = theirs.issue_server("webhook", [SERVICE])
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(ours, pair, SERVICE)


def test_the_ca_signs_certificates_only_and_the_leaf_serves_only(tmp_path: Path) -> None:
    authority = CertificateAuthority(tmp_path, "test CA")
    ca = _load(authority.cert_path)
    leaf = _load(authority.issue_server("webhook", [SERVICE], ("10.0.0.7",)).cert)

    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert (usage.key_cert_sign, usage.crl_sign, usage.digital_signature) == (True, True, False)

    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    leaf_usage = leaf.extensions.get_extension_for_class(x509.KeyUsage)
    assert leaf_usage.critical and leaf_usage.value.digital_signature
    assert not leaf_usage.value.key_cert_sign
    assert list(leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH]
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == [SERVICE]
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.0.0.7")]
    issuer_id = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ca_id = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert issuer_id.key_identifier == ca_id.digest
    leaf.verify_directly_issued_by(ca)


def test_validity_is_bounded_and_tolerates_clock_skew(tmp_path: Path) -> None:
    now = datetime.datetime.now(datetime.UTC)
    authority = CertificateAuthority(tmp_path, "test CA")
    ca = _load(authority.cert_path)
    leaf = _load(authority.issue_server("webhook", [SERVICE]).cert)
    for cert, validity in ((ca, CA_VALIDITY), (leaf, SERVING_VALIDITY)):
        assert cert.not_valid_before_utc < now
        assert abs(cert.not_valid_after_utc - (now + validity)) < datetime.timedelta(minutes=1)
    # What public CAs may issue at most; private clients apply no lower bound.
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc <= datetime.timedelta(days=398)


def test_keys_and_certificates_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    authority = CertificateAuthority(tmp_path, "test CA")
    authority.issue_server("webhook", [SERVICE])
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == ["ca.crt", "ca.key", "webhook.crt", "webhook.key"]
    for path in tmp_path.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name


def test_an_authority_and_a_fitting_certificate_are_kept_across_restarts(
    tmp_path: Path,
) -> None:
    first = CertificateAuthority(tmp_path, "test CA")
    pair = first.issue_server("webhook", [SERVICE])
    issued = pair.cert.read_bytes()
    again = CertificateAuthority(tmp_path, "test CA")
    assert again.cert_path.read_bytes() == first.cert_path.read_bytes()
    assert again.issue_server("webhook", [SERVICE]).cert.read_bytes() == issued


def test_a_certificate_for_other_names_or_another_authority_is_issued_anew(
    tmp_path: Path,
) -> None:
    authority = CertificateAuthority(tmp_path / "ca", "test CA")
    pair = authority.issue_server("webhook", [SERVICE])
    renamed = authority.issue_server("webhook", ["reef-operator-webhook.other.svc"])
    assert renamed == pair
    names = _load(renamed.cert).extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert names == ["reef-operator-webhook.other.svc"]

    stranger = CertificateAuthority(tmp_path / "other", "test CA")
    foreign = stranger.issue_server("webhook", [SERVICE])
    (tmp_path / "ca" / "webhook.crt").write_bytes(foreign.cert.read_bytes())
    (tmp_path / "ca" / "webhook.key").write_bytes(foreign.key.read_bytes())
    _handshake(authority, authority.issue_server("webhook", [SERVICE]), SERVICE)


def test_a_certificate_close_to_expiry_is_issued_anew(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    authority = CertificateAuthority(tmp_path, "test CA")
    issued = authority.issue_server("webhook", [SERVICE]).cert.read_bytes()
    monkeypatch.setattr(certificates, "RENEW_BEFORE", SERVING_VALIDITY + datetime.timedelta(1))
    assert authority.issue_server("webhook", [SERVICE]).cert.read_bytes() != issued


def test_a_certificate_needs_a_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one"):
        CertificateAuthority(tmp_path, "test CA").issue_server("webhook", [])
