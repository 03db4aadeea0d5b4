"""Ed25519 signatures over the manifest (which holds every file's sha256), with ``cryptography``.

Keys are PEM files: a PKCS#8 private key (``deploy keygen`` or ``openssl genpkey -algorithm ed25519``) and its
SubjectPublicKeyInfo public key. ``manifest.sig`` is a small JSON document naming the key (first 16 hex digits
of the sha256 of its raw public bytes) so a refusal can say which key signed a bundle.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

from pcb_inspect.edge_deploy.errors import BundleRefused
from pcb_inspect.inspect.errors import ConfigError

ALGORITHM = "ed25519"


def _crypto():  # noqa: ANN202
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError as exc:  # pragma: no cover - a base dependency
        raise ConfigError(f"bundle signatures need the 'cryptography' package ({exc})") from None
    return serialization, ed25519, InvalidSignature


def key_id(public_key) -> str:  # noqa: ANN001
    serialization, _, _ = _crypto()
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def generate_keypair(stem: Path) -> tuple[Path, Path]:
    """Write ``STEM.key`` (private, mode 0600, never copied to a box) and ``STEM.pub`` (for every box)."""
    serialization, ed25519, _ = _crypto()
    private_path, public_path = stem.with_suffix(".key"), stem.with_suffix(".pub")
    for path in (private_path, public_path):
        if path.exists():
            raise ConfigError(f"{path}: already exists; not overwriting a key")
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    public_path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private_path, public_path


def load_private_key(path: Path):  # noqa: ANN201
    serialization, ed25519, _ = _crypto()
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise ConfigError(f"--sign {path}: cannot read ({exc.strerror})") from None
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"--sign {path}: not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise ConfigError(f"--sign {path}: an ed25519 key is needed, this is {type(key).__name__}")
    return key


def load_public_key(path: Path):  # noqa: ANN201
    serialization, ed25519, _ = _crypto()
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read public key ({exc.strerror})") from None
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{path}: not a PEM public key ({exc})") from None
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise ConfigError(f"{path}: an ed25519 public key is needed, this is {type(key).__name__}")
    return key


def sign(manifest_bytes: bytes, private_key) -> bytes:  # noqa: ANN001
    doc = {
        "algorithm": ALGORITHM,
        "key_id": key_id(private_key.public_key()),
        "signature": base64.b64encode(private_key.sign(manifest_bytes)).decode(),
    }
    return (json.dumps(doc, sort_keys=True) + "\n").encode()


def verify(manifest_bytes: bytes, signature_doc: bytes | None, trusted: list, where: str) -> str | None:
    """Check ``manifest.sig`` against the trusted public keys; returns the signing key's id.

    With no trusted keys the box accepts any bundle (and says it did not check); with trusted keys an unsigned
    bundle, a key it does not trust, or a signature that does not match is refused.
    """
    if not trusted:
        return None
    if signature_doc is None:
        raise BundleRefused(f"{where}: unsigned, and this box only accepts bundles signed by a trusted key")
    _, _, invalid_signature = _crypto()
    try:
        doc = json.loads(signature_doc.decode())
        signature = base64.b64decode(doc["signature"], validate=True)
        if doc.get("algorithm") != ALGORITHM:
            raise ValueError(f"algorithm {doc.get('algorithm')!r}")
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise BundleRefused(f"{where}: manifest.sig is malformed ({exc})") from None
    by_id = {key_id(k): k for k in trusted}
    key = by_id.get(doc.get("key_id"))
    if key is None:
        raise BundleRefused(
            f"{where}: signed by key {doc.get('key_id')}, "
            f"not one this box trusts ({', '.join(sorted(by_id))})"
        )
    try:
        key.verify(signature, manifest_bytes)
    except invalid_signature:
        raise BundleRefused(
            f"{where}: bad signature: manifest.json does not match key {doc['key_id']}"
        ) from None
    return str(doc["key_id"])
