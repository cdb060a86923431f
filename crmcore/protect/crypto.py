"""Encryption at rest of the customer attributes a deployment designates.

``[crm.protect] encrypted = ["customers.attributes.NAME", ...]`` names personal
attributes (declared with ``pii=True``) whose values are stored encrypted:
AES-256-GCM (``cryptography``, the ``encryption`` extra), a fresh 96-bit nonce
per value, the field's name as associated data (a value copied into another
field does not decrypt). The stored text is ``enc:v1:KEYID:BASE64`` so each
value names the key it was sealed with, and ``crm protect rotate-key``
re-encrypts the values of older keys in batches.

Keys come from ``$CRM_ENCRYPTION_KEYS`` or the file ``[crm.protect] key_file``
(which must not be readable by group or others: mode 0600): one key per line
(or comma-separated in the variable) as ``KEYID:BASE64`` of 32 random bytes,
the first the current key, the others only for reading older values. Make one
with ``crm protect new-key``.

Only attributes can be designated: the core looks customers up and
deduplicates them by phone, e-mail and external id, which a randomised
encryption would defeat, so those are refused; an encrypted attribute cannot
be searched or made unique either.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import stat
from pathlib import Path
from typing import Any

import attrs

from crmcore.errors import ConfigError, CRMError, MissingExtra

PREFIX = "enc:v1:"
KEYS_ENV = "CRM_ENCRYPTION_KEYS"
FIELD_PREFIX = "customers.attributes."
_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


class DecryptionError(CRMError):
    """A stored value cannot be decrypted: its key is not configured, or it was altered."""


def _aead(key: bytes) -> Any:
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError:  # pragma: no cover - the extra is part of the test extra
        raise MissingExtra(
            "encrypted fields need the 'encryption' extra: pip install 'crmcore[encryption]'"
        ) from None
    return AESGCM(key)


def new_key_line(key_id: str) -> str:
    """A new key line ``KEYID:BASE64`` (32 random bytes) for a key file."""
    if not _KEY_ID.match(key_id):
        raise CRMError(f"key id {key_id!r}: 1-32 letters, digits, '_' or '-'")
    return f"{key_id}:{base64.b64encode(secrets.token_bytes(32)).decode()}"


@attrs.frozen
class Keyring:
    """The configured keys: ``current`` seals, every key opens."""

    current: str
    keys: dict[str, bytes]

    def seal(self, field: str, value: Any) -> str:
        """``value`` (any JSON value) encrypted with the current key."""
        import json

        nonce = secrets.token_bytes(12)
        plain = json.dumps(value, ensure_ascii=False).encode()
        sealed = _aead(self.keys[self.current]).encrypt(nonce, plain, field.encode())
        return f"{PREFIX}{self.current}:{base64.b64encode(nonce + sealed).decode()}"

    def open(self, field: str, text: str) -> Any:
        """The value ``text`` holds; :class:`DecryptionError` if it cannot be read."""
        import json

        kid, _, body = text[len(PREFIX) :].partition(":")
        if kid not in self.keys:
            raise DecryptionError(f"{field}: sealed with key {kid!r}, which is not configured")
        try:
            raw = base64.b64decode(body, validate=True)
            plain = _aead(self.keys[kid]).decrypt(raw[:12], raw[12:], field.encode())
        except Exception:  # InvalidTag, bad base64: the value was altered
            raise DecryptionError(f"{field}: the stored value does not decrypt") from None
        return json.loads(plain)


def is_sealed(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def key_id_of(value: str) -> str:
    return value[len(PREFIX) :].partition(":")[0]


def _parse(lines: list[str], where: str) -> Keyring:
    keys: dict[str, bytes] = {}
    current = None
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        kid, sep, body = line.partition(":")
        try:
            key = base64.b64decode(body, validate=True) if sep else b""
        except ValueError:
            key = b""
        if not _KEY_ID.match(kid) or len(key) != 32:
            raise ConfigError(f"{where}: key {n}: expected KEYID:BASE64 of 32 bytes")
        if kid in keys:
            raise ConfigError(f"{where}: key {n}: key id {kid!r} appears twice")
        keys[kid] = key
        current = current or kid
    if current is None:
        raise ConfigError(f"{where}: holds no key")
    return Keyring(current=current, keys=keys)


def keyring(config: Any, env: Any = None) -> Keyring:
    """The keys from ``$CRM_ENCRYPTION_KEYS``, else from ``[crm.protect] key_file``."""
    env = os.environ if env is None else env
    if env.get(KEYS_ENV):
        return _parse(re.split(r"[,\n]", env[KEYS_ENV]), KEYS_ENV)
    name = config.core["protect"].get("key_file")
    if not name:
        raise ConfigError(
            f"{config.where}: crm.protect.encrypted needs a key: set {KEYS_ENV} "
            "or crm.protect.key_file (make one with `crm protect new-key`)"
        )
    path = Path(name)
    if not path.is_absolute() and config.path is not None:
        path = config.path.parent / path
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the key file: {e.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"{path}: the key file is readable by others (mode {stat.S_IMODE(mode):o}); "
            "chmod 600 it"
        )
    return _parse(text.splitlines(), str(path))


def designated(crm: Any) -> tuple[str, ...]:
    """The encrypted attribute names, checked: each must be a declared personal attribute."""
    names = []
    declared = crm.plugins.declared.get("attribute", {})
    for entry in crm.config.core["protect"]["encrypted"]:
        where = f"{crm.config.where}: crm.protect.encrypted: {entry!r}"
        if not entry.startswith(FIELD_PREFIX):
            raise ConfigError(
                f"{where}: only customer attributes can be encrypted "
                f"({FIELD_PREFIX}NAME); the core searches phone, e-mail and external id"
            )
        name = entry[len(FIELD_PREFIX) :]
        if name not in declared:
            raise ConfigError(f"{where}: no enabled plugin declares attribute {name!r}")
        if not declared[name].pii:
            raise ConfigError(f"{where}: attribute {name!r} is not declared personal (pii=True)")
        names.append(name)
    return tuple(names)
