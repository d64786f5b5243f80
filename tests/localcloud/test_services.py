"""The services outlive a command, bind 127.0.0.1 and stop by themselves; the launchers start
the plugins as the engine does (port on stdout)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Any, cast

import grpc
import pytest
from google.protobuf import empty_pb2
from pulumi.runtime.proto import plugin_pb2, provider_pb2, provider_pb2_grpc

from localcloud import services, wire

from .conftest import REPOSITORY

pytestmark = pytest.mark.localcloud


def stop(process: subprocess.Popen[str]) -> None:
    """SIGTERM, as the engine stops a plugin; fails if it has to kill it. The wait is generous: on
    this shared machine a stalled disk has held a plugin's exit for over 10 s."""
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise


def cli(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "localcloud", "--state-dir", str(state), *args],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        check=False,
    )


def test_start_status_stop_from_the_command_line(tmp_path: Path) -> None:
    assert cli(tmp_path, "status").returncode == 1
    started = cli(tmp_path, "start", "--idle-timeout", "60")
    try:
        assert started.returncode == 0, started.stderr
        running = services.status(tmp_path)
        assert running is not None
        for url in (running["storage"], running["token"], running["gitlab"]):
            assert urllib.parse.urlparse(str(url)).hostname == "127.0.0.1"
        assert cli(tmp_path, "start").stdout == started.stdout  # already running: same services
        assert cli(tmp_path, "status").returncode == 0
    finally:
        assert cli(tmp_path, "stop").stdout.strip() == "stopped"
    assert services.status(tmp_path) is None


def test_services_stop_by_themselves_when_idle(tmp_path: Path) -> None:
    running = services.start(tmp_path, idle_timeout=2)
    pid = int(running["pid"])
    deadline = time.monotonic() + 15
    while services.alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not services.alive(pid)
    assert services.status(tmp_path) is None
    assert not (tmp_path / "cloud.json").exists()


@pytest.mark.parametrize(("name", "version"), [("gcp", "10.2.0"), ("github", "6.15.0"), ("gitlab", "10.4.0")])
def test_launcher_prints_its_port_and_serves_the_plugin(tmp_path: Path, name: str, version: str) -> None:
    launcher = REPOSITORY / "localcloud" / "bin" / f"pulumi-resource-{name}"
    process = subprocess.Popen(
        [str(launcher), "127.0.0.1:1"],
        stdout=subprocess.PIPE,
        env={**os.environ, "MLOPS_CI_LOCAL": str(tmp_path)},
        cwd=tmp_path,  # the engine does not start plugins in the repository
        text=True,
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = cast(Any, provider_pb2_grpc.ResourceProviderStub(channel))
            info = cast(plugin_pb2.PluginInfo, stub.GetPluginInfo(empty_pb2.Empty(), timeout=10))
        assert info.version == version
    finally:
        stop(process)
        services.stop(tmp_path)  # the github launcher starts the local cloud: its api.github.com


def test_a_restarted_cloud_keeps_its_urls(tmp_path: Path) -> None:
    """Key files carry the token endpoint's URL: after an idle stop, the same URLs come back."""
    first = services.start(tmp_path, idle_timeout=60)
    services.stop(tmp_path)
    second = services.start(tmp_path, idle_timeout=60)
    try:
        assert (second["storage"], second["token"], second["gitlab"]) == (first["storage"], first["token"], first["gitlab"])
        assert second["pid"] != first["pid"]
    finally:
        services.stop(tmp_path)


def test_a_plugin_without_a_state_directory_says_so(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MLOPS_CI_LOCAL"}
    github = subprocess.run(
        [str(REPOSITORY / "localcloud" / "bin" / "pulumi-resource-github")], capture_output=True, text=True, env=env
    )
    assert github.returncode != 0
    assert "localcloud github: MLOPS_CI_LOCAL is not set" in github.stderr  # the real provider needs the local cloud's API
    launcher = REPOSITORY / "localcloud" / "bin" / "pulumi-resource-gitlab"
    process = subprocess.Popen([str(launcher)], stdout=subprocess.PIPE, env=env, cwd=tmp_path, text=True)
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = cast(Any, provider_pb2_grpc.ResourceProviderStub(channel))
            request = provider_pb2.InvokeRequest(tok="gitlab:index/getProject:getProject", args=wire.to_struct({"id": "a"}))
            with pytest.raises(grpc.RpcError) as failure:
                stub.Invoke(request, timeout=10)
        assert failure.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "MLOPS_CI_LOCAL is not set" in str(failure.value.details())
    finally:
        stop(process)


def test_a_remembered_port_taken_meanwhile_gets_a_new_one(tmp_path: Path) -> None:
    first = services.start(tmp_path, idle_timeout=60)
    services.stop(tmp_path)
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", int(urllib.parse.urlparse(str(first["storage"])).port or 0)))
        squatter.listen()
        second = services.start(tmp_path, idle_timeout=60)
        try:
            assert second["storage"] != first["storage"]
            assert services.status(tmp_path) is not None
        finally:
            services.stop(tmp_path)
