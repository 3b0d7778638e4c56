"""`make build`: each upload folder must run on its own, with nothing but itself on sys.path.

Most tests build for this interpreter and call each index.main_handler in a fresh interpreter
started without site-packages, so a dependency the build forgot cannot be borrowed from the test
environment. The SCF targets themselves (CPython 3.9 and 3.10, from their hashed locks) are built
and started on those interpreters (pyenv's here and in CI), answering recorded events.
"""
from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import IM_SECRET_KEY, IM_TOKEN, JOB_SIGNING_KEY, ROOT, SDKAPPID, im_query, load_event, trigger_event
from tests.flows import job_for

BUILD = [sys.executable, str(ROOT / "scripts" / "build_scf.py")]


def _build_script():
    spec = importlib.util.spec_from_file_location("build_scf", ROOT / "scripts" / "build_scf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build_scf = _build_script()

RUN_IN_FOLDER = """
import json, sys
sys.path.insert(0, sys.argv[1])
import index
event, context = json.load(sys.stdin)
print(json.dumps({"answer": index.main_handler(event, context), "path": sys.path, "index": index.__file__}))
"""


@pytest.fixture(scope="module")
def native_build(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("build")
    subprocess.run([*BUILD, "--native", "--rules", "none", "--out", str(out)], check=True, capture_output=True)
    return out


def run_isolated(folder: Path, event: dict, context: dict, env: dict) -> dict:
    """index.main_handler in a fresh interpreter: -I ignores the environment's paths, -S skips site-packages."""
    process = subprocess.run(
        [sys.executable, "-I", "-S", "-c", RUN_IN_FOLDER, str(folder)],
        input=json.dumps([event, context]), capture_output=True, text=True, env=env, timeout=60,
    )
    assert process.returncode == 0, process.stderr[-3000:]
    result = json.loads(process.stdout.strip().splitlines()[-1])
    assert result["index"] == str(folder / "index.py")
    assert not any("site-packages" in entry for entry in result["path"])
    return result["answer"]


def test_the_folders_hold_code_and_dependencies_and_nothing_else(native_build):
    for name in ("im_callback", "audio_result"):
        folder = native_build / name
        assert (folder / "index.py").read_text() == (ROOT / "functions" / name / "index.py").read_text()
        assert (folder / "imguard" / "apps" / f"{name}.py").is_file()
        for package in ("qcloud_cos", "requests", "TLSSigAPIv2.py", "ahocorasick", "re2.py", "yaml", "sqlalchemy",
                        "psycopg", "pymysql", "crcmod", "redis"):
            assert list(folder.glob(package + "*")), f"{package} missing from {name}"
        leftovers = [p for p in folder.rglob("*") if p.name in (".env", "tests")]
        assert leftovers == []
        # the only bytecode is the build's own: unchecked-hash, for the interpreter it was built for
        stray = [p for p in folder.rglob("*.pyc") if int.from_bytes(p.read_bytes()[4:8], "little") != 1]
        assert stray == []


def test_built_im_callback_answers_a_recorded_callback_on_its_own(native_build, fake_ci, tmp_path):
    # GIVEN the built folder, configured against the fake CI which flags the sample's text
    fake_ci.flag_word("red packet", label="Ads")
    env = {"IM_SDKAPPID": SDKAPPID, "COS_BUCKET": "imguard-1250000000", "COS_REGION": "ap-guangzhou",
           "COS_SECRET_ID": fake_ci.secret_id, "COS_SECRET_KEY": "test-secret", "CI_DOMAIN": fake_ci.domain,
           "CI_SCHEME": "http", "AUDIT_DSN": f"sqlite:///{tmp_path}/audit.db", "NO_PROXY": "127.0.0.1"}
    event = trigger_event(load_event("im/c2c_before_text"), im_query("C2C.CallbackBeforeSendMsg"))

    # WHEN SCF would call it
    response = run_isolated(native_build / "im_callback", event, {"time_limit_in_ms": 3000}, env)

    # THEN CI was asked through the bundled SDK and the message is rejected in an integration response
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["ErrorCode"] == 1
    assert len(fake_ci.calls_of("text")) == 1


def test_built_functions_review_and_withdraw_a_sound_message_end_to_end(native_build, fake_ci, fake_im):
    # GIVEN both built folders configured for asynchronous review, and CI finding the sound violating
    sound = load_event("im/c2c_before_sound")
    fake_ci.flag_media(sound["MsgBody"][0]["MsgContent"]["Url"], label="Porn")
    env = {"IM_SDKAPPID": SDKAPPID, "COS_BUCKET": "imguard-1250000000", "COS_REGION": "ap-guangzhou",
           "COS_SECRET_ID": fake_ci.secret_id, "COS_SECRET_KEY": "test-secret", "CI_DOMAIN": fake_ci.domain,
           "CI_SCHEME": "http", "RESULT_CALLBACK_URL": "https://imguard.example.com/audio_result",
           "JOB_SIGNING_KEY": JOB_SIGNING_KEY, "IM_SECRET_KEY": IM_SECRET_KEY, "IM_API_BASE": fake_im.base_url,
           "IM_CALLBACK_TOKEN": IM_TOKEN, "NO_PROXY": "127.0.0.1"}

    # WHEN im_callback hands the sound to CI, IM delivers it, and CI's verdict reaches audio_result
    event = trigger_event(sound, im_query("C2C.CallbackBeforeSendMsg"))
    allowed = run_isolated(native_build / "im_callback", event, {"time_limit_in_ms": 3000}, env)
    fake_im.deliver_c2c(sound)
    job_id = job_for(fake_ci, sound["MsgBody"][0]["MsgContent"]["Url"])
    verdict = trigger_event(fake_ci.detail_callback(job_id), {})
    withdrawn = run_isolated(native_build / "audio_result", verdict, {"time_limit_in_ms": 30000}, env)

    # THEN the message was delivered first, then withdrawn through the bundled UserSig and requests
    assert json.loads(allowed["body"])["ErrorCode"] == 0
    assert withdrawn["statusCode"] == 200, withdrawn
    assert fake_im.withdrawn == [{"kind": "c2c", "From_Account": sound["From_Account"],
                                  "To_Account": sound["To_Account"], "MsgKey": sound["MsgKey"]}]


@pytest.mark.parametrize("python", ["3.9", "3.10"])
def test_the_scf_build_starts_on_its_target_python_with_the_bundled_rules(tmp_path, python):
    # GIVEN SCF's interpreter (skipped, saying how to get it, where this machine has none)
    python_bin = build_scf.find_python(python)
    if python_bin is None:
        pytest.skip(f"no Python {python} here: `pyenv install {python}` or SCF_PYTHON_BIN=/path/to/python{python}")

    # WHEN `make build` builds for it, from its lock, with the example rules bundled
    built = subprocess.run([*BUILD, "--python", python, "--rules", "rules.example.yaml", "--out", str(tmp_path)],
                           capture_output=True, text=True)

    # THEN the build itself started both folders on that interpreter and they answered recorded events
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-3000:]
    assert re.search(rf"checked im_callback: \d+ recorded event\(s\) answered on Python {re.escape(python)}\.", built.stdout)
    assert f"checked audio_result: 1 recorded event(s) answered on Python {python}." in built.stdout
    assert f"checked console: 1 recorded event(s) answered on Python {python}." in built.stdout  # its sign-in page
    # AND the target interpreter compiled everything to unchecked-hash bytecode (zip times do not matter)
    tag = "cpython-" + python.replace(".", "")
    for module in ("index", "imguard/apps/im_callback", "yaml/__init__"):
        source = tmp_path / "im_callback" / f"{module}.py"
        [pyc] = (source.parent / "__pycache__").glob(f"{source.stem}.{tag}.pyc")
        assert int.from_bytes(pyc.read_bytes()[4:8], "little") == 1  # PEP 552: hash-based, unchecked
    # AND every compiled module is for Linux x86_64 and that Python
    tag = tag + "-x86_64-linux-gnu.so"
    binaries = [p.name for p in (tmp_path / "im_callback").rglob("*.so")]
    assert binaries and [name for name in binaries if ".cpython-" in name and tag not in name] == []
    # AND with no RULES_PATH, the function judges by the rules it carries (SCF's USER_CODE_ROOT)
    folder = tmp_path / "im_callback"
    assert (folder / "rules.yaml").read_text() == (ROOT / "rules.example.yaml").read_text()
    assert f"compiled the bundled rules with {python_bin}" in built.stdout  # by the target: its pickle, its automaton
    body = dict(load_event("im/c2c_before_text"), MsgBody=[{"MsgType": "TIMTextElem", "MsgContent": {"Text": "你个傻逼"}}])
    [(event, context)] = [pair for pair in build_scf.recorded_events("im_callback")
                          if json.loads(pair[0]["body"]).get("CallbackCommand") == "C2C.CallbackBeforeSendMsg"][:1]
    result = build_scf.run_on_target(python_bin, [folder], build_scf.CHECK_ENV["im_callback"],
                                     [(dict(event, body=json.dumps(body, ensure_ascii=False)), context)])
    assert json.loads(result["answers"][0]["body"])["ErrorCode"] == 1


def test_a_rules_file_that_is_not_there_stops_the_build_and_says_what_to_do(tmp_path):
    built = subprocess.run([*BUILD, "--rules", str(tmp_path / "rules.yaml"), "--out", str(tmp_path)],
                           capture_output=True, text=True)

    assert built.returncode == 1
    assert "cp rules.example.yaml rules.yaml" in built.stderr and "RULES=none" in built.stderr


def test_without_a_rules_yaml_the_build_ships_no_rules_and_says_so_loudly(tmp_path, monkeypatch, capsys):
    # GIVEN a checkout with no rules.yaml (the operator makes one; the example is never taken silently)
    monkeypatch.setattr(build_scf, "ROOT", tmp_path)

    assert build_scf.rules_to_bundle(None) is None
    warning = capsys.readouterr().err
    assert "NO LOCAL RULES BUNDLED" in warning and "cp rules.example.yaml rules.yaml" in warning


def test_a_bundled_distribution_the_target_cannot_run_fails_the_build_by_name(tmp_path):
    for name, version, spec in [("urllib3", "2.8.0", ">=3.10"), ("requests", "2.32.5", ">=3.9")]:
        info = tmp_path / f"{name}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
                                       f"Requires-Python: {spec}\n", encoding="utf-8")

    with pytest.raises(build_scf.BuildError, match=r"urllib3 2\.8\.0 \(Requires-Python >=3\.10\)") as raised:
        build_scf.check_requires_python(tmp_path, "3.9")
    assert "requests" not in str(raised.value)
    build_scf.check_requires_python(tmp_path, "3.10")  # the same folder is fine for 3.10


@pytest.mark.parametrize("python", build_scf.TARGETS)
def test_each_targets_lock_pins_what_pyproject_pins_with_hashes(python):
    try:
        import tomllib  # novermin (guarded: tomli below on Python < 3.11)
    except ImportError:
        import tomli as tomllib  # type: ignore[no-redef]
    direct = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]

    locked = build_scf.locked_requirements(build_scf.lock_file(python))

    for requirement in direct:  # "name[extra]==version"
        name, version = re.match(r"([A-Za-z0-9_.-]+)(?:\[[^]]*\])?==(\S+)", requirement).groups()
        assert locked[name.lower()].startswith(f"{name.lower()}=={version} "), f"run `make lock`: {name}"
    assert all("--hash=sha256:" in line for line in locked.values())
