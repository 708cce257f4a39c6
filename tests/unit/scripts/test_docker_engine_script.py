"""scripts/docker-engine.sh against a stand-in dockerd (a Python server answering /_ping on
a unix socket), so start/stop are checked without a real engine."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "scripts" / "docker-engine.sh"

FAKE_DOCKERD = textwrap.dedent(
    """\
    #!{python}
    import http.server, os, socketserver, sys
    sock = next(a for a in sys.argv if a.startswith("unix://"))[len("unix://"):]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"OK" if self.path == "/_ping" else b'{{"ApiVersion":"1.41"}}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def address_string(self):
            return "unix"

    class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
        pass

    if os.path.exists(sock):
        os.unlink(sock)
    Server(sock, Handler).serve_forever()
    """
)

# `nohup` that takes its time before exec'ing the daemon: the window in which the launched
# process is not yet named dockerd.
SLOW_NOHUP = '#!/bin/sh\nsleep 1\nexec "$@"\n'


@pytest.mark.skipif(os.geteuid() != 0, reason="the script starts dockerd only as root")
@pytest.mark.skipif(shutil.which("curl") is None, reason="the script probes with curl")
def test_start_waits_for_the_daemon_it_launched_and_stop_stops_it(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (
        ("dockerd", FAKE_DOCKERD.format(python=sys.executable)),
        ("nohup", SLOW_NOHUP),
    ):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "SEAMLESS_DOCKER_SOCKET": str(tmp_path / "docker.sock"),
        "SEAMLESS_DOCKERD_STATE": str(tmp_path / "dockerd.pid"),
        "SEAMLESS_DOCKERD_LOG": str(tmp_path / "dockerd.log"),
        "SEAMLESS_DOCKER_DATA_ROOT": str(tmp_path / "data"),
        "SEAMLESS_DOCKERD_READY_S": "20",
    }

    def script(action: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(SCRIPT), action], env=env, capture_output=True, text=True, timeout=60
        )

    started = script("start")
    state = tmp_path / "dockerd.pid"
    pid = int(state.read_text()) if state.exists() else 0
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        assert "ready: API 1.41" in started.stdout
        assert "already answers" in script("start").stdout  # a second start reuses it
        stopped = script("stop")
        assert stopped.returncode == 0 and f"stopped dockerd {pid}" in stopped.stdout
        assert not (tmp_path / "dockerd.pid").exists()
    finally:
        # the stand-in, found by its own socket path (also if the script lost track of it)
        for proc in Path("/proc").glob("[0-9]*"):
            try:
                cmdline = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if str(tmp_path / "docker.sock").encode() in cmdline:
                os.kill(int(proc.name), 9)
