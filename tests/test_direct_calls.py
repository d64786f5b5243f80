"""The program's own requests beside the providers: the GitLab plan look-up asks with the token,
and the token goes to the instance named by `gitlab:baseUrl` only."""

from __future__ import annotations

import json
import threading
from collections.abc import Generator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mlops_ci.direct_calls import DirectCalls


class Recorder(ThreadingHTTPServer):
    """A local HTTP server that records each request's PRIVATE-TOKEN header and answers `answer`
    (status, headers, JSON body) to every GET."""

    def __init__(self, answer: tuple[int, dict[str, str], object]) -> None:
        self.answer = answer
        self.tokens: list[str | None] = []
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        server = self.server
        assert isinstance(server, Recorder)
        server.tokens.append(self.headers.get("PRIVATE-TOKEN"))
        status, headers, body = server.answer
        data = json.dumps(body).encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def serve() -> Generator[list[Recorder]]:
    """Servers started by the test (append them), stopped after it."""
    started: list[Recorder] = []
    yield started
    for server in started:
        server.shutdown()
        server.server_close()


def started(servers: list[Recorder], answer: tuple[int, dict[str, str], object]) -> Recorder:
    server = Recorder(answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    servers.append(server)
    return server


def test_the_plan_is_asked_with_the_token(serve: list[Recorder]) -> None:
    gitlab = started(serve, (200, {}, {"id": 7, "plan": "free"}))
    assert DirectCalls().gitlab_plan(f"{gitlab.url}/api/v4/", "glpat-secret", 7) == "free"
    assert gitlab.tokens == ["glpat-secret"]


def test_the_token_never_follows_a_redirect_to_another_host(serve: list[Recorder]) -> None:
    """urllib copies a request's headers into the redirected one, whatever the host: the token
    would reach whoever the answer points at."""
    elsewhere = started(serve, (200, {}, {"plan": "premium"}))
    gitlab = started(serve, (302, {"Location": f"{elsewhere.url}/namespaces/7"}, {}))
    DirectCalls().gitlab_plan(f"{gitlab.url}/api/v4/", "glpat-secret", 7)
    assert gitlab.tokens == ["glpat-secret"]
    assert elsewhere.tokens == [None]
