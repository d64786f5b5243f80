"""Pulumi's wire values as plain Python: secrets, unknowns and the journal's redaction.

Property maps arrive as `google.protobuf.Struct`s. A secret is `{SIG: SECRET_SIG, "value": v}`
(the plugin asks for secrets in `Configure`, so it knows which inputs are secret); a value the
engine does not know yet (preview) is the string `UNKNOWN`. These constants are part of the
stable engine protocol.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any, cast

from google.protobuf import json_format, struct_pb2

SIG = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
REDACTED = "[secret]"

Props = dict[str, Any]


def from_struct(struct: struct_pb2.Struct | None) -> Props:
    if struct is None:
        return {}
    return dict(json_format.MessageToDict(struct))


def to_struct(props: Props) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(props)
    return struct


def secret(value: Any) -> dict[str, Any]:
    return {SIG: SECRET_SIG, "value": value}


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and cast(dict[str, Any], value).get(SIG) == SECRET_SIG


def reveal(value: Any) -> Any:
    """The value with every secret marker removed."""
    if is_secret(value):
        return reveal(cast(dict[str, Any], value).get("value"))
    if isinstance(value, dict):
        return {k: reveal(v) for k, v in cast(dict[str, Any], value).items()}
    if isinstance(value, list):
        return [reveal(v) for v in cast(list[Any], value)]
    return value


def is_unknown(value: Any) -> bool:
    """True if the value, or anything inside it, is not known yet (preview)."""
    if value == UNKNOWN:
        return True
    if isinstance(value, dict):
        return any(is_unknown(v) for v in cast(dict[str, Any], value).values())
    if isinstance(value, list):
        return any(is_unknown(v) for v in cast(list[Any], value))
    return False


def secret_keys(props: Props) -> set[str]:
    return {key for key, value in props.items() if is_secret(value)}


def redact(value: Any, always_secret: frozenset[str] = frozenset(), key: str = "") -> Any:
    """A copy safe for a log: secret values, properties that are secret by schema, and any text
    that looks like key material become "[secret]"."""
    if is_secret(value) or (key and key in always_secret):
        return REDACTED
    if isinstance(value, dict):
        return {k: redact(v, always_secret, k) for k, v in cast(dict[str, Any], value).items()}
    if isinstance(value, list):
        return [redact(v, always_secret) for v in cast(list[Any], value)]
    if isinstance(value, str) and looks_like_key_material(value):
        return REDACTED
    return value


_ACCESS_TOKEN = re.compile(r"glpat-[A-Za-z0-9_.-]{20,}")


def looks_like_key_material(text: str) -> bool:
    """PEM private keys, key files, key files in base64 (how `Key.privateKey` travels), and GitLab
    access tokens (`glpat-` and at least 20 characters)."""
    if "PRIVATE KEY" in text or '"private_key"' in text or _ACCESS_TOKEN.search(text):
        return True
    if len(text) < 256:
        return False
    try:
        decoded = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return False
    return b"PRIVATE KEY" in decoded
