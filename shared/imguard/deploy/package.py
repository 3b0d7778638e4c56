"""The upload zip of one function, from the folder ``make build`` made (``build/<function>``).

Nothing is built here: deploy ships exactly what ``make build`` (or ``make layer``) produced and
tested, and refuses a folder that cannot run on the chosen runtime.
"""
from __future__ import annotations

import base64
import hashlib
import io
import re
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import FrozenSet, Optional

from imguard.deploy.errors import DeployError

# SCF's quota for a function version's code, unpacked, layers included (583/11637).
UNPACKED_LIMIT = 500 * 1000 * 1000
# A TC3-signed POST carries at most 10 MB (API 3.0 request structure), and the zip travels
# base64-encoded (4/3 larger) inside the JSON: above this it goes through COS instead.
# ZipFile's own documented caps (20 MB for UpdateFunctionCode, 50 MB for CreateFunction) are
# larger, so the request cap is the one that bites.
INLINE_LIMIT = 7 * 1024 * 1024
# Never shipped, whatever the folder holds: caches (but the unchecked-hash bytecode make build compiles), and
# above all a stray .env.
SKIPPED_NAMES = ("__pycache__", ".env")
SKIPPED_SUFFIXES = (".pyc",)
# Fixed timestamp: the same folder gives the same bytes, hence the same sha256 and COS key.
ZIP_TIME = (2020, 1, 1, 0, 0, 0)

_NATIVE_RE = re.compile(r"\.cpython-3(\d+)[-.]")


@dataclass(frozen=True)
class CodePackage:
    app: str
    folder: Path
    data: bytes = field(repr=False)
    sha256: str
    unpacked: int
    native_pythons: FrozenSet[str]  # "3.9", "3.10": what the compiled modules were built for

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def fits_inline(self) -> bool:
        return self.size <= INLINE_LIMIT

    def base64(self) -> str:
        return base64.b64encode(self.data).decode("ascii")


def build_folder(build_dir: Path, app: str) -> Path:
    folder = build_dir / app
    if not (folder / "index.py").is_file():
        where = f"{folder} has no index.py" if folder.is_dir() else f"{folder} does not exist"
        raise DeployError(f"{where}: run `make build` (or `make layer`) first, or point --build at "
                          f"the folder that holds {app}/index.py")
    return folder


def _built_bytecode(path: Path) -> bool:
    """Bytecode `make build` made: unchecked-hash .pyc (flags 1), which is shipped; a timestamped one is a
    stray local cache of whatever interpreter ran in the folder, which is not."""
    with path.open("rb") as pyc:
        header = pyc.read(8)
    return len(header) == 8 and int.from_bytes(header[4:8], "little") == 1


def package(build_dir: Path, app: str) -> CodePackage:
    folder = build_folder(build_dir, app)
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not _skipped(p.relative_to(folder), p))
    buffer = io.BytesIO()
    unpacked = 0
    natives = set()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            relative = path.relative_to(folder).as_posix()
            info = zipfile.ZipInfo(relative, ZIP_TIME)
            # Keep exec bits, force read bits: SCF unpacks as another user than the one who built.
            mode = stat.S_IMODE(path.stat().st_mode) | 0o444
            info.external_attr = (stat.S_IFREG | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            data = path.read_bytes()
            unpacked += len(data)
            archive.writestr(info, data)
            native = _NATIVE_RE.search(path.name)
            if native and path.suffix == ".so":
                natives.add(f"3.{native.group(1)}")
    if unpacked > UNPACKED_LIMIT:
        raise DeployError(f"{folder} holds {unpacked / 1e6:.0f} MB; SCF takes at most 500 MB unpacked per "
                          f"function: build with `make layer` and publish the dependencies as a layer")
    data = buffer.getvalue()
    return CodePackage(app, folder, data, hashlib.sha256(data).hexdigest(), unpacked, frozenset(natives))


def check_runtime(pkg: CodePackage, runtime: str) -> None:
    """A build for Python 3.10 fails to import on Python3.9 (and back): its compiled modules
    carry the version in their names. Code-only builds (``make layer``) have none to check."""
    wanted = runtime.replace("Python", "")
    other = sorted(pkg.native_pythons - {wanted})
    if other:
        raise DeployError(f"{pkg.folder} was built for Python {', '.join(other)} (its compiled modules say so) "
                          f"but the runtime is {runtime}: run `SCF_PYTHON={wanted} make build`, or deploy "
                          f"with --runtime Python{other[0]}")


def describe(pkg: CodePackage, via: Optional[str] = None) -> str:
    how = via or ("inline" if pkg.fits_inline else "through COS")
    return f"{_size(pkg.size)} zipped ({_size(pkg.unpacked)} unpacked) {how}, sha256 {pkg.sha256[:12]}"


def _size(count: int) -> str:
    return f"{count / 1e6:.1f} MB" if count >= 100_000 else f"{count / 1e3:.1f} kB"


def _skipped(relative: Path, path: Path) -> bool:
    if relative.suffix == ".pyc" and relative.parent.name == "__pycache__" and ".env" not in relative.parts:
        return not _built_bytecode(path)
    return any(part in SKIPPED_NAMES for part in relative.parts) or relative.suffix in SKIPPED_SUFFIXES
