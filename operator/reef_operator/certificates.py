"""A certificate authority on disk and the TLS serving certificates it signs.

The admission webhook must speak TLS that the apiserver trusts. In a cluster the
Helm chart hands the operator a certificate; run anywhere else, the operator
makes its own: a CA whose key never leaves `directory`, and a serving
certificate for the name the apiserver calls. The local control plane and the
Vers simulator of the development kit use the same authority for their own
loopback services.

What makes the certificates acceptable to strict TLS clients (Go's crypto/tls in
the apiserver, OpenSSL, Python's ssl):

- the CA is a CA (basic constraints, critical; path length 0: it signs leaves
  only) and may only sign certificates and CRLs (key usage, critical);
- a serving certificate names every host in its subject alternative names (DNS
  names and IP addresses; the common name is not consulted by modern clients),
  is not a CA, is for digital signatures (ECDSA keys sign the handshake) and for
  server authentication only;
- key identifiers link each certificate to its issuer, so chains build even when
  two authorities share a name;
- validity starts a few minutes in the past (clock skew between hosts) and is
  bounded: ten years for the CA, one year for a serving certificate, which is
  reissued once it is within 30 days of expiry or no longer names the hosts
  asked for.

Keys are ECDSA P-256. Private keys and certificates are written readable by
their owner only, from the first byte on.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_VALIDITY = datetime.timedelta(days=3650)
SERVING_VALIDITY = datetime.timedelta(days=365)
RENEW_BEFORE = datetime.timedelta(days=30)
CLOCK_SKEW = datetime.timedelta(minutes=5)


@dataclass(frozen=True)
class KeyPair:
    cert: Path
    key: Path


class CertificateAuthority:
    """A CA kept in `directory` (ca.crt, ca.key), created on first use."""

    def __init__(self, directory: Path, name: str) -> None:
        self.directory = directory
        self.cert_path = directory / "ca.crt"
        self._key_path = directory / "ca.key"
        if not (self.cert_path.exists() and self._key_path.exists()):
            directory.mkdir(parents=True, exist_ok=True)
            _create_authority(name, KeyPair(self.cert_path, self._key_path))
        self._cert = x509.load_pem_x509_certificate(self.cert_path.read_bytes())
        loaded = serialization.load_pem_private_key(self._key_path.read_bytes(), None)
        if not isinstance(loaded, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{self._key_path}: not an ECDSA key")
        self._key = loaded

    def issue_server(self, stem: str, dns_names: list[str],
                     ips: tuple[str, ...] = ()) -> KeyPair:
        """A serving certificate for the given names, as `<stem>.crt` / `<stem>.key`.

        An existing pair is kept while it was signed by this CA, names exactly
        these hosts and stays valid for longer than RENEW_BEFORE.
        """
        if not dns_names and not ips:
            raise ValueError("a serving certificate needs at least one DNS name or IP address")
        pair = KeyPair(self.directory / f"{stem}.crt", self.directory / f"{stem}.key")
        sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
        sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
        if self._still_good(pair, sans):
            return pair
        key = ec.generate_private_key(ec.SECP256R1())
        subject = _name(dns_names[0] if dns_names else ips[0])
        cert = (
            _builder(subject, self._cert.subject, key.public_key(), SERVING_VALIDITY)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(digital_signature=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                self._key.public_key()), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        _write_pair(pair, key, cert)
        return pair

    def _still_good(self, pair: KeyPair, sans: list[x509.GeneralName]) -> bool:
        if not (pair.cert.exists() and pair.key.exists()):
            return False
        cert = x509.load_pem_x509_certificate(pair.cert.read_bytes())
        try:
            cert.verify_directly_issued_by(self._cert)
            named = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except (ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
            return False
        now = datetime.datetime.now(datetime.UTC)
        return set(named) == set(sans) and cert.not_valid_after_utc - now > RENEW_BEFORE


def write_private(path: Path, data: bytes | str) -> None:
    """Write a file readable by its owner only, from the first byte on."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data.encode() if isinstance(data, str) else data)


def _create_authority(name: str, pair: KeyPair) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = _name(name)
    cert = (
        _builder(subject, subject, key.public_key(), CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .sign(key, hashes.SHA256())
    )
    _write_pair(pair, key, cert)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key_usage(*, digital_signature: bool = False, key_cert_sign: bool = False,
               crl_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature, key_cert_sign=key_cert_sign, crl_sign=crl_sign,
        content_commitment=False, key_encipherment=False, data_encipherment=False,
        key_agreement=False, encipher_only=False, decipher_only=False,
    )


def _builder(subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey,
             validity: datetime.timedelta) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + validity)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _write_pair(pair: KeyPair, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> None:
    write_private(pair.key, key.private_bytes(serialization.Encoding.PEM,
                                              serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
    write_private(pair.cert, cert.public_bytes(serialization.Encoding.PEM))
