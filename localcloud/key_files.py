"""Service-account key files as Google returns them, with a fresh RSA-2048 key: the gcp plugin's
`Key` (its private half kept nowhere) and the local kit's keys (of a deployment, of a maintainer)
alike. The fields are those of the JSON key file `gcloud iam service-accounts keys create` writes
and `google.oauth2.service_account.Credentials.from_service_account_info` reads
(cloud.google.com/iam/docs/keys-create-delete; google-auth `google/auth/_service_account_info.py`
requires `client_email` and `token_uri`, and `private_key_id` names the signing key as `kid`)."""

from __future__ import annotations

import secrets
import urllib.parse

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


def new_key_file(email: str, project: str, client_id: str, token_uri: str) -> tuple[dict[str, str], rsa.RSAPrivateKey]:
    """A new key of the account `email`: its key file, whose `token_uri` is where google-auth
    exchanges it for access tokens, and the private key (for its public half)."""
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    key_file = {
        "type": "service_account",
        "project_id": project,
        "private_key_id": secrets.token_hex(20),
        "private_key": pem.decode(),
        "client_email": email,
        "client_id": client_id,
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": f"https://www.googleapis.com/robot/v1/metadata/x509/{urllib.parse.quote(email)}",
        "universe_domain": "googleapis.com",
    }
    return key_file, private_key
