"""Masking of secrets before anything is shown: logs, errors, reports.

DSNs keep their shape (so users can still tell which server is meant) with the password
replaced; values under keys that name a secret are replaced whole.
"""

import os
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from .errors import ConfigError

MASK = "********"

_SECRET_KEY = re.compile(
    # webhook and heartbeat URLs carry their token in the path; `webhook_format` is no secret.
    # notify.urls: Apprise URLs carry passwords and tokens.
    r"(pass(word|wd|phrase)?|secret|token|api[_-]?key|private[_-]?key|credential"
    r"|webhook(?:[_-]?url)?\b|heartbeat[_-]?url|\burls\b)",
    re.IGNORECASE,
)
# postgresql://user:PASSWORD@host, https://user:PASSWORD@host and the like.
_URL_PASSWORD = re.compile(
    r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]*:)(?P<secret>[^@\s]+)(?=@)", re.I
)
# Key/value DSNs: password=secret or password='se cret'.
_KV_PASSWORD = re.compile(r"(?P<head>\bpassword\s*=\s*)(?P<secret>'(?:[^'\\]|\\.)*'|\S+)", re.I)


_known_secrets: set[str] = set()


def register_secret(value: str) -> None:
    """Remember a secret value (from vars or a DSN) so free text quoting it gets masked too.

    Free text such as pg_dump's stderr may echo a password verbatim; pattern rules alone
    would miss it.
    """
    if value and len(value) >= 4:
        _known_secrets.add(value)


def env_secret(variable: str | None, key: str) -> str | None:
    """The secret in environment VARIABLE of this machine (None when no variable is named),
    registered so that any text quoting it is masked. Raise ConfigError naming KEY and the
    variable when it is not set."""
    if variable is None:
        return None
    secret = os.environ.get(variable)
    if secret is None:
        raise ConfigError(f"{key}: environment variable {variable} is not set on this machine")
    register_secret(secret)
    return secret


def is_secret_key(key: str) -> bool:
    """Tell whether a variable or field name holds a secret by its name alone. A key ending in
    `_env` (`password_env`) holds the name of the environment variable with the secret: a
    name people must see to set it, not a secret."""
    return bool(_SECRET_KEY.search(key)) and not key.lower().endswith("_env")


def mask_text(text: str) -> str:
    """Return TEXT with DSN passwords and every registered secret replaced by a mask."""
    text = _URL_PASSWORD.sub(lambda m: m.group("head") + MASK, text)
    text = _KV_PASSWORD.sub(lambda m: m.group("head") + MASK, text)
    for secret in sorted(_known_secrets, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def mask_value(value: Any, key: str = "") -> Any:
    """Mask secrets inside any JSON-like value, walking mappings and lists."""
    if key and is_secret_key(key) and isinstance(value, str | bytes) and value:
        return MASK
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, Mapping):
        return {k: mask_value(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):  # a list under a secret-named key is a list of secrets
        return [mask_value(item, key) for item in value]
    return value


def register_secrets_in(value: Any, key: str = "") -> None:
    """Register every secret found in a vars tree: secret-named values and DSN passwords."""
    if isinstance(value, Mapping):
        for sub_key, sub_value in value.items():
            register_secrets_in(sub_value, str(sub_key))
    elif isinstance(value, list | tuple):
        for item in value:
            register_secrets_in(item, key)
    elif isinstance(value, str):
        if key and is_secret_key(key):
            register_secret(value)
        for pattern in (_URL_PASSWORD, _KV_PASSWORD):
            for match in pattern.finditer(value):
                secret = match.group("secret").strip("'")
                register_secret(secret)
                register_secret(unquote(secret))
