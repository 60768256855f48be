"""The service-account signing key pair of the local control plane.

The apiserver signs service-account tokens with the private key and checks them
with the public one; the controller manager signs with the same private key.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from reef_operator.certificates import KeyPair, write_private


def rsa_signing_key(directory: Path, stem: str) -> KeyPair:
    """An RSA key pair (`<stem>.key` private, `<stem>.pub` public), made on first use."""
    pair = KeyPair(directory / f"{stem}.pub", directory / f"{stem}.key")
    if pair.cert.exists() and pair.key.exists():
        return pair
    directory.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    write_private(pair.key, key.private_bytes(serialization.Encoding.PEM,
                                              serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
    write_private(pair.cert, key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return pair
