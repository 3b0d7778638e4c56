"""`make build`: each upload folder must run on its own, with nothing but itself on sys.path.

The folders are built for this interpreter (what SCF would run is Linux x86_64 CPython 3.9/3.10,
checked separately below by the wheel tags) and each index.main_handler is called in a fresh
interpreter started without site-packages, so a dependency the build forgot cannot be borrowed
from the test environment.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import IM_SECRET_KEY, IM_TOKEN, JOB_SIGNING_KEY, ROOT, SDKAPPID, im_query, load_event, trigger_event
from tests.flows import job_for

BUILD = [sys.executable, str(ROOT / "scripts" / "build_scf.py")]

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
    subprocess.run([*BUILD, "--native", "--out", str(out)], check=True, capture_output=True)
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
                        "psycopg", "pymysql", "crcmod"):
            assert list(folder.glob(package + "*")), f"{package} missing from {name}"
        leftovers = [p for p in folder.rglob("*") if p.name in ("__pycache__", ".env", "tests") or p.suffix == ".pyc"]
        assert leftovers == []


def test_built_im_callback_answers_a_recorded_callback_on_its_own(native_build, fake_ci, tmp_path):
    # GIVEN the built folder, configured against the fake CI which flags the sample's text
    fake_ci.flag_word("red packet", label="Ads")
    env = {"IM_SDKAPPID": SDKAPPID, "COS_BUCKET": "imguard-1250000000", "COS_REGION": "ap-guangzhou",
           "COS_SECRET_ID": "AKIDtest", "COS_SECRET_KEY": "test-secret", "CI_DOMAIN": fake_ci.domain,
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
           "COS_SECRET_ID": "AKIDtest", "COS_SECRET_KEY": "test-secret", "CI_DOMAIN": fake_ci.domain,
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


def test_the_scf_build_carries_only_linux_x86_64_binaries_for_the_target_python(tmp_path):
    subprocess.run([*BUILD, "--python", "3.9", "--out", str(tmp_path)], check=True, capture_output=True)

    binaries = [p.name for p in (tmp_path / "im_callback").rglob("*.so")]
    assert binaries, "expected compiled dependencies (re2, ahocorasick, greenlet, ...)"
    wrong = [name for name in binaries if ".cpython-" in name and ".cpython-39-x86_64-linux-gnu.so" not in name]
    assert wrong == []
    assert not any(".cpython-311" in name or "darwin" in name for name in binaries)
