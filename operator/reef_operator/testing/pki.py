"""A throwaway certificate authority for loopback services (control plane, Vers simulator).

Everything is written with mode 0600; nothing here is meant for production.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = datetime.timedelta(days=365)


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
            key = ec.generate_private_key(ec.SECP256R1())
            subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
            cert = (
                _builder(subject, subject, key.public_key())
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(
                    digital_signature=True, key_cert_sign=True, crl_sign=True,
                    content_commitment=False, key_encipherment=False, data_encipherment=False,
                    key_agreement=False, encipher_only=False, decipher_only=False,
                ), critical=True)
                .sign(key, hashes.SHA256())
            )
            write_private(self._key_path, _private_pem(key))
            write_private(self.cert_path, cert.public_bytes(serialization.Encoding.PEM))
        self._cert = x509.load_pem_x509_certificate(self.cert_path.read_bytes())
        loaded = serialization.load_pem_private_key(self._key_path.read_bytes(), None)
        assert isinstance(loaded, ec.EllipticCurvePrivateKey)
        self._key = loaded

    def issue_server(self, stem: str, dns_names: list[str],
                     ips: tuple[str, ...] = ()) -> KeyPair:
        """A serving certificate for the given names, as `<stem>.crt` / `<stem>.key`."""
        pair = KeyPair(self.directory / f"{stem}.crt", self.directory / f"{stem}.key")
        if pair.cert.exists() and pair.key.exists():
            return pair
        key = ec.generate_private_key(ec.SECP256R1())
        sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
        sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_names[0])])
        cert = (
            _builder(subject, self._cert.subject, key.public_key())
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .sign(self._key, hashes.SHA256())
        )
        write_private(pair.key, _private_pem(key))
        write_private(pair.cert, cert.public_bytes(serialization.Encoding.PEM))
        return pair


def rsa_signing_key(directory: Path, stem: str) -> KeyPair:
    """An RSA key pair (`<stem>.key` private, `<stem>.pub` public), e.g. for service accounts."""
    pair = KeyPair(directory / f"{stem}.pub", directory / f"{stem}.key")
    if pair.cert.exists() and pair.key.exists():
        return pair
    directory.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    write_private(pair.key, _private_pem(key))
    write_private(pair.cert, key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return pair


def write_private(path: Path, data: bytes | str) -> None:
    """Write a file readable by its owner only, from the first byte on."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data.encode() if isinstance(data, str) else data)


def _builder(subject: x509.Name, issuer: x509.Name,
             public_key: ec.EllipticCurvePublicKey) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
    )


def _private_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
