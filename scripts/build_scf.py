"""Build SCF upload folders (``make build``) or a dependency layer (``make layer``), then check them
on the target interpreter.

SCF runs Linux x86_64 with its own CPython (3.9 or 3.10). Dependencies come from the hashed lock
of that target (``requirements/scf-py39.txt``, ``scf-py310.txt``, made by ``make lock`` with a
resolver that honours ``Requires-Python``), as manylinux2014 wheels for that Python, never from
whatever this machine happens to run. Two locked dependencies publish only source distributions:
tls-sig-api-v2 (pure Python) and crcmod (the COS SDK's CRC library, a C extension with a
pure-Python fallback). Their locked sdists are built here into pure ``py3-none-any`` wheels first
(crcmod with its compiler switched off, which its setup.py answers with the fallback).

After installing, every bundled distribution's ``Requires-Python`` is checked against the target,
and each folder is started the way SCF starts it: the target interpreter, bare (``-I -S -B``, only
the folder on ``sys.path``), importing ``index.py`` and answering recorded events. A build whose
target interpreter is not on this machine says so loudly.

    python scripts/build_scf.py                     # build/im_callback, build/audio_result for Python 3.9
    python scripts/build_scf.py --python 3.10       # for the Python3.10 runtime
    python scripts/build_scf.py --rules none        # no bundled rules (RULES_URL, or CI only)
    python scripts/build_scf.py --layer             # build/layer/imguard-deps-py39.zip + code-only folders
    python scripts/build_scf.py --native            # for this interpreter and machine (what the tests import)
"""
from __future__ import annotations

import argparse
import base64
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Dict, List, Optional, Tuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "shared"))  # the library the functions carry, as this checkout has it
from imguard.config import BUNDLED_RULES  # noqa: E402  (beside index.py; read when RULES_PATH is unset)

FUNCTIONS = ("im_callback", "audio_result", "console")
TARGETS = ("3.9", "3.10")
SDIST_ONLY = ("crcmod", "tls-sig-api-v2")
JUNK = ("__pycache__", "*.pyc", "*.pyo", "tests", "test", ".pytest_cache")

# What the check sends each function: IM's recorded callbacks, and a CI verdict nobody signed.
CHECK_SDKAPPID, CHECK_TOKEN = "1400000000", "build-check-token"
CHECK_ENV = {
    "im_callback": {"IM_SDKAPPID": CHECK_SDKAPPID, "IM_CALLBACK_TOKEN": CHECK_TOKEN},
    "audio_result": {"IM_SDKAPPID": CHECK_SDKAPPID, "IM_CALLBACK_TOKEN": CHECK_TOKEN,
                     "JOB_SIGNING_KEY": "build-check-signing-key", "IM_SECRET_KEY": "0" * 64,
                     "COS_BUCKET": "check-1250000000", "COS_REGION": "ap-guangzhou", "COS_SECRET_ID": "id",
                     "COS_SECRET_KEY": "key", "CI_DOMAIN": "127.0.0.1:9", "CI_SCHEME": "http"},
    "console": {"AUDIT_DSN": "sqlite:///:memory:", "CONSOLE_TOKEN": "build-check-console-token"},
}

# Runs inside the target interpreter: the folders first on sys.path, nothing of this machine's.
PROBE = r"""
import json, sys
sys.path[:0] = sys.argv[1:]
assert not any("site-packages" in p for p in sys.path), sys.path
import index
answers = []
for line in sys.stdin:
    event, context = json.loads(line)
    answers.append(index.main_handler(event, context))
print("PROBE " + json.dumps({"python": sys.version.split()[0], "index": index.__file__, "answers": answers}))
"""


class BuildError(Exception):
    """The build cannot be trusted to run on SCF; the message says why and what to do."""


def pip(*args: str, env: Optional[dict] = None) -> None:
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args]
    print("+ pip " + " ".join(args), flush=True)
    subprocess.run(command, check=True, env=env)


# -- dependencies --------------------------------------------------------------------------------


def lock_file(python: str) -> Path:
    return ROOT / "requirements" / f"scf-py{python.replace('.', '')}.txt"


def locked_requirements(lock: Path) -> Dict[str, str]:
    """name → its whole requirement (``name==version --hash=... ...``) from a pip-compile style lock."""
    joined = re.sub(r"\s*\\\n\s*", " ", lock.read_text(encoding="utf-8"))
    pins = {}
    for line in joined.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            pins[re.split(r"[=<>!~\[ ;]", line, maxsplit=1)[0].lower()] = line
    return pins


def _requirements_file(folder: Path, name: str, lines: List[str]) -> Path:
    path = folder / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def install_locked(target: Path, python: str, wheelhouse: Path) -> None:
    """The target's lock, hash-checked: binary wheels for SCF's platform, plus the two sdists built pure."""
    lock = lock_file(python)
    if not lock.is_file():
        raise BuildError(f"no lock for Python {python}: {lock.relative_to(ROOT)} (run `make lock`)")
    pins = locked_requirements(lock)
    missing = [name for name in SDIST_ONLY if name not in pins]
    if missing:
        raise BuildError(f"{lock.name} does not pin {', '.join(missing)}")
    wheelhouse.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        sdists = _requirements_file(Path(scratch), "sdists.txt", [pins[name] for name in SDIST_ONLY])
        binaries = _requirements_file(Path(scratch), "binaries.txt",
                                      [line for name, line in pins.items() if name not in SDIST_ONLY])
        env = dict(os.environ, CC="false")  # no compiler: crcmod's setup.py falls back to pure Python
        # --use-pep517: an isolated build with its own setuptools and wheel, whatever pip and Python run this
        pip("wheel", "--use-pep517", "--no-cache-dir", "--no-deps", "--no-binary", ":all:", "--require-hashes",
            "-w", str(wheelhouse), "-r", str(sdists), env=env)
        pip("install", "--no-compile", "--no-deps", "--require-hashes", "--target", str(target),
            "--only-binary=:all:", "--platform", "manylinux2014_x86_64", "--implementation", "cp",
            "--python-version", python, "--abi", "cp" + python.replace(".", ""), "-r", str(binaries))
    built = [str(next(wheelhouse.glob(f"{name.replace('-', '_')}-*-py3-none-any.whl"))) for name in SDIST_ONLY]
    pip("install", "--no-compile", "--no-deps", "--target", str(target), *built)


def install_native(target: Path) -> None:
    """For the interpreter running this (tests): pyproject's pins, resolved here."""
    pip("install", "--no-compile", "--target", str(target), str(ROOT))
    shutil.rmtree(target / "imguard", ignore_errors=True)  # the code is copied in from shared/ per function


def check_requires_python(target: Path, python: str) -> None:
    """Fail, naming the package, if a bundled distribution does not run on ``python``."""
    try:
        from packaging.specifiers import InvalidSpecifier, SpecifierSet
    except ImportError:  # pip always carries a copy
        from pip._vendor.packaging.specifiers import InvalidSpecifier, SpecifierSet  # type: ignore
    version = python + ".0"
    wrong = []
    for metadata in sorted(target.glob("*.dist-info/METADATA")):
        fields = dict(re.findall(r"^(Name|Version|Requires-Python): *(.+)$", metadata.read_text("utf-8", "replace"),
                                 re.MULTILINE))
        spec = fields.get("Requires-Python", "").strip()
        try:
            if spec and version not in SpecifierSet(spec):
                wrong.append(f"{fields.get('Name')} {fields.get('Version')} (Requires-Python {spec})")
        except InvalidSpecifier:
            wrong.append(f"{fields.get('Name')} {fields.get('Version')} (unreadable Requires-Python {spec!r})")
    if wrong:
        raise BuildError(f"these bundled distributions do not run on Python {python}: {'; '.join(wrong)}")


def _remove_junk(folder: Path) -> None:
    for pattern in JUNK:
        for path in sorted(folder.rglob(pattern), reverse=True):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            elif path.exists():
                path.unlink()


# -- the folders -----------------------------------------------------------------------------------


def rules_to_bundle(choice: Optional[str]) -> Optional[Path]:
    """The operator's rules file, or None for ``none``. Never the example by default: with no choice
    made and no rules.yaml, the functions carry no local rules, and the build says so loudly."""
    if choice is None:
        if not (ROOT / BUNDLED_RULES).is_file():
            loud(f"NO LOCAL RULES BUNDLED: there is no {BUNDLED_RULES}. The functions will judge with CI (and "
                 f"RULES_URL) alone.\nTo bundle rules: cp rules.example.yaml {BUNDLED_RULES}, edit it, build again "
                 f"(or RULES=path/to/rules.yaml; RULES=none says no rules on purpose).")
            return None
        choice = BUNDLED_RULES
    if choice == "none":
        return None
    path = Path(choice) if Path(choice).is_absolute() else ROOT / choice
    if not path.is_file():
        raise BuildError(
            f"no rules file at {choice}: the functions bundle your local rules as {BUNDLED_RULES}. "
            f"Create it (cp rules.example.yaml rules.yaml, then edit), or build with RULES=path/to/rules.yaml, "
            f"or RULES=none to ship no local rules (RULES_URL, or CI alone)")
    from imguard.rules.ruleset import RulesError, loads  # the same loader the function will run

    try:
        loads(path.read_text(encoding="utf-8"), version="build")
    except (RulesError, UnicodeDecodeError) as exc:
        raise BuildError(f"{choice}: {exc}") from None
    return path


def build_function(name: str, out: Path, deps: Optional[Path], rules: Optional[Path]) -> Path:
    folder = out / name
    if folder.exists():
        shutil.rmtree(folder)
    if deps is not None:
        shutil.copytree(deps, folder)
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy2(ROOT / "functions" / name / "index.py", folder / "index.py")
    # The deploy tooling and the local stand-ins (make run) run on the operator's machine, never in the function.
    shutil.copytree(ROOT / "shared" / "imguard", folder / "imguard", ignore=shutil.ignore_patterns(*JUNK, "deploy", "local"))
    if rules is not None and name != "audio_result":  # audio_result judges nothing itself; the console tries texts
        shutil.copy2(rules, folder / BUNDLED_RULES)
    return folder


def zip_folder(folder: Path, archive: Path) -> None:
    archive.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zipped.write(path, path.relative_to(folder).as_posix())


# -- the check on the target interpreter --------------------------------------------------------------


def find_python(version: str) -> Optional[str]:
    """An interpreter of ``version``: SCF_PYTHON_BIN, pythonX.Y on PATH, or pyenv's newest X.Y.*."""
    candidates = [os.environ.get("SCF_PYTHON_BIN") or "", shutil.which(f"python{version}") or ""]
    pyenv_root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    candidates += sorted(glob.glob(f"{pyenv_root}/versions/{version}.*/bin/python{version}"),
                         key=lambda p: [int(x) for x in re.findall(r"\d+", Path(p).parts[-3])], reverse=True)
    for candidate in filter(None, candidates):
        probe = subprocess.run([candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                               capture_output=True, text=True)
        if probe.returncode == 0 and probe.stdout.strip() == version:
            return candidate
    return None


def recorded_events(name: str) -> List[Tuple[dict, dict]]:
    """(event, context) pairs as SCF hands them to ``name``: IM's callbacks, signed; an unsigned CI verdict."""
    envelope = json.loads((ROOT / "tests" / "events" / "trigger" / "apigw.json").read_text(encoding="utf-8"))
    context = {"request_id": "build-check", "time_limit_in_ms": 3000}
    events = []
    if name == "im_callback":
        stamp = str(int(time.time()))
        sign = hashlib.sha256((CHECK_TOKEN + stamp).encode()).hexdigest()
        for path in sorted((ROOT / "tests" / "events" / "im").glob("*.json")):
            body = json.loads(path.read_text(encoding="utf-8"))
            command = body.get("CallbackCommand") or "ContentCallback.ResultNotify"
            query = {"SdkAppid": CHECK_SDKAPPID, "CallbackCommand": command, "contenttype": "json",
                     "RequestTime": stamp, "Sign": sign}
            events.append((dict(envelope, body=json.dumps(body, ensure_ascii=False), queryString=query), context))
    elif name == "console":  # the sign-in page: Flask, its templates and the SCF adapter, on the target
        events.append((dict(envelope, httpMethod="GET", path="/login", body="", queryString={}), context))
    else:
        body = (ROOT / "tests" / "events" / "ci" / "audio_simple_guide.json").read_text(encoding="utf-8")
        events.append((dict(envelope, body=body, queryString={}), context))
    return events


def run_on_target(python_bin: str, folders: List[Path], env: Dict[str, str],
                  events: List[Tuple[dict, dict]]) -> dict:
    """index.main_handler of ``folders[0]`` in a bare ``python_bin``, answering ``events``."""
    process = subprocess.run(
        [python_bin, "-I", "-S", "-B", "-c", PROBE, *map(str, folders)],
        input="".join(json.dumps(pair) + "\n" for pair in events), capture_output=True, text=True,
        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "USER_CODE_ROOT": str(folders[0]), **env}, timeout=120,
    )
    marker = [line for line in process.stdout.splitlines() if line.startswith("PROBE ")]
    if process.returncode != 0 or not marker:
        raise BuildError(f"{folders[0].name} does not start on {python_bin}:\n{process.stderr[-2500:]}")
    result = json.loads(marker[-1][len("PROBE "):])
    result["logs"] = [json.loads(line) for line in process.stdout.splitlines() if line.startswith('{"event":')]
    return result


def check_folder(python_bin: str, name: str, folders: List[Path]) -> str:
    result = run_on_target(python_bin, folders, CHECK_ENV[name], recorded_events(name))
    expected = 401 if name == "audio_result" else 200  # nobody signed the CI verdict: refused, readably
    for answer in result["answers"]:
        if name == "console":
            page = base64.b64decode(answer.get("body") or "").decode("utf-8", "replace")
            if answer.get("statusCode") != 200 or 'name="csrf_token"' not in page:
                raise BuildError(f"console on Python {result['python']} answered {str(answer)[:300]}")
            continue
        body = json.loads(answer.get("body") or "null")
        if answer.get("statusCode") != expected or not isinstance(body, dict):
            raise BuildError(f"{name} on Python {result['python']} answered {answer}")
        if name == "im_callback" and not isinstance(body.get("ErrorCode"), int):
            raise BuildError(f"{name} on Python {result['python']} gave IM no ErrorCode: {body}")
    loaded = [line for line in result["logs"] if line["event"] == "rules.loaded"]
    if name == "im_callback" and (folders[0] / BUNDLED_RULES).is_file():
        if not (loaded and loaded[0].get("compiled")):
            raise BuildError(f"{name} on Python {result['python']} parsed {BUNDLED_RULES} instead of loading what the "
                             f"build compiled: {loaded or 'no rules.loaded line'}")
        return f"{name}: {len(result['answers'])} recorded event(s) answered on Python {result['python']}, compiled rules"
    return f"{name}: {len(result['answers'])} recorded event(s) answered on Python {result['python']}"


def compile_bytecode(python_bin: str, folders: List[Path]) -> None:
    """Bytecode made by the target interpreter itself, as unchecked-hash .pyc: a new SCF instance
    then imports instead of compiling everything it imports (SCF sets PYTHONDONTWRITEBYTECODE, so
    it never keeps what it compiles), and the times a zip gives the sources do not matter."""
    for folder in folders:
        subprocess.run([python_bin, "-I", "-m", "compileall", "-q", "-j", "0", "--invalidation-mode",
                        "unchecked-hash", str(folder)], check=True, capture_output=True)


def compile_rules(python_bin: str, folders: List[Path], deps: Optional[Path]) -> List[Path]:
    """The bundled rules compiled once, by the target interpreter inside the built folder (imguard.rules.compiled),
    so that a new instance loads them instead of parsing and compiling them again."""
    written = []
    for folder in folders:
        if (folder / BUNDLED_RULES).is_file():
            paths = [str(folder)] + ([str(deps)] if deps else [])
            subprocess.run([python_bin, "-I", "-S", "-B", "-c",
                            "import sys; from pathlib import Path; sys.path[:0] = sys.argv[2:]; "
                            "from imguard.rules.compiled import write; write(Path(sys.argv[1]))",
                            str(folder / BUNDLED_RULES), *paths], check=True, capture_output=True, env={"LANG": "C.UTF-8"})
            written.append(folder)
    return written


def loud(message: str) -> None:
    bar = "!" * 78
    print(f"\n{bar}\n{message}\n{bar}\n", file=sys.stderr, flush=True)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--python", default=os.environ.get("SCF_PYTHON") or "3.9", help="SCF runtime (default 3.9)")
    parser.add_argument("--out", type=Path, default=ROOT / "build")
    parser.add_argument("--rules", default=os.environ.get("RULES") or None,
                        help="rules file to bundle (default rules.yaml when there is one), or none")
    parser.add_argument("--layer", action="store_true", help="dependencies in one layer zip, functions code-only")
    parser.add_argument("--native", action="store_true", help="for this interpreter instead of SCF's")
    args = parser.parse_args(argv)
    if args.python not in TARGETS:
        parser.error(f"SCF runs Python {' or '.join(TARGETS)}, not {args.python}")
    python = f"{sys.version_info[0]}.{sys.version_info[1]}" if args.native else args.python
    tag = "native" if args.native else "py" + python.replace(".", "")
    try:
        rules = rules_to_bundle(args.rules)
        deps = args.out / f".deps-{tag}"
        if deps.exists():
            shutil.rmtree(deps)
        if args.native:
            install_native(deps)
        else:
            install_locked(deps, python, args.out / ".wheelhouse")
        shutil.rmtree(deps / "bin", ignore_errors=True)  # console scripts: nothing in SCF runs them
        _remove_junk(deps)
        check_requires_python(deps, python)
        folders = {name: build_function(name, args.out, None if args.layer else deps, rules) for name in FUNCTIONS}
        for folder in folders.values():
            print(f"built {folder} ({_size_mb(folder):.1f} MB), rules: {rules.name if rules else 'none'}")
        if args.layer:
            archive = args.out / "layer" / f"imguard-deps-{tag}.zip"
            zip_folder(deps, archive)
            print(f"built {archive} ({archive.stat().st_size / 1e6:.1f} MB zipped): publish it as an SCF layer "
                  f"for Python{python} and bind it to both functions (README, 'Dependencies as a layer')")
        python_bin = sys.executable if args.native else find_python(python)
        if python_bin is None:
            loud(f"NOT CHECKED, NO BYTECODE: no Python {python} on this machine, so the build was neither compiled\n"
                 f"(bytecode, bundled rules) nor started on its target. Install it (pyenv install {python}) or point SCF_PYTHON_BIN at one.")
            return 0
        compile_bytecode(python_bin, list(folders.values()) + ([deps] if args.layer else []))
        print(f"compiled bytecode with {python_bin} (unchecked-hash .pyc)")
        if compile_rules(python_bin, list(folders.values()), deps if args.layer else None):
            print(f"compiled the bundled rules with {python_bin} ({BUNDLED_RULES}.compiled)")
        for name, folder in folders.items():
            print("checked " + check_folder(python_bin, name, [folder] + ([deps] if args.layer else [])))
    except BuildError as exc:
        loud(f"BUILD FAILED: {exc}")
        return 1
    return 0


def _size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


if __name__ == "__main__":
    sys.exit(main())
