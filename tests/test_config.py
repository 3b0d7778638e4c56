"""Configuration errors stop the cold start and name the variable."""
import pytest

from imguard.config import ConfigError, Settings

BASE = {"IM_SDKAPPID": "1400000000"}
WITH_CI = dict(BASE, COS_BUCKET="imguard-1250000000", COS_REGION="ap-guangzhou", COS_SECRET_ID="id", COS_SECRET_KEY="key")


@pytest.mark.parametrize(
    "env, variable",
    [
        ({}, "IM_SDKAPPID"),
        ({"IM_SDKAPPID": "abc"}, "IM_SDKAPPID"),
        (dict(BASE, REJECT_ERROR_CODE="1"), "REJECT_ERROR_CODE"),
        (dict(BASE, REJECT_ERROR_CODE="10150"), "REJECT_ERROR_CODE"),
        (dict(BASE, GROUP_REJECT_ERROR_CODE="120001"), "GROUP_REJECT_ERROR_CODE"),
        (dict(BASE, DEADLINE_MS="2500"), "DEADLINE_MS"),
        (dict(BASE, FAIL_MODE="maybe"), "FAIL_MODE"),
        (dict(BASE, SUSPICIOUS_ACTION="review"), "SUSPICIOUS_ACTION"),
        (dict(BASE, BLOCK_ACTION="drop"), "BLOCK_ACTION"),
        (dict(BASE, CALLBACK_MAX_SKEW_S="-5"), "CALLBACK_MAX_SKEW_S"),
        (dict(WITH_CI, COS_BUCKET="Not A Bucket"), "COS_BUCKET"),
        ({k: v for k, v in WITH_CI.items() if k != "COS_REGION"}, "COS_REGION"),
        ({k: v for k, v in WITH_CI.items() if k != "COS_SECRET_ID"}, "COS_SECRET_ID"),
        ({k: v for k, v in WITH_CI.items() if k != "COS_SECRET_KEY"}, "COS_SECRET_KEY"),
        (dict(WITH_CI, CI_SCHEME="ftp"), "CI_SCHEME"),
        (dict(BASE, OVERSIZE_ACTION="ignore"), "OVERSIZE_ACTION"),
        (dict(BASE, CALLBACK_MAX_SKEW_S="86400"), "CALLBACK_MAX_SKEW_S"),
        (dict(BASE, JOB_SIGNING_KEY="k" * 20, JOB_SIGNING_KEY_PREVIOUS="short"), "JOB_SIGNING_KEY_PREVIOUS"),
        (dict(BASE, JOB_SIGNING_KEY_PREVIOUS="k" * 20), "JOB_SIGNING_KEY"),
        (dict(WITH_CI, RESULT_CALLBACK_URL="https://x.example.com/r", JOB_SIGNING_KEY="k" * 20), "IM_CALLBACK_TOKEN"),
        (dict(BASE, PROFILE_REMEDIATE="true", IM_SECRET_KEY="s" * 64), "IM_CALLBACK_TOKEN"),
    ],
)
def test_bad_configuration_names_the_variable(env, variable):
    with pytest.raises(ConfigError) as raised:
        Settings.from_env(env)

    assert raised.value.variable == variable
    assert str(raised.value).startswith(variable + ":")


def test_the_scf_role_credentials_are_used_when_no_keys_are_given():
    env = dict(
        BASE,
        COS_BUCKET="imguard-1250000000",
        COS_REGION="ap-guangzhou",
        TENCENTCLOUD_SECRETID="role-id",
        TENCENTCLOUD_SECRETKEY="role-key",
        TENCENTCLOUD_SESSIONTOKEN="role-token",
    )

    cos = Settings.from_env(env).cos

    assert (cos.secret_id, cos.secret_key, cos.token) == ("role-id", "role-key", "role-token")


def test_secrets_stay_out_of_the_settings_repr():
    settings = Settings.from_env(dict(WITH_CI, IM_CALLBACK_TOKEN="tok-123", COS_SECRET_KEY="key-456"))

    assert "tok-123" not in repr(settings) and "key-456" not in repr(settings)


def test_a_function_with_bad_configuration_fails_at_import(make_function):
    with pytest.raises(ConfigError, match="FAIL_MODE"):
        make_function(FAIL_MODE="sometimes")


def test_readme_documents_every_variable():
    from imguard.config import VARIABLES
    from tests.conftest import ROOT

    readme = (ROOT / "README.md").read_text(encoding="utf-8")

    assert [name for name in VARIABLES if f"| `{name}` |" not in readme] == []


def test_the_defaults_follow_ims_advice_and_fail_closed_on_oversize():
    settings = Settings.from_env(BASE)

    assert settings.max_skew_s == 60  # IM: refuse a RequestTime more than about a minute old
    assert settings.oversize_action == "block"
    assert settings.review.verification_keys == ()


def test_both_signing_keys_verify_and_only_the_new_one_signs():
    settings = Settings.from_env(dict(BASE, JOB_SIGNING_KEY="n" * 20, JOB_SIGNING_KEY_PREVIOUS="o" * 20))

    assert settings.review.signing_key == "n" * 20
    assert settings.review.verification_keys == ("n" * 20, "o" * 20)
