"""Build SCF upload folders (``make build``) or a dependency layer (``make layer``).

SCF runs Linux x86_64 with its own CPython (3.9 or 3.10), so dependencies are
installed from manylinux2014 wheels for that Python, never from whatever this
machine happens to run. Two dependencies publish only source distributions:
tls-sig-api-v2 (pure Python) and crcmod (the COS SDK's CRC library, a C
extension with a pure-Python fallback). They are built here as pure
``py3-none-any`` wheels first (crcmod with its compiler switched off, which its
setup.py answers with the fallback), so that the rest can be installed with
``--only-binary=:all:``.

    python scripts/build_scf.py                 # build/im_callback, build/audio_result for Python 3.9
    python scripts/build_scf.py --python 3.10   # for the Python3.10 runtime
    python scripts/build_scf.py --layer         # build/layer/imguard-deps-py39.zip + code-only folders
    python scripts/build_scf.py --native        # for this interpreter and machine (what the tests import)
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import List

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = ("im_callback", "audio_result")
SDIST_ONLY = {"crcmod": "crcmod==1.7", "tls-sig-api-v2": None}  # None: the version pinned in pyproject.toml
JUNK = ("__pycache__", "*.pyc", "*.pyo", "tests", "test", ".pytest_cache")


def runtime_requirements() -> List[str]:
    try:
        import tomllib  # novermin (guarded: tomli below on Python < 3.11)
    except ImportError:  # Python < 3.11
        import tomli as tomllib  # type: ignore[no-redef]
    with open(ROOT / "pyproject.toml", "rb") as handle:
        return list(tomllib.load(handle)["project"]["dependencies"])


def pip(*args: str, env: dict = None) -> None:
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args]
    print("+ pip " + " ".join(args), flush=True)
    subprocess.run(command, check=True, env=env)


def build_pure_wheels(requirements: List[str], wheelhouse: Path) -> None:
    pins = dict(SDIST_ONLY)
    for requirement in requirements:
        name = requirement.split("==")[0].split("[")[0].strip().lower()
        if name in pins and pins[name] is None:
            pins[name] = requirement
    if all(any(wheelhouse.glob(f"{name.replace('-', '_')}-*-py3-none-any.whl")) for name in pins):
        return
    env = dict(os.environ, CC="false")  # no compiler: crcmod's setup.py falls back to pure Python
    # --use-pep517: an isolated build with its own setuptools and wheel, whatever pip and Python run this
    pip("wheel", "--use-pep517", "--no-cache-dir", "--no-deps", "--no-binary", ":all:", "-w", str(wheelhouse),
        *pins.values(), env=env)


def install_dependencies(target: Path, python: str, native: bool, wheelhouse: Path) -> None:
    requirements = runtime_requirements()
    build_pure_wheels(requirements, wheelhouse)
    if target.exists():
        shutil.rmtree(target)
    platform = [] if native else [
        "--only-binary=:all:", "--platform", "manylinux2014_x86_64", "--implementation", "cp",
        "--python-version", python, "--abi", "cp" + python.replace(".", ""),
    ]
    pip("install", "--no-compile", "--target", str(target), "--find-links", str(wheelhouse), *platform, *requirements)
    shutil.rmtree(target / "bin", ignore_errors=True)  # console scripts: nothing in SCF runs them
    _remove_junk(target)


def _remove_junk(folder: Path) -> None:
    for pattern in JUNK:
        for path in sorted(folder.rglob(pattern), reverse=True):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            elif path.exists():
                path.unlink()


def build_function(name: str, out: Path, deps: Path = None) -> Path:
    folder = out / name
    if folder.exists():
        shutil.rmtree(folder)
    if deps is not None:
        shutil.copytree(deps, folder)
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy2(ROOT / "functions" / name / "index.py", folder / "index.py")
    shutil.copytree(ROOT / "shared" / "imguard", folder / "imguard", ignore=shutil.ignore_patterns(*JUNK))
    return folder


def zip_folder(folder: Path, archive: Path) -> None:
    archive.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zipped.write(path, path.relative_to(folder).as_posix())


def main(argv: List[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--python", default=os.environ.get("SCF_PYTHON") or "3.9", help="SCF runtime (default 3.9)")
    parser.add_argument("--out", type=Path, default=ROOT / "build")
    parser.add_argument("--layer", action="store_true", help="dependencies in one layer zip, functions code-only")
    parser.add_argument("--native", action="store_true", help="for this interpreter instead of SCF's")
    args = parser.parse_args(argv)
    if args.python not in ("3.9", "3.10"):
        parser.error(f"SCF runs Python 3.9 or 3.10, not {args.python}")
    python = f"{sys.version_info[0]}.{sys.version_info[1]}" if args.native else args.python
    tag = "native" if args.native else "py" + python.replace(".", "")

    deps = args.out / f".deps-{tag}"
    install_dependencies(deps, python, args.native, args.out / ".wheelhouse")
    for name in FUNCTIONS:
        folder = build_function(name, args.out, None if args.layer else deps)
        print(f"built {folder} ({_size_mb(folder):.1f} MB)")
    if args.layer:
        archive = args.out / "layer" / f"imguard-deps-{tag}.zip"
        zip_folder(deps, archive)
        print(f"built {archive} ({archive.stat().st_size / 1e6:.1f} MB zipped): publish it as an SCF layer "
              f"for Python{python} and bind it to both functions (README, 'Dependencies as a layer')")
    return 0


def _size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


if __name__ == "__main__":
    sys.exit(main())
