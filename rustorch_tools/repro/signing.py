"""Ed25519 keys and detached signatures (through `cryptography`).

Keys are PEM files: `NAME.key` (PKCS#8 private key, unencrypted, mode 0600) and `NAME.pub`
(SubjectPublicKeyInfo). A key id is the first 16 hex digits of SHA-256 over the 32 raw
public-key bytes.

A bundle signature is the JSON file `BUNDLE.sig` next to the bundle:
`{"format": "rustorch-signature", "version": 1, "algorithm": "ed25519", "key_id": ...,
"sha256": <hex digest of the bundle bytes>, "size": <bytes>, "signature": <base64>}` where the
signature is over `b"rustorch-bundle-signature/v1\\0" + sha256 digest (32 raw bytes) +
size (8 bytes, big-endian)`. docs/reproducibility.md describes it for other verifiers.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..errors import RustorchToolsError
from ..store import atomic

SIG_FORMAT = "rustorch-signature"
SIG_VERSION = 1
BUNDLE_DOMAIN = b"rustorch-bundle-signature/v1\0"
MAX_KEY_BYTES = 64 << 10


class KeyFileError(RustorchToolsError):
    """A key file that is missing, unreadable or not an Ed25519 key (a usage error)."""


class SignatureError(RustorchToolsError):
    """A signature that is missing, malformed, made by another key or does not match."""


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def _read_key_file(path: Path) -> bytes:
    try:
        if Path(path).stat().st_size > MAX_KEY_BYTES:
            raise KeyFileError(f"{path} is too large to be a key")
        return Path(path).read_bytes()
    except OSError as exc:
        raise KeyFileError(f"cannot read key {path}: {exc.strerror}") from exc


def load_private(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(_read_key_file(path), password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"{path} is not an unencrypted PEM private key ({exc})") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path} is not an Ed25519 private key")
    return key


def load_public(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(_read_key_file(path))
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"{path} is not a PEM public key ({exc})") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"{path} is not an Ed25519 public key")
    return key


def keygen(prefix: Path) -> tuple[Path, Path]:
    """Write PREFIX.key (0600) and PREFIX.pub; refuses to replace existing files."""
    priv_path, pub_path = Path(f"{prefix}.key"), Path(f"{prefix}.pub")
    for p in (priv_path, pub_path):
        if p.exists() or p.is_symlink():
            raise KeyFileError(f"{p} exists; not overwriting a key")
    key = Ed25519PrivateKey.generate()
    priv = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    pub = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    fd = os.open(priv_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(priv)
        fh.flush()
        os.fsync(fh.fileno())
    atomic.write_output(pub_path, pub)
    return priv_path, pub_path


def _bundle_message(digest: bytes, size: int) -> bytes:
    return BUNDLE_DOMAIN + digest + size.to_bytes(8, "big")


def sign_bytes(data: bytes, key: Ed25519PrivateKey) -> dict[str, Any]:
    digest = hashlib.sha256(data).digest()
    sig = key.sign(_bundle_message(digest, len(data)))
    return {"format": SIG_FORMAT, "version": SIG_VERSION, "algorithm": "ed25519",
            "key_id": key_id(key.public_key()), "sha256": digest.hex(), "size": len(data),
            "signature": base64.b64encode(sig).decode("ascii")}


def signature_path(bundle_path: Path) -> Path:
    return Path(f"{bundle_path}.sig")


def verify_bytes(data: bytes, sig_doc: Any, public: Ed25519PublicKey) -> None:
    """Raise SignatureError unless `sig_doc` is a valid signature of `data` by `public`."""
    if not isinstance(sig_doc, dict) or sig_doc.get("format") != SIG_FORMAT:
        raise SignatureError(f"not a {SIG_FORMAT} document")
    if sig_doc.get("version") != SIG_VERSION or sig_doc.get("algorithm") != "ed25519":
        raise SignatureError(f"unsupported signature version/algorithm "
                             f"({sig_doc.get('version')!r}, {sig_doc.get('algorithm')!r})")
    want = key_id(public)
    if sig_doc.get("key_id") != want:
        raise SignatureError(f"signed by key {sig_doc.get('key_id')!r}, not by the given "
                             f"public key {want}")
    digest = hashlib.sha256(data).digest()
    if sig_doc.get("sha256") != digest.hex() or sig_doc.get("size") != len(data):
        raise SignatureError("the bundle's bytes differ from the signed bytes (digest or size "
                             "mismatch): modified after signing")
    try:
        sig = base64.b64decode(str(sig_doc.get("signature")), validate=True)
        public.verify(sig, _bundle_message(digest, len(data)))
    except (ValueError, InvalidSignature):
        raise SignatureError("the signature does not verify (forged or corrupted)") from None


def read_signature(path: Path) -> Any:
    try:
        if path.stat().st_size > MAX_KEY_BYTES:
            raise SignatureError(f"{path} is too large to be a signature")
        return json.loads(path.read_bytes())
    except FileNotFoundError:
        raise SignatureError(f"no signature: {path} is missing (sign with `bundle sign`)") from None
    except OSError as exc:
        raise SignatureError(f"cannot read {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise SignatureError(f"{path} is not valid JSON ({exc})") from exc
