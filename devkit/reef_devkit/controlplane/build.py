"""Build kube-apiserver, kube-controller-manager and kubectl from Debian's source package.

No machine here reaches the internet, so the usual downloaders (kind, k3s,
setup-envtest) cannot work. Debian ships the full Kubernetes tree with its
vendored dependencies as a source package; we build the three binaries from
it once per machine and keep them in a per-user cache keyed by the source
version, so every later run starts in seconds.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from reef_devkit.controlplane.errors import ControlPlaneError

SOURCE_PACKAGE = "kubernetes"
BINARIES = ("kube-apiserver", "kube-controller-manager", "kubectl")
# The vendored reflect2 v1.0.1 faults under Go >= 1.18 on the first custom
# resource create; Debian packages the fixed 1.0.2 we swap in.
REFLECT2_FIX = Path("/usr/share/gocode/src/github.com/modern-go/reflect2")
REQUIRED_TOOLS = ("go", "make", "rsync", "jq", "apt-get", "apt-cache", "tar")

_Log = Callable[[str], None]


@dataclass(frozen=True)
class Binaries:
    """Paths of the built control-plane binaries."""

    directory: Path
    version: str

    @property
    def kube_apiserver(self) -> Path:
        return self.directory / "kube-apiserver"

    @property
    def kube_controller_manager(self) -> Path:
        return self.directory / "kube-controller-manager"

    @property
    def kubectl(self) -> Path:
        return self.directory / "kubectl"


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "reef-operator" / "kubernetes"


def source_version() -> str:
    """The version of Debian's kubernetes source package apt would fetch."""
    result = subprocess.run(
        ["apt-cache", "showsrc", SOURCE_PACKAGE], capture_output=True, text=True, check=False
    )
    versions = re.findall(r"^Version: (\S+)$", result.stdout, flags=re.MULTILINE)
    if not versions:
        raise ControlPlaneError(
            "apt knows no source package 'kubernetes': add a deb-src entry for bookworm main "
            "and run apt-get update (scripts/setup does both)"
        )
    return str(versions[0])


def ensure_binaries(cache_dir: Path | None = None, log: _Log | None = None) -> Binaries:
    """Return the cached binaries, building them first if this machine has none.

    A file lock makes concurrent callers (two test sessions, a demo) wait for
    one build instead of racing.
    """
    cache_dir = cache_dir or default_cache_dir()
    version = source_version()
    binaries = Binaries(cache_dir / version / "bin", version)
    if _complete(binaries):
        return binaries
    cache_dir.mkdir(parents=True, exist_ok=True)
    with (cache_dir / f"{version}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _complete(binaries):
            _build(version, binaries, cache_dir / f"build-{version}", log or _print)
    return binaries


def _print(message: str) -> None:
    print(message, flush=True)


def _complete(binaries: Binaries) -> bool:
    return all(os.access(binaries.directory / name, os.X_OK) for name in BINARIES)


def _build(version: str, binaries: Binaries, work: Path, log: _Log) -> None:
    missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
    if missing:
        raise ControlPlaneError(
            f"cannot build the local control plane: missing {', '.join(missing)} "
            "(scripts/setup installs them)"
        )
    if not REFLECT2_FIX.is_dir():
        raise ControlPlaneError(
            f"cannot build the local control plane: {REFLECT2_FIX} is missing "
            "(install golang-github-modern-go-reflect2-dev; scripts/setup does)"
        )
    log(f"building Kubernetes {version} from Debian's source package (first run only, ~5 min)")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    build_log = work / "build.log"
    _run(["apt-get", "source", "--download-only", f"{SOURCE_PACKAGE}={version}"], work, build_log)
    tarballs = sorted(work.glob(f"{SOURCE_PACKAGE}_*.orig.tar.*"))
    if not tarballs:
        raise ControlPlaneError(f"apt-get source left no orig tarball in {work}")
    tree = work / "tree"
    tree.mkdir()
    _run(["tar", "-xf", str(tarballs[0]), "-C", str(tree), "--strip-components=1"], work, build_log)

    vendored = tree / "vendor/github.com/modern-go/reflect2"
    shutil.rmtree(vendored)
    shutil.copytree(REFLECT2_FIX, vendored, symlinks=False)
    (vendored / "go.mod").unlink(missing_ok=True)

    gopath = tree / ".go"
    (gopath / "src/k8s.io").mkdir(parents=True)
    (gopath / "src/k8s.io/kubernetes").symlink_to("../../..")
    env = dict(os.environ, GOPATH=str(gopath), CGO_ENABLED="0", GO111MODULE="off", GOFLAGS="")
    targets = " ".join(f"cmd/{name}" for name in BINARIES)
    log(f"make WHAT=\"{targets}\" (log: {build_log})")
    _run(["make", f"WHAT={targets}"], tree / ".go/src/k8s.io/kubernetes", build_log, env)

    staged = binaries.directory.with_name("bin.partial")
    shutil.rmtree(staged, ignore_errors=True)
    staged.mkdir(parents=True)
    for name in BINARIES:
        shutil.copy2(tree / "_output/bin" / name, staged / name)
    shutil.rmtree(binaries.directory, ignore_errors=True)
    staged.rename(binaries.directory)
    shutil.rmtree(work, ignore_errors=True)
    log(f"built {', '.join(BINARIES)} into {binaries.directory}")


def _run(argv: list[str], cwd: Path, build_log: Path, env: dict[str, str] | None = None) -> None:
    with build_log.open("ab") as out:
        out.write(f"$ {' '.join(argv)}\n".encode())
        out.flush()
        result = subprocess.run(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env)
    if result.returncode != 0:
        tail = build_log.read_text(errors="replace").splitlines()[-25:]
        raise ControlPlaneError(
            f"control-plane build step failed ({' '.join(argv)}, exit {result.returncode}); "
            f"last lines of {build_log}:\n" + "\n".join(tail)
        )
