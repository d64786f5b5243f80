"""api.github.com on this machine: the GitHub API stand-in (localcloud/github_api.py) behind an HTTPS
proxy. Clients keep GitHub's real URL (`https://api.github.com/`, the provider's default `baseUrl`,
so it speaks to GitHub as on github.com, not as to an Enterprise Server) and reach it with
`HTTPS_PROXY` set to this server and `SSL_CERT_FILE` set to the test certificate: a `CONNECT
api.github.com:443` is answered here, the tunnel's TLS ends here with a certificate for
api.github.com, and the requests inside are the stand-in's. Go's net/http (the provider, through
`http.DefaultTransport`'s `ProxyFromEnvironment`) and Python's urllib both honour the two variables.
Any other host is refused (403): the local cloud reaches nothing else.
"""

from __future__ import annotations

import json
import os
import ssl
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from localcloud import serving
from localcloud.github_api import Api, Checker
from localcloud.state import LocalCloud

HOSTS = ("api.github.com",)


class GithubServer(serving.Service):
    def __init__(self, cloud: LocalCloud, port: int = 0, checker: Checker | None = None) -> None:
        self.api = Api(cloud, checker)
        self.certificate, key_file = serving.certificate(
            cloud.root / "github-tls", "localcloud api.github.com", [*HOSTS, "127.0.0.1"]
        )
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(self.certificate, key_file)
        self.served = serving.Served(self._handler(), port)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api, context = self.api, self.context

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, data, extra = api.handle(self.command, self.path, headers, body)
                self.send_response(status)
                for key, value in {"Content-Type": "application/json; charset=utf-8", **extra}.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve  # noqa: N815 — http.server's method names

            def do_CONNECT(self) -> None:
                tunnel = serving.open_tunnel(self, HOSTS, context)
                if tunnel is not None:
                    Handler(tunnel, self.client_address, self.server)  # serves the requests inside the tunnel
                self.close_connection = True

            def log_message(self, format: str, *args: Any) -> None:
                pass  # github-requests.jsonl is the log (without tokens or bodies)

        return Handler


def client_environment(urls: dict[str, Any]) -> dict[str, str]:
    """The variables that send a process's requests for api.github.com to the local cloud's (the
    provider plugin's, the program's pre-flight, the tests')."""
    return {
        "HTTPS_PROXY": str(urls["githubProxy"]),
        "https_proxy": str(urls["githubProxy"]),
        "SSL_CERT_FILE": str(urls["certificates"]),
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }


def opener(urls: dict[str, Any]) -> urllib.request.OpenerDirector:
    """A urllib opener that reaches https://api.github.com/ at the local cloud's."""
    context = ssl.create_default_context(cafile=str(urls["githubCertificate"]))
    proxy = urllib.request.ProxyHandler({"https": str(urls["githubProxy"])})
    return urllib.request.build_opener(proxy, urllib.request.HTTPSHandler(context=context))


def provider_binary() -> Path:
    """The real `pulumi-resource-github` built by tools/github-provider/build.sh (`$MLOPS_CI_GITHUB_PROVIDER`
    to use another build)."""
    if os.environ.get("MLOPS_CI_GITHUB_PROVIDER"):
        return Path(os.environ["MLOPS_CI_GITHUB_PROVIDER"])
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mlops-ci"
    return cache / "pulumi-resource-github-6.15.0" / "bin" / "pulumi-resource-github"


def call(urls: dict[str, Any], method: str, path: str, token: str | None, body: Any = None) -> tuple[int, Any, dict[str, str]]:
    """One request to https://api.github.com`path` as a client here makes it (through the proxy,
    trusting the test certificate): (status, decoded JSON or None, headers)."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json", "Accept": "application/vnd.github+json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(f"https://api.github.com{path}", data=data, method=method, headers=headers)
    try:
        with opener(urls).open(request, timeout=30) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None, dict(response.headers.items())
    except urllib.error.HTTPError as error:
        raw = error.read()
        return error.code, json.loads(raw) if raw else None, dict(error.headers.items())


def main() -> None:
    """The `github` resource plugin the engine runs: the real provider, its requests for
    api.github.com sent to the local cloud's (started if need be)."""
    import sys

    from localcloud import services
    from localcloud.state import state_dir

    binary = provider_binary()
    if not binary.exists():
        sys.exit(f"localcloud github: no provider at {binary}: build it with tools/github-provider/build.sh")
    try:
        urls = services.start(state_dir())
    except RuntimeError as error:  # no state directory, or the services did not start: the engine shows it
        sys.exit(f"localcloud github: {error}")
    os.execve(binary, [str(binary), *sys.argv[1:]], {**os.environ, **client_environment(urls)})


if __name__ == "__main__":
    main()
