"""RULES_URL=cos://...: a private COS object read with the function's own credentials.

The real cos-python-sdk-v5 signs the request; the fake bucket checks that signature the way COS
documents it, so a wrong key is refused there, not assumed away here.
"""
from __future__ import annotations

import pytest

from imguard.config import ConfigError, Settings
from imguard.rules.source import RulesSource
from tests.conftest import load_event, log_lines, wait_for_log
from tests.fakes.cos import FakeCOS
from tests.flows import send_c2c

ROLE = dict(TENCENTCLOUD_SECRETID="AKIDrole", TENCENTCLOUD_SECRETKEY="role-secret", TENCENTCLOUD_SESSIONTOKEN="tok-1")
RULES = "block: [代开发票]\n"


@pytest.fixture
def bucket(cos_server) -> FakeCOS:
    cos_server.clear()
    fake = FakeCOS(cos_server, ROLE["TENCENTCLOUD_SECRETID"], ROLE["TENCENTCLOUD_SECRETKEY"],
                   ROLE["TENCENTCLOUD_SESSIONTOKEN"])
    fake.put("rules/prod.yaml", RULES.encode())
    return fake


def cos_env(bucket: FakeCOS, **changes):
    return dict(ROLE, RULES_URL="cos://imguard-1250000000/rules/prod.yaml", COS_REGION="ap-guangzhou",
                CI_DOMAIN=bucket.domain, CI_SCHEME="http", **changes)


def text(words):
    return dict(load_event("im/c2c_before_text"), MsgBody=[{"MsgType": "TIMTextElem", "MsgContent": {"Text": words}}])


def test_rules_in_a_private_bucket_are_read_with_the_functions_role(make_function, bucket):
    # GIVEN im_callback in SCF with its execution role's temporary credentials, and rules in a private object
    handler = make_function(ci=False, **cos_env(bucket))

    # WHEN a message with a word on those rules arrives
    answer = send_c2c(handler, text("代开发票，加我"))

    # THEN it is blocked: the object was read through a signed request carrying the role's token
    assert answer["ErrorCode"] == 1
    [first] = bucket.requests[:1]
    assert first["authorization"].startswith("q-sign-algorithm=sha1&q-ak=AKIDrole&")
    assert first["x-cos-security-token"] == "tok-1"


def test_a_refused_signature_keeps_the_rules_in_force_and_says_why(make_function, bucket, tmp_path, capsys):
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text("block: [赌博]\n", encoding="utf-8")
    handler = make_function(ci=False, RULES_PATH=str(rules_file),
                            **cos_env(bucket, TENCENTCLOUD_SECRETKEY="a-stolen-but-wrong-secret"))

    assert send_c2c(handler, text("网上赌博"))["ErrorCode"] == 1  # the file's rules
    assert send_c2c(handler, text("代开发票"))["ErrorCode"] == 0  # the bucket's never arrived
    [failed] = [l for l in log_lines(capsys) if l["event"] == "rules.fetch_failed"]
    assert failed["detail"].startswith("COS answered HTTP 403 SignatureDoesNotMatch")
    assert failed["url"] == "cos://imguard-1250000000/rules/prod.yaml"


def test_an_unchanged_object_costs_a_304_and_a_changed_one_is_swapped_in(bucket, capsys):
    settings = Settings.from_env(dict(cos_env(bucket), IM_SDKAPPID="1400000000"))
    source = RulesSource(url=settings.rules_url, refresh_s=60, cos=settings.cos)
    assert source.current().scan("代开发票").action == "block"

    assert source.refresh() is False  # unchanged: one HEAD, no GET
    assert [r["method"] for r in bucket.requests] == ["GET", "HEAD"]

    bucket.put("rules/prod.yaml", "block: [刷单]\n".encode())
    assert source.refresh() is True
    assert source.current().scan("刷单兼职").action == "block"
    assert wait_for_log(capsys, "rules.loaded")


@pytest.mark.parametrize("env, variable", [
    (dict(RULES_URL="cos://imguard-1250000000/rules.yaml", COS_REGION="ap-guangzhou"), "COS_SECRET_ID"),
    (dict(ROLE, RULES_URL="cos://imguard-1250000000/rules.yaml"), "COS_REGION"),
    (dict(ROLE, RULES_URL="cos://Not_A_Bucket/rules.yaml", COS_REGION="ap-guangzhou"), "RULES_URL"),
    (dict(ROLE, RULES_URL="cos://imguard-1250000000/", COS_REGION="ap-guangzhou"), "RULES_URL"),
])
def test_a_cos_rules_url_without_what_it_needs_fails_at_start_up(env, variable):
    with pytest.raises(ConfigError) as raised:
        Settings.from_env(dict(env, IM_SDKAPPID="1400000000"))

    assert raised.value.variable == variable


def test_a_cos_rules_url_alone_does_not_turn_ci_on(bucket):
    settings = Settings.from_env(dict(cos_env(bucket), IM_SDKAPPID="1400000000"))

    assert settings.cos.enabled is False and settings.cos.secret_id == "AKIDrole"
