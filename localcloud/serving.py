"""What the local cloud's HTTP services share: a server on 127.0.0.1 (the remembered port when it is
free) run in a thread, and the test certificate the HTTPS ones present (clients trust it through
`SSL_CERT_FILE`)."""

from __future__ import annotations

import datetime
import ipaddress
import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


class Served:
    """A `ThreadingHTTPServer` of `handler` on 127.0.0.1:`port` (any free port when that one is
    taken), served by a daemon thread between `start` and `stop`."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], port: int = 0) -> None:
        try:
            self.server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        except OSError:  # the remembered port is taken: a new one
            self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Service:
    """A service whose HTTP server is `self.served`: its port, URL, start and stop."""

    served: Served

    @property
    def port(self) -> int:
        return self.served.port

    @property
    def url(self) -> str:
        return self.served.url

    def start(self) -> None:
        self.served.start()

    def stop(self) -> None:
        self.served.stop()


def send_json(handler: BaseHTTPRequestHandler, status: int, payload: Any) -> None:
    """`payload` as the JSON answer to the request `handler` serves."""
    data = json.dumps(payload).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def open_tunnel(handler: BaseHTTPRequestHandler, hosts: tuple[str, ...], context: ssl.SSLContext) -> ssl.SSLSocket | None:
    """A `CONNECT <host>:443` for one of `hosts` accepted, and the tunnel's TLS ended here with
    `context`; None (the request answered 403, or the handshake failed) otherwise."""
    host, _, port = handler.path.partition(":")
    if host not in hosts or port != "443":
        handler.send_error(403, f"localcloud reaches {', '.join(hosts)} only")
        return None
    handler.send_response(200, "Connection Established")
    handler.end_headers()
    handler.wfile.flush()
    try:
        return context.wrap_socket(handler.connection, server_side=True)
    except (ssl.SSLError, OSError):
        handler.close_connection = True
        return None


def certificate(directory: Path, common_name: str, hosts: list[str]) -> tuple[Path, Path]:
    """A self-signed certificate (its own CA) for `hosts` (IP addresses or DNS names), made once in
    `directory`: (certificate, private key) files. A client that trusts the certificate file
    (`SSL_CERT_FILE`: OpenSSL and Go alike) accepts it for those hosts."""
    certificate_file, key_file = directory / "certificate.pem", directory / "key.pem"
    if certificate_file.exists() and key_file.exists():
        return certificate_file, key_file
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    now = datetime.datetime.now(datetime.UTC)
    built = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    key_file.write_bytes(pem)
    key_file.chmod(0o600)
    certificate_file.write_bytes(built.public_bytes(serialization.Encoding.PEM))
    return certificate_file, key_file
