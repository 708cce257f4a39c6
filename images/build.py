"""Build the bundle's images on this machine: no registry is reachable, so nothing is pulled.

Each image starts from a Debian bookworm root made by `mmdebstrap --variant=minbase` with
the Debian packages it needs, imported with `docker import`, then `docker build FROM` it.
The software comes from the registries we can reach: Debian (Redis, Postgres, OpenJDK,
Python, Prometheus), Maven Central (the QuestDB jar; Apache Kafka's and Neo4j's libraries,
resolved by the POMs in images/kafka and images/neo4j) and the Go module proxy (MinIO,
toxiproxy, built by `make bootstrap`). The coordinator image is `sdk/Dockerfile`, built with
no network from wheels downloaded on the host.

Caching is by content: a root's tag is the hash of its recipe; an image carries the hash of
its Dockerfile, build context and base image as the label `seamless.content-hash`, and is
rebuilt only when that hash changes. Image refs come from the stack file (`images`,
`coordinatorImage`), so the program and the built images cannot disagree.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT_DIR = Path(__file__).resolve().parents[1]
TOOLS = ROOT_DIR / ".tools"
HASH_LABEL = "seamless.content-hash"
SUITE = "bookworm"
MIRRORS = (
    "deb http://deb.debian.org/debian bookworm main",
    "deb http://deb.debian.org/debian bookworm-updates main",
    "deb http://deb.debian.org/debian-security bookworm-security main",
)
# Bump to rebuild every root (e.g. to pick up Debian security updates).
ROOT_RECIPE = 2
# Debian packages per root; each image names the root it starts from.
ROOTS: dict[str, tuple[str, ...]] = {
    "python": ("python3", "python3-venv", "ca-certificates"),
    "redis": ("redis-server",),
    "jre": ("openjdk-17-jre-headless", "curl"),
    "tools": ("curl", "ca-certificates"),
    "prometheus": ("prometheus", "wget"),
    "postgres": ("postgresql-15",),
}
TOXIPROXY_REF_REPO = "seamless-local/toxiproxy"
PYTHON_BASE_REPO = "seamless-local/python"


class BuildError(RuntimeError):
    """A build step failed; the message names the image and the step."""


def docker_cli() -> str:
    # Debian's CLI matches the engine (20.10, API 1.41) and builds without buildx.
    return "/usr/bin/docker" if Path("/usr/bin/docker").exists() else "docker"


def _run(cmd: list[str], what: str, **kw: object) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOCKER_BUILDKIT": "0"}
    proc = subprocess.run(cmd, text=True, capture_output=True, env=env, check=False, **kw)  # type: ignore[call-overload]
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-20:])
        raise BuildError(f"{what} failed (exit {proc.returncode}):\n{tail}")
    return proc  # type: ignore[no-any-return]


def image_label(ref: str) -> str | None:
    """The content hash a local image carries, or None if there is no such image."""
    proc = subprocess.run(
        [docker_cli(), "image", "inspect", "--format", "{{json .Config.Labels}}", ref],
        text=True,
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0:
        return None
    labels = json.loads(proc.stdout or "null") or {}
    value = labels.get(HASH_LABEL)
    return str(value) if value else ""


def image_id(ref: str) -> str | None:
    proc = subprocess.run(
        [docker_cli(), "image", "inspect", "--format", "{{.Id}}", ref],
        text=True,
        capture_output=True,
        check=False,
    )
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def image_size_mb(ref: str) -> float:
    out = _run([docker_cli(), "image", "inspect", "--format", "{{.Size}}", ref], f"inspect {ref}")
    return round(int(out.stdout.strip()) / 1e6, 1)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _tree_hash(context: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in context.rglob("*") if p.is_file()):
        rel = path.relative_to(context).as_posix()
        h.update(rel.encode() + b"\0" + oct(path.stat().st_mode & 0o777).encode() + b"\0")
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


@dataclass
class Built:
    ref: str
    built: bool  # False: the cached image matched its content hash
    seconds: float
    size_mb: float


@dataclass
class Builder:
    log: Callable[[str], None] = field(default=lambda msg: print(msg, file=sys.stderr))
    results: dict[str, Built] = field(default_factory=dict)

    # --- roots ----------------------------------------------------------------------------

    def root(self, family: str) -> str:
        """The imported Debian root for `family`, made by mmdebstrap unless cached."""
        packages = ROOTS[family]
        recipe = json.dumps([ROOT_RECIPE, SUITE, MIRRORS, sorted(packages)]).encode()
        ref = f"seamless-local/root-{family}:{_sha(recipe)[:12]}"
        key = f"root-{family}"
        if key in self.results:  # asked again (two images share a root): keep the first row
            return self.results[key].ref
        started = time.monotonic()
        if image_label(ref) is not None:
            self.results[key] = Built(ref, False, time.monotonic() - started, image_size_mb(ref))
            return ref
        if shutil.which("mmdebstrap") is None:
            raise BuildError(
                "mmdebstrap not found: run scripts/bootstrap.sh (apt-get install mmdebstrap)"
            )
        self.log(f"images: mmdebstrap {family} root ({', '.join(packages)})")
        with tempfile.TemporaryDirectory(prefix="seamless-root-") as tmp:
            tar = Path(tmp) / "root.tar"
            _run(
                [
                    "mmdebstrap",
                    "--variant=minbase",
                    "--mode=root",
                    "--format=tar",
                    f"--include={','.join(packages)}",
                    '--aptopt=Acquire::Languages "none"',
                    '--aptopt=APT::Install-Recommends "false"',
                    # Lean roots: no docs, man pages or translations.
                    "--dpkgopt=path-exclude=/usr/share/doc/*",
                    "--dpkgopt=path-exclude=/usr/share/man/*",
                    "--dpkgopt=path-exclude=/usr/share/locale/*",
                    "--dpkgopt=path-exclude=/usr/share/info/*",
                    # update-alternatives (OpenJDK) links man pages: keep the directory.
                    '--essential-hook=mkdir -p "$1"/usr/share/man/man1',
                    '--customize-hook=rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/*',
                    SUITE,
                    str(tar),
                    *MIRRORS,
                ],
                f"mmdebstrap {family} root",
            )
            _run(
                [
                    docker_cli(),
                    "import",
                    "--change",
                    f"LABEL {HASH_LABEL}={_sha(recipe)}",
                    "--change",
                    'CMD ["/bin/bash"]',
                    str(tar),
                    ref,
                ],
                f"docker import {family} root",
            )
        self.results[key] = Built(ref, True, time.monotonic() - started, image_size_mb(ref))
        return ref

    # --- images ---------------------------------------------------------------------------

    def image(
        self,
        key: str,
        ref: str,
        dockerfile: Path,
        fill_context: Callable[[Path], None],
        build_args: Mapping[str, str],
    ) -> str:
        """`docker build` one image from a context `fill_context` writes, unless the local
        image already carries the same content hash."""
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix=f"seamless-{key}-") as tmp:
            context = Path(tmp)
            fill_context(context)
            shutil.copy2(dockerfile, context / "Dockerfile")
            base_ids = {
                name: _run(
                    [docker_cli(), "image", "inspect", "--format", "{{.Id}}", value],
                    f"inspect {value}",
                ).stdout.strip()
                for name, value in build_args.items()
                if value.startswith("seamless-local/")
            }
            digest = _sha(
                json.dumps([_tree_hash(context), sorted(build_args.items()), base_ids]).encode()
            )
            if image_label(ref) == digest:
                self.results[key] = Built(
                    ref, False, time.monotonic() - started, image_size_mb(ref)
                )
                return ref
            self.log(f"images: building {ref}")
            cmd = [docker_cli(), "build", "--rm", "--force-rm", "-t", ref]
            cmd += ["--label", f"{HASH_LABEL}={digest}"]
            for name, value in build_args.items():
                cmd += ["--build-arg", f"{name}={value}"]
            previous = image_id(ref)
            _run([*cmd, str(context)], f"docker build {ref}")
        if previous is not None and previous != image_id(ref):
            # The image the tag named before: untagged now; removed unless something uses it.
            subprocess.run(
                [docker_cli(), "image", "rm", previous], capture_output=True, check=False
            )
        self.results[key] = Built(ref, True, time.monotonic() - started, image_size_mb(ref))
        return ref


# --- build contexts -----------------------------------------------------------------------


def _copy_tool(src: Path, hint: str) -> Callable[[Path], None]:
    def fill(context: Path) -> None:
        if not src.exists():
            raise BuildError(f"{src} not found: {hint}")
        shutil.copy2(src.resolve(), context / src.name)

    return fill


def coordinator_wheels() -> Path:
    """Every wheel the coordinator image installs, downloaded on the host (the build itself
    needs no network), cached by the hash of sdk/requirements.lock."""
    lock = ROOT_DIR / "sdk" / "requirements.lock"
    out = TOOLS / "wheels" / _sha(lock.read_bytes() + b"setuptools wheel")[:16]
    if (out / ".complete").exists():
        return out
    pip = TOOLS / "uv-venv" / "bin" / "pip"
    if not pip.exists():
        raise BuildError(f"{pip} not found: run make bootstrap")
    out.mkdir(parents=True, exist_ok=True)
    common = ["--disable-pip-version-check", "--quiet", "--only-binary=:all:", "-d", str(out)]
    _run(
        [str(pip), "download", *common, "--no-deps", "--require-hashes", "-r", str(lock)],
        "pip download (coordinator wheels)",
    )
    # The build backend `pip install .` needs (sdk/pyproject.toml's build-system).
    _run([str(pip), "download", *common, "setuptools>=68", "wheel"], "pip download (build backend)")
    (out / ".complete").touch()
    return out


def _coordinator_context(context: Path) -> None:
    sdk = ROOT_DIR / "sdk"
    for name in ("pyproject.toml", "requirements.lock"):
        shutil.copy2(sdk / name, context / name)
    shutil.copytree(
        sdk / "src",
        context / "src",
        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc"),
    )
    wheels = context / "wheels"
    wheels.mkdir()
    for whl in coordinator_wheels().glob("*.whl"):
        os.link(
            whl, wheels / whl.name
        ) if whl.stat().st_dev == wheels.stat().st_dev else shutil.copy2(whl, wheels / whl.name)


def _empty(context: Path) -> None:
    return None


def tool_cache() -> Path:
    """Where Maven-resolved libraries are kept, shared by every clone on the machine (as
    scripts/registry.sh keeps Apicurio)."""
    default = Path.home() / ".cache" / "seamless-stack" / "tools"
    return Path(os.environ.get("SEAMLESS_TOOL_CACHE", default))


def maven_libs(name: str, version_key: str) -> Path:
    """The runtime jars of images/<name>/pom.xml at the version scripts/versions.env pins
    (`version_key`), resolved from Maven Central once and cached by version and POM."""
    pom = ROOT_DIR / "images" / name / "pom.xml"
    version = _versions().get(version_key)
    if not version:
        raise BuildError(f"{version_key} is not set in scripts/versions.env")
    out = tool_cache() / f"{name}-libs-{version}-{_sha(pom.read_bytes())[:8]}"
    if (out / ".complete").exists():
        return out
    if shutil.which("mvn") is None:
        raise BuildError("mvn not found (it fetches from Maven Central): apt-get install maven")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{name}-libs-", dir=out.parent) as tmp:
        shutil.copy2(pom, Path(tmp) / "pom.xml")
        prop = version_key.lower().replace("_version", ".version")
        _run(
            ["mvn", "-B", "-q", "-f", str(Path(tmp) / "pom.xml"), "package", f"-D{prop}={version}"],
            f"mvn: {name} {version} from Maven Central",
        )
        shutil.rmtree(out, ignore_errors=True)
        (Path(tmp) / "target" / "libs").rename(out)
    (out / ".complete").touch()
    return out


def _maven_context(
    name: str, version_key: str, extra: tuple[str, ...] = (), libs_dir: str = "libs"
) -> Callable[[Path], None]:
    """A build context of the jars (in `libs_dir`/) plus the files `extra` names from
    images/<name>."""

    def fill(context: Path) -> None:
        libs = maven_libs(name, version_key)
        (context / libs_dir).mkdir()
        for jar in sorted(libs.glob("*.jar")):
            shutil.copy2(jar, context / libs_dir / jar.name)
        for item in extra:
            src = ROOT_DIR / "images" / name / item
            if src.is_dir():
                shutil.copytree(src, context / item)
            else:
                shutil.copy2(src, context / item)

    return fill


def _files(name: str, *items: str) -> Callable[[Path], None]:
    def fill(context: Path) -> None:
        for item in items:
            shutil.copy2(ROOT_DIR / "images" / name / item, context / item)

    return fill


def _versions() -> dict[str, str]:
    out: dict[str, str] = {}
    for line in (ROOT_DIR / "scripts" / "versions.env").read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.startswith("#"):
            out[key.strip()] = value.strip()
    return out


def toxiproxy_ref() -> str:
    return f"{TOXIPROXY_REF_REPO}:{_versions()['TOXIPROXY_VERSION'].lstrip('v')}"


def stack_images(stack: str) -> dict[str, str]:
    """The image refs a stack file names: its `images` map and `coordinatorImage`."""
    data = yaml.safe_load((ROOT_DIR / f"Pulumi.{stack}.yaml").read_text())["config"]
    images = {str(k): str(v) for k, v in (data.get("seamless-stack:images") or {}).items()}
    coordinator = data.get("seamless-stack:coordinatorImage")
    if coordinator:
        images["seamless-coordinator"] = str(coordinator)
    return images


Recipe = tuple[str, Path, Callable[[Path], None]]  # root family, Dockerfile, context filler


def recipes() -> dict[str, Recipe]:
    """The services whose image is built here (besides the coordinator's, sdk/Dockerfile),
    keyed like the stack file's `images`."""
    here = ROOT_DIR / "images"
    return {
        "redis": ("redis", here / "redis" / "Dockerfile", _empty),
        "questdb": (
            "jre",
            here / "questdb" / "Dockerfile",
            _copy_tool(TOOLS / "questdb" / "questdb.jar", "run make bootstrap (Maven Central)"),
        ),
        "minio": (
            "tools",
            here / "minio" / "Dockerfile",
            _copy_tool(TOOLS / "bin" / "minio", "run make bootstrap (go install)"),
        ),
        "prometheus": ("prometheus", here / "prometheus" / "Dockerfile", _empty),
        "postgres": (
            "postgres",
            here / "postgres" / "Dockerfile",
            _files("postgres", "entrypoint.sh"),
        ),
        # The ControlBus: Apache Kafka (KRaft) in place of Redpanda, which no registry serves.
        "controlbus": (
            "jre",
            here / "kafka" / "Dockerfile",
            _maven_context("kafka", "KAFKA_VERSION", ("bin", "log4j2.properties")),
        ),
        "neo4j": (
            "jre",
            here / "neo4j" / "Dockerfile",
            _maven_context("neo4j", "NEO4J_VERSION", ("entrypoint.sh", "user-logs.xml"), "lib"),
        ),
    }


def build_stack(
    stack: str,
    *,
    with_toxiproxy: bool = True,
    builder: Builder | None = None,
    services: Iterable[str] | None = None,
) -> Builder:
    """Build every locally built image the stack names (refs under `seamless-local/`), or
    those of `services` only."""
    b = builder or Builder()
    here = ROOT_DIR / "images"
    images = stack_images(stack)
    if services is not None:
        wanted = set(services)
        unknown = wanted - set(images)
        if unknown:
            raise BuildError(f"Pulumi.{stack}.yaml names no image for {', '.join(sorted(unknown))}")
        images = {k: v for k, v in images.items() if k in wanted}
    local = recipes()
    for service, ref in sorted(images.items()):
        if not ref.startswith("seamless-local/"):
            continue  # an image the user supplies (e.g. QMTL's own)
        if service == "seamless-coordinator":
            python = b.image(
                "python",
                f"{PYTHON_BASE_REPO}:3.11-{SUITE}",
                here / "python" / "Dockerfile",
                _empty,
                {"ROOT": b.root("python")},
            )
            b.image(
                service,
                ref,
                ROOT_DIR / "sdk" / "Dockerfile",
                _coordinator_context,
                {"BASE_IMAGE": python},
            )
            continue
        if service not in local:
            raise BuildError(
                f"images.{service} is {ref!r}, but there is no local recipe for {service}; "
                f"local recipes: {', '.join(sorted([*local, 'seamless-coordinator']))}"
            )
        family, dockerfile, fill = local[service]
        b.image(service, ref, dockerfile, fill, {"ROOT": b.root(family)})
    if with_toxiproxy:
        b.image(
            "toxiproxy",
            toxiproxy_ref(),
            here / "toxiproxy" / "Dockerfile",
            _copy_tool(TOOLS / "bin" / "toxiproxy-server", "run make bootstrap (go install)"),
            {"ROOT": b.root("tools")},
        )
    return b
