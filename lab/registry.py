"""Apicurio Registry, a real Confluent-compatible schema registry, as a local process for the
integration and chaos tests and the lab.

The server is Apicurio Registry's own ``apicurio-registry-app`` from Maven Central, made
runnable by the Quarkus build in lab/apicurio/pom.xml (scripts/registry.sh, run by
`make bootstrap`, caches it and links it at ``.tools/apicurio``). It runs on a free loopback
port with authentication off and its schemas in an in-memory H2 database, so a restart
empties it, like a registry that lost its storage. The SDK talks to it at
``http://127.0.0.1:PORT/apis/ccompat/v6``, Apicurio's Confluent API (the version there is
2.0.2.Final, the newest whose modules this project's Maven mirror serves in full: see the
pom). Ready when ``GET /apis/ccompat/v6/subjects`` answers 200; that first request also
creates the database, so the registry is usable the moment it counts as up.

What differs from Confluent's own server, and the tests hold the SDK to: Apicurio answers
``application/json`` on errors (the ``{"error_code", "message"}`` body is the same),
leaves ``schemaType`` out of its answers, and accepts any content when no validity rule is
configured.
"""

from __future__ import annotations

import signal

from lab.servers import LOOPBACK, LocalServer, free_port, http_ok, tool_path

CCOMPAT_PATH = "/apis/ccompat/v6"


class SchemaRegistryServer(LocalServer):
    """Apicurio Registry (Quarkus on the JVM) with in-memory storage."""

    name = "schema-registry"
    # About 5 s on an idle machine (JVM start, Quarkus boot, the H2 schema on the first
    # request); the margin is for two cores shared with the rest of the suite.
    startup_timeout = 90.0
    # The JVM exits with 128 + SIGTERM after Quarkus's shutdown hook has run.
    stop_exit_code = 128 + signal.SIGTERM

    def pick_ports(self) -> None:
        self.port = free_port()

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def url(self) -> str:
        """The Confluent-compatible API, as a user would configure it in the SDK."""
        return f"{self.base_url}{CCOMPAT_PATH}"

    def command(self) -> list[str]:
        return [
            "java",
            # A small registry for tests on two shared cores: a bounded heap, the serial
            # collector, and the C1 compiler only (a faster start; its peak speed is not
            # needed here).
            "-Xms64m", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
            f"-Djava.io.tmpdir={self.workdir}",
            f"-Dquarkus.http.host={LOOPBACK}",
            f"-Dquarkus.http.port={self.port}",
            "-Dregistry.auth.enabled=false",
            "-Dquarkus.datasource.jdbc.initial-size=1",
            "-Dquarkus.datasource.jdbc.min-size=1",
            "-Dquarkus.datasource.jdbc.max-size=8",
            "-jar", str(tool_path("apicurio", "apicurio-registry-runner.jar")),
        ]  # fmt: skip

    def ready(self) -> bool:
        return http_ok(f"{self.url}/subjects")
