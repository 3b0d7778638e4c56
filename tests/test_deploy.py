"""`imguard deploy` against a fake SCF API (tests/fakes/scf.py) reached by the real Tencent Cloud SDK.

The fake recomputes every TC3-HMAC-SHA256 signature, keeps functions and triggers, and refuses a
change to a function that is not Active yet, so these tests also prove deploy signs correctly and
waits as SCF requires. Build folders are tiny stand-ins for `make build` output.
"""
from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import pytest
import requests

from imguard.cli import main
from imguard.config import VARIABLES
from imguard.deploy import plan as deploy_plan
from imguard.deploy.errors import DeployError
from imguard.deploy.inputs import DEPLOY_NAMES
from tests.fakes.scf import FakeScf

# Deploy credentials: they must reach the API as a signature and nowhere else.
SECRET_ID = "AKIDdeployTESTid0123456789abcdefghij"
SECRET_KEY = "deployTESTkey0123456789abcdefghij"
IM_TOKEN = "test-callback-token-4f1c9e"
IM_SECRET = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e"
SIGNING_KEY = "test-job-signing-key-0123456789"
NAMES = {"im_callback": "im_callback-test-imguard", "audio_result": "audio_result-test-imguard"}

# The SDK warns about answer fields its models do not know: the fake must speak exactly the documented shapes.
pytestmark = pytest.mark.filterwarnings("error:.*fileds are useless")


@pytest.fixture
def fake(scf_server) -> FakeScf:
    scf_server.clear()
    return FakeScf(scf_server, SECRET_ID, SECRET_KEY)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    # Real environment values win over .env (as for `make run`): keep the developer's shell out.
    for name in list(VARIABLES) + list(DEPLOY_NAMES) + ["IMGUARD_SCF_ENDPOINT", "IMGUARD_COS_ENDPOINT"]:
        monkeypatch.delenv(name, raising=False)


def make_build(root: Path, extra: Optional[Dict[str, bytes]] = None) -> Path:
    """What `make build` leaves: build/<function>/index.py and the package next to it."""
    for app in NAMES:
        folder = root / app
        (folder / "imguard").mkdir(parents=True)
        (folder / "index.py").write_text("def main_handler(event, context):\n    return {}\n")
        (folder / "imguard" / "__init__.py").write_text("")
        (folder / ".env").write_text(f"TENCENT_SECRET_KEY={SECRET_KEY}\n")  # a stray .env must never ship
        for name, data in (extra or {}).items():
            (folder / name).write_bytes(data)
    return root


@pytest.fixture
def build(tmp_path) -> Path:
    return make_build(tmp_path / "build")


BASE_ENV = {
    "TENCENT_SECRET_ID": SECRET_ID,
    "TENCENT_SECRET_KEY": SECRET_KEY,
    "STAGE": "test",
    "REGION": "ap-guangzhou",
    "IM_SDKAPPID": "1400000000",
    "IM_CALLBACK_TOKEN": IM_TOKEN,
    "DEADLINE_MS": "1500",
    "REJECT_ERROR_INFO": "message blocked by content policy",
    "COS_BUCKET": "imguard-1250000000",
    "COS_REGION": "ap-guangzhou",
    "CI_BIZTYPE": "",
    "RESULT_CALLBACK_URL": "",
    "JOB_SIGNING_KEY": SIGNING_KEY,
    "IM_SECRET_KEY": IM_SECRET,
}


@pytest.fixture
def env_file(tmp_path) -> Callable[..., Path]:
    def write(**changes: str) -> Path:
        values = dict(BASE_ENV, **changes)
        path = tmp_path / ".env"
        path.write_text("# deploy test\n" + "".join(f"{k}={v}\n" for k, v in values.items() if v is not None))
        return path

    return write


def deploy(capsys, fake: FakeScf, env: Path, build: Path, *extra: str) -> Tuple[int, str, str]:
    code = main(["deploy", "--env-file", str(env), "--build", str(build), "--endpoint", fake.endpoint,
                 "--poll", "0", "--wait", "5", *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def urls_of(fake: FakeScf, name: str) -> List[str]:
    return [json.loads(t["TriggerDesc"])["NetConfig"].get("ExtranetUrl") for t in fake.triggers_of(name)]


def test_first_deploy_creates_both_functions_with_function_urls_and_says_what_to_set(capsys, fake, env_file, build):
    code, out, err = deploy(capsys, fake, env_file(), build)

    assert (code, err) == (0, "")
    expected_env = {k: v for k, v in BASE_ENV.items() if k in VARIABLES and v}
    for app, memory, timeout in (("im_callback", 128, 3), ("audio_result", 128, 30)):
        fn = fake.function(NAMES[app])
        assert (fn["Runtime"], fn["Handler"], fn["MemorySize"], fn["Timeout"]) == \
            ("Python3.9", "index.main_handler", memory, timeout)
        assert (fn["Role"], fn["Type"], fn["Status"]) == ("imguard-scf", "Event", "Active")
        assert fake.variables(NAMES[app]) == expected_env
        assert "index.py" in fn["_code"]["files"] and ".env" not in fn["_code"]["files"]
        [trigger] = fake.triggers_of(NAMES[app])
        assert (trigger["Type"], trigger["Qualifier"]) == ("http", "$LATEST")
        desc = json.loads(trigger["TriggerDesc"])
        assert desc["AuthType"] == "NONE" and desc["NetConfig"]["EnableExtranet"] is True
    # Only the first lookups failed (no such function yet). Every write waited for Active: the
    # fake refuses changes to a function still Creating/Updating.
    assert [(c.action, c.error) for c in fake.calls if c.error] == [("GetFunction", "ResourceNotFound.Function")] * 2
    assert [a for a in fake.actions() if a not in ("GetFunction", "ListTriggers")] == \
        ["CreateFunction", "CreateTrigger"] * 2
    assert {c.region for c in fake.calls} == {"ap-guangzhou"}

    [callback_url] = urls_of(fake, NAMES["im_callback"])
    [result_url] = urls_of(fake, NAMES["audio_result"])
    assert f"im_callback   {callback_url}" in out and f"audio_result  {result_url}" in out
    assert f"回调 URL (callback URL):  {callback_url}" in out
    assert "token the value of IM_CALLBACK_TOKEN in .env" in out
    for command in ("C2C.CallbackBeforeSendMsg", "Group.CallbackBeforeSendMsg", "Group.CallbackAfterSendMsg",
                    "Sns.CallbackPrevFriendAdd", "Profile.CallbackPortraitSet"):
        assert command in out
    assert f"RESULT_CALLBACK_URL={result_url}" in out
    assert "bound to bucket imguard-1250000000" in out and "CI_BIZTYPE" in out
    assert '"ci:CreateAuditingTextJob"' in out
    assert "qcs::ci:ap-guangzhou:uid/1250000000:bucket/imguard-1250000000/*" in out
    assert f"imguard replay tests/events/im --url {callback_url}" in out


def test_second_deploy_updates_in_place_without_a_second_url(capsys, fake, env_file, build):
    assert deploy(capsys, fake, env_file(), build)[0] == 0
    first_urls = {name: urls_of(fake, name) for name in NAMES.values()}
    result_url = first_urls[NAMES["audio_result"]][0]
    fake.calls.clear()

    # The operator follows the instructions: RESULT_CALLBACK_URL in .env, and drops REJECT_ERROR_INFO.
    code, out, err = deploy(capsys, fake, env_file(RESULT_CALLBACK_URL=result_url, REJECT_ERROR_INFO=""), build)

    assert (code, err) == (0, "")
    writes = [c.action for c in fake.writes() if c.error is None]
    assert writes == ["UpdateFunctionCode", "UpdateFunctionConfiguration"] * 2
    assert {name: urls_of(fake, name) for name in NAMES.values()} == first_urls
    variables = fake.variables(NAMES["im_callback"])
    assert variables["RESULT_CALLBACK_URL"] == result_url and "REJECT_ERROR_INFO" not in variables
    assert "variables +RESULT_CALLBACK_URL -REJECT_ERROR_INFO" in out
    assert f"RESULT_CALLBACK_URL is {result_url} (audio_result)" in out

    # Nothing changed since: only the code is sent again.
    fake.calls.clear()
    assert deploy(capsys, fake, env_file(RESULT_CALLBACK_URL=result_url, REJECT_ERROR_INFO=""), build)[0] == 0
    assert [c.action for c in fake.writes()] == ["UpdateFunctionCode"] * 2


def test_dry_run_only_reads_and_prints_the_plan(capsys, fake, env_file, build):
    code, out, err = deploy(capsys, fake, env_file(), build, "--dry-run")

    assert (code, err) == (0, "")
    assert fake.writes() == [] and fake.functions == {}
    assert "Plan (dry run: nothing is changed): region ap-guangzhou, namespace default" in out
    assert "  im_callback-test-imguard (new)\n    CreateFunction: Python3.9, index.main_handler, 128 MB, 3 s, " \
           "role imguard-scf" in out
    assert "    CreateTrigger: Function URL on $LATEST: public, AuthType NONE" in out
    assert "inline" in out

    # Against what a first deployment made, the plan is an update that keeps the URL.
    assert deploy(capsys, fake, env_file(), build)[0] == 0
    fake.calls.clear()
    code, out, _ = deploy(capsys, fake, env_file(), build, "--dry-run")
    assert code == 0 and fake.writes() == []
    assert "  audio_result-test-imguard (exists, Active)\n    UpdateFunctionCode: code " in out
    assert f"Function URL kept: {urls_of(fake, NAMES['audio_result'])[0]}" in out


def test_a_wrong_secret_key_is_refused_by_the_signature_check(capsys, fake, env_file, build):
    code, _, err = deploy(capsys, fake, env_file(TENCENT_SECRET_KEY="not-the-deploy-key-0123456789"), build)

    assert code == 1
    assert "GetFunction failed: AuthFailure.SignatureFailure" in err and "check the deploy key" in err
    assert fake.refused == ["AuthFailure.SignatureFailure"] and fake.calls == [] and fake.functions == {}
    # The same request signed with the right key goes through: the fake really recomputes the signature.
    assert deploy(capsys, fake, env_file(), build, "--dry-run")[0] == 0
    assert fake.refused == ["AuthFailure.SignatureFailure"]
    assert [(c.action, c.error) for c in fake.calls] == [("GetFunction", "ResourceNotFound.Function")] * 2


def test_deploy_credentials_stay_out_of_the_functions_and_the_output(capsys, fake, env_file, build):
    env = env_file(TENCENTCLOUD_SECRET_ID="AKIDsecondKEYid0123456789", TENCENTCLOUD_SECRET_KEY="secondKEYsecret0123456")
    outputs = [deploy(capsys, fake, env, build, "--dry-run"), deploy(capsys, fake, env, build)]

    assert [code for code, _, _ in outputs] == [0, 0]
    secrets = (SECRET_ID, SECRET_KEY, "AKIDsecondKEYid0123456789", "secondKEYsecret0123456")
    for name in NAMES.values():
        stored = json.dumps(fake.function(name), default=str)
        assert not any(secret in stored for secret in secrets)
        assert not any(key.startswith("TENCENT") for key in fake.variables(name))
    printed = "".join(out + err for _, out, err in outputs)
    # Nor the functions' own secrets: the output ends up in CI logs.
    assert not any(secret in printed for secret in secrets + (IM_TOKEN, IM_SECRET, SIGNING_KEY))
    assert "IM_SECRET_KEY" in printed  # named, not shown

    assert deploy(capsys, fake, env, build, "--show-token")[1].count(IM_TOKEN) == 1


def test_a_missing_build_folder_fails_clearly_before_any_call(capsys, fake, env_file, tmp_path):
    code, out, err = deploy(capsys, fake, env_file(), tmp_path / "nowhere")

    assert code == 2 and out == ""
    assert "nowhere/im_callback does not exist: run `make build` (or `make layer`) first" in err
    assert fake.calls == [] and fake.refused == []


def test_code_too_big_to_send_inline_goes_through_cos(capsys, fake, env_file, tmp_path):
    build = make_build(tmp_path / "build", {"blob.bin": os.urandom(8 * 1024 * 1024)})  # incompressible

    code, out, err = deploy(capsys, fake, env_file(), build, "--cos-endpoint", fake.endpoint)

    assert (code, err) == (0, "")
    for app, name in NAMES.items():
        [create] = [c for c in fake.calls if c.action == "CreateFunction" and c.params["FunctionName"] == name]
        cos = create.params["Code"]
        assert "ZipFile" not in cos and create.params["CodeSource"] == "Cos"
        assert cos["CosBucketName"] == "imguard" and cos["CosBucketRegion"] == "ap-guangzhou"
        assert cos["CosObjectName"].startswith(f"/imguard-deploy/{app}-")
        assert cos["CosObjectName"].lstrip("/") in fake.objects
        assert "blob.bin" in fake.function(name)["_code"]["files"]
    assert "uploading im_callback to cos://imguard-1250000000/imguard-deploy/im_callback-" in out


def test_code_too_big_without_a_bucket_is_refused_before_any_call(capsys, fake, env_file, tmp_path):
    build = make_build(tmp_path / "build", {"blob.bin": os.urandom(8 * 1024 * 1024)})

    code, _, err = deploy(capsys, fake, env_file(COS_BUCKET="", COS_REGION=""), build)

    assert code == 2 and "too big to send inline" in err and "--code-bucket" in err
    assert fake.calls == []


def test_a_console_made_url_is_adopted_and_opened_not_duplicated(capsys, fake, env_file, build):
    # An older deployment, and a Function URL someone made in the console with CAM authentication.
    for name in NAMES.values():
        fake.seed_function(name, Role="imguard-scf")
    url = fake.seed_url(NAMES["im_callback"], "console-url",
                        {"AuthType": "CAM", "NetConfig": {"EnableIntranet": False, "EnableExtranet": True}})

    code, out, err = deploy(capsys, fake, env_file(), build)

    assert (code, err) == (0, "")
    [trigger] = fake.triggers_of(NAMES["im_callback"])
    assert trigger["TriggerName"] == "console-url" and json.loads(trigger["TriggerDesc"])["AuthType"] == "NONE"
    assert urls_of(fake, NAMES["im_callback"]) == [url] and f"回调 URL (callback URL):  {url}" in out
    assert "memory 256 -> 128 MB" in out
    assert fake.function(NAMES["im_callback"])["MemorySize"] == 128
    assert [c.action for c in fake.writes() if c.params["FunctionName"] == NAMES["im_callback"]] == \
        ["UpdateFunctionCode", "UpdateFunctionConfiguration", "UpdateTrigger"]


@pytest.mark.parametrize("changes, message", [
    ({"RESULT_CALLBACK_URL": "https://x.example/audio_result", "IM_CALLBACK_TOKEN": ""}, "IM_CALLBACK_TOKEN: required"),
    ({"IM_SDKAPPID": ""}, "IM_SDKAPPID: required"),
    ({"TENCENT_SECRET_KEY": ""}, "TENCENT_SECRET_ID and TENCENT_SECRET_KEY go together"),
    ({"REGION": ""}, "REGION: required"),
])
def test_bad_input_stops_before_any_call(capsys, fake, env_file, build, changes, message):
    code, _, err = deploy(capsys, fake, env_file(**changes), build)

    assert code == 2 and message in err
    assert fake.calls == [] and fake.refused == []


def test_settings_that_cannot_work_in_scf_are_pointed_out(capsys, fake, env_file, build):
    code, out, _ = deploy(capsys, fake, env_file(RULES_PATH="rules.yaml", AUDIT_DSN="sqlite:///.imguard/audit.db"),
                          build, "--dry-run")

    assert code == 0
    assert "note: im_callback-test-imguard: RULES_PATH=rules.yaml is not in" in out
    assert "note: im_callback-test-imguard: AUDIT_DSN is SQLite" in out
    assert ".imguard/audit.db" not in out  # a DSN may hold a password: never printed


def test_a_build_for_another_python_is_refused(capsys, fake, env_file, tmp_path):
    build = make_build(tmp_path / "build", {"_re2.cpython-310-x86_64-linux-gnu.so": b"\x7fELF"})

    code, _, err = deploy(capsys, fake, env_file(), build)

    assert code == 2 and "was built for Python 3.10" in err and "--runtime Python3.10" in err
    assert deploy(capsys, fake, env_file(), build, "--runtime", "Python3.10", "--dry-run")[0] == 0


def test_an_existing_function_on_another_runtime_is_not_silently_kept(capsys, fake, env_file, build):
    fake.seed_function(NAMES["im_callback"], Runtime="Python3.10")

    code, _, err = deploy(capsys, fake, env_file(), build)

    assert code == 2 and "runs Python3.10 and SCF cannot change a function's runtime" in err
    assert fake.writes() == []


def test_a_failed_update_is_reported_with_scfs_reason(capsys, fake, env_file, build):
    fn = fake.seed_function(NAMES["im_callback"])
    fn.update(Status="UpdateFailed", StatusReasons=[{"ErrorCode": "InternalError", "ErrorMessage": "disk full"}])

    code, _, err = deploy(capsys, fake, env_file(), build)

    assert code == 2 and "is UpdateFailed (InternalError: disk full)" in err


def test_plan_names_variables_never_values():
    spec = deploy_plan.FunctionSpec("im_callback", "im_callback-dev-imguard", "Python3.9", 128, 3, None, "d",
                                    (("IM_SECRET_KEY", "new-secret"),))
    current = deploy_plan.FunctionState("im_callback-dev-imguard", "Active", "Python3.9", "index.main_handler",
                                        128, 3, "", (("IM_SECRET_KEY", "old-secret"), ("FAIL_MODE", "open")))

    changes = deploy_plan.configuration_changes(spec, current)

    assert changes == ["variables -FAIL_MODE ~IM_SECRET_KEY"]
    assert "secret" not in repr(spec) + repr(current)
    with pytest.raises(DeployError, match="cannot change a function's runtime"):
        deploy_plan.plan_function(spec, deploy_plan.UrlSpec(), replace(current, runtime="Python3.10"), (), "inline")


def test_a_function_still_updating_is_waited_for(capsys, fake, env_file, build):
    # A deployment from the console still running: SCF refuses changes until it is Active.
    fake.seed_function(NAMES["im_callback"], MemorySize=128).update(Status="Updating", _pending=3)

    code, _, err = deploy(capsys, fake, env_file(), build)

    assert (code, err) == (0, "")
    assert [c for c in fake.writes() if c.error] == []


def test_a_missing_execution_role_is_named(capsys, fake, env_file, build):
    fake.roles = {"some-other-role"}

    code, _, err = deploy(capsys, fake, env_file(), build)

    assert code == 1
    assert "CreateFunction failed: ResourceNotFound.Role" in err and "--role ''" in err


def test_without_a_role_ci_needs_explicit_keys(capsys, fake, env_file, build):
    code, _, err = deploy(capsys, fake, env_file(), build, "--role", "")

    assert code == 2 and "COS_SECRET_ID: required with COS_BUCKET (or run with an SCF role)" in err
    assert fake.calls == []

    assert deploy(capsys, fake, env_file(COS_SECRET_ID="AKIDci0123", COS_SECRET_KEY="ci-key-0123456"),
                  build, "--role", "")[0] == 0
    assert fake.function(NAMES["im_callback"])["Role"] == ""


def test_credentials_can_come_from_the_shell_alone(capsys, fake, env_file, build, monkeypatch, tmp_path):
    # CI pipelines export variables instead of writing .env; the shell wins over the file.
    monkeypatch.setenv("TENCENTCLOUD_SECRET_ID", SECRET_ID)
    monkeypatch.setenv("TENCENTCLOUD_SECRET_KEY", SECRET_KEY)
    monkeypatch.setenv("REGION", "ap-guangzhou")
    monkeypatch.setenv("IM_SDKAPPID", "1400000001")

    assert deploy(capsys, fake, env_file(TENCENT_SECRET_ID=None, TENCENT_SECRET_KEY=None, REGION="ap-shanghai"),
                  build)[0] == 0
    assert fake.variables(NAMES["im_callback"])["IM_SDKAPPID"] == "1400000001"

    monkeypatch.delenv("TENCENTCLOUD_SECRET_ID")
    monkeypatch.delenv("TENCENTCLOUD_SECRET_KEY")
    code, _, err = deploy(capsys, fake, tmp_path / "absent.env", build)
    assert code == 2 and "no deploy credentials" in err and "absent.env does not exist" in err


def test_the_fake_checks_the_signed_payload_and_host(capsys, fake, env_file, build):
    # Replay the SDK's last request as it was, then with one byte of the body or the Host changed.
    assert deploy(capsys, fake, env_file(), build, "--dry-run")[0] == 0
    headers, body = fake.last_signed
    tampered_body = body.replace(b"audio_result", b"audio_resulT")
    refusals = []
    for changed_headers, changed_body in ((headers, body), (headers, tampered_body),
                                          (dict(headers, Host="scf.tencentcloudapi.com"), body)):
        answer = requests.post(fake.endpoint, data=changed_body, headers=changed_headers, timeout=5).json()
        refusals.append(answer["Response"].get("Error", {}).get("Code"))

    assert refusals == ["ResourceNotFound.Function", "AuthFailure.SignatureFailure", "AuthFailure.SignatureFailure"]


def test_the_code_zip_carries_the_builds_bytecode_but_no_stray_cache(build):
    import py_compile
    import zipfile
    from io import BytesIO

    from imguard.deploy.package import package

    # GIVEN a build the target interpreter compiled (unchecked hash), and a cache some other run left
    folder = build / "im_callback"
    py_compile.compile(str(folder / "index.py"), cfile=str(folder / "__pycache__" / "index.cpython-39.pyc"),
                       invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    py_compile.compile(str(folder / "imguard" / "__init__.py"),
                       cfile=str(folder / "imguard" / "__pycache__" / "__init__.cpython-311.pyc"),
                       invalidation_mode=py_compile.PycInvalidationMode.TIMESTAMP)

    names = zipfile.ZipFile(BytesIO(package(build, "im_callback").data)).namelist()

    assert "__pycache__/index.cpython-39.pyc" in names
    assert "imguard/__pycache__/__init__.cpython-311.pyc" not in names
    assert ".env" not in names
