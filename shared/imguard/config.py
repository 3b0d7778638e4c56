"""Configuration: every environment variable imguard reads, parsed and checked once.

Bad values raise one ``ConfigError`` naming every bad variable, so a misconfigured
function fails at cold start instead of answering IM with nonsense, and its operator
fixes everything in one go rather than one variable per deploy.
"""
from __future__ import annotations

import os
import re
from urllib.parse import urlsplit
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, FrozenSet, Mapping, Optional, Tuple, TypeVar

T = TypeVar("T")

# IM's custom before-send codes (im-callback-protocol.md §3, §2.5).
C2C_CUSTOM_CODES = range(120001, 130001)
GROUP_CUSTOM_CODES = range(10100, 10201)
FRIEND_DENY_CODES = range(38000, 39001)

_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9-]*-\d+$")
# A private COS object for the rules, read with the function's own credentials.
COS_URL = r"cos://([a-z0-9][a-z0-9-]*-\d+)/(\S+)"


class ConfigError(ValueError):
    """Configuration variables are missing or invalid; the message names each. ``problems`` maps
    each bad variable to what is wrong with it; ``variable`` is the first."""

    def __init__(self, variable: str, problem: str, more: Optional[Mapping[str, str]] = None):
        self.problems: Dict[str, str] = {variable: problem, **(more or {})}
        super().__init__("; ".join(f"{name}: {text}" for name, text in self.problems.items()))
        self.variable = variable

    @classmethod
    def of(cls, problems: Mapping[str, str]) -> "ConfigError":
        (first, problem), *rest = problems.items()
        return cls(first, problem, dict(rest))


@dataclass(frozen=True)
class Variable:
    name: str
    default: str
    meaning: str


# Every variable imguard reads. README's table and serverless.yml are checked against it.
VARIABLES: Dict[str, Variable] = {
    v.name: v
    for v in (
        Variable("IM_SDKAPPID", "(required)", "SDKAppID of your IM app; callbacks naming another get 403"),
        Variable("IM_CALLBACK_TOKEN", "", "callback auth token from the IM console; when set, Sign and RequestTime are required "
                 "(required with RESULT_CALLBACK_URL or PROFILE_REMEDIATE)"),
        Variable("CALLBACK_MAX_SKEW_S", "60", "how far RequestTime may be from now, in seconds (IM recommends about a minute)"),
        Variable("DEADLINE_MS", "1500", "answer IM within this many ms, whatever CI is doing (50..1900)"),
        Variable("FAIL_MODE", "open", "when CI fails or is late: open allows the message, closed blocks it"),
        Variable("OVERSIZE_ACTION", "block", "content left unjudged by a cap (image count, CI's text limit, media count, "
                 "nesting): block or allow"),
        Variable("SUSPICIOUS_ACTION", "allow", "CI Result 2 (suspicious): allow, block, or review (deliver and queue "
                 "for a person; needs AUDIT_DSN)"),
        Variable("BLOCK_ACTION", "reject", "reject tells the sender; silent drops the message and the sender thinks it went out"),
        Variable("REJECT_ERROR_CODE", "", "custom ErrorCode for blocked C2C messages (120001..130000)"),
        Variable("GROUP_REJECT_ERROR_CODE", "", "custom ErrorCode for blocked group messages (10100..10200)"),
        Variable("REJECT_ERROR_INFO", "message blocked by content policy", "ErrorInfo sent with a rejection; the client shows it"),
        Variable("WHITELIST_USERS", "", "comma-separated UserIDs whose messages skip moderation"),
        Variable("COS_BUCKET", "", "BucketName-APPID used for CI; unset turns CI off"),
        Variable("COS_REGION", "", "bucket region, e.g. ap-guangzhou (required with COS_BUCKET unless CI_DOMAIN is set)"),
        Variable("COS_SECRET_ID", "SCF role", "API key id for CI; defaults to the function role's TENCENTCLOUD_SECRETID"),
        Variable("COS_SECRET_KEY", "SCF role", "API key secret for CI; defaults to the function role's TENCENTCLOUD_SECRETKEY"),
        Variable("CI_BIZTYPE", "", "CI moderation policy (BizType) from the CI console; empty uses the default policy"),
        Variable("CI_DOMAIN", "", "send CI (and cos:// RULES_URL) requests to this host[:port] instead of the bucket's domain"),
        Variable("CI_SCHEME", "https", "http or https for CI requests"),
        Variable("VERDICT_CACHE_S", "300", "keep CI's verdicts on identical texts and image URLs this many seconds (0 turns it off)"),
        Variable("RULES_PATH", "bundled", "YAML file of local block/replace/allow rules; in SCF the rules.yaml `make build` "
                 "bundled beside index.py, when there is one"),
        Variable("RULES_URL", "", "where to re-read the rules while running: cos://BucketName-APPID/key (private, "
                 "read with the function's credentials) or an http(s) URL"),
        Variable("RULES_REFRESH_S", "60", "re-read RULES_URL at most this often, in seconds"),
        Variable("RESULT_CALLBACK_URL", "", "public URL of audio_result; set it to review audio and video asynchronously"),
        Variable("JOB_SIGNING_KEY", "", "secret (16+ characters) signing the job reference sent to CI; both functions need the same"),
        Variable("JOB_SIGNING_KEY_PREVIOUS", "", "the key before a rotation: job references it signed are still accepted"),
        Variable("FILE_REVIEW", "false", "also review TIMFileElem files whose name says audio or video"),
        Variable("VERIFY_WITH_QUERY", "true", "audio_result re-reads the verdict from CI by JobId instead of trusting the posted body"),
        Variable("IM_API_BASE", "https://console.tim.qq.com", "IM REST API host of your app's data centre"),
        Variable("IM_ADMIN_IDENTIFIER", "administrator", "IM app admin account the REST calls are made as"),
        Variable("IM_SECRET_KEY", "", "IM app secret key (for UserSig); required by audio_result and PROFILE_REMEDIATE"),
        Variable("FRIEND_REJECT_CODE", "38000", "ResultCode for a denied friend request (38000..39000)"),
        Variable("PROFILE_REMEDIATE", "false", "overwrite a violating nickname, signature or group field through the IM REST API"),
        Variable("PROFILE_PLACEHOLDER", "***", "what a violating profile or group field is overwritten with"),
        Variable("AUDIT_DSN", "", "SQL store for the audit trail (sqlite:///path, postgresql://..., mysql://...); unset keeps only the log"),
        Variable("AUDIT_STORE_CONTENT", "false", "keep the judged text and URLs in clear in the SQL store"),
        Variable("REDIS_URL", "", "Redis for flood and sanction counters shared by every instance "
                 "(redis://:password@10.0.0.6:6379/0); unset counts per instance"),
        Variable("REDIS_TIMEOUT_MS", "50", "longest a message waits on Redis (5..500); slower or down, the flood checks "
                 "and the ladder are skipped for it, never the answer changed"),
        Variable("AUDIT_WAIT_MS", "100", "longest an answer waits for its audit record to be stored (0..1000); the rest is written after"),
    )
}


# What SCF itself sets (scf-serverless.md §A1): the role's credentials and where the code lies.
ROLE_KEYS = ("TENCENTCLOUD_SECRETID", "TENCENTCLOUD_SECRETKEY", "TENCENTCLOUD_SESSIONTOKEN")  # an execution role's
_PLATFORM = ROLE_KEYS + ("USER_CODE_ROOT",)
BUNDLED_RULES = "rules.yaml"


class _Env:
    """Reads typed values from an environment mapping. A bad value is noted against its variable (the first
    problem of each) and its default used, so that one pass finds every bad variable."""

    def __init__(self, environ: Mapping[str, str]):
        self._environ = environ
        self.problems: Dict[str, str] = {}

    def fail(self, name: str, problem: str) -> None:
        self.problems.setdefault(name, problem)

    def guarded(self, make: Callable[[], T], default: T) -> T:
        """``make()``, or ``default`` with its ConfigError noted."""
        try:
            return make()
        except ConfigError as exc:
            for name, problem in exc.problems.items():
                self.fail(name, problem)
            return default

    def opt(self, name: str) -> Optional[str]:
        assert name in VARIABLES or name in _PLATFORM, f"{name} is not in VARIABLES"
        value = self._environ.get(name, "").strip()
        return value or None

    def str(self, name: str, default: str = "") -> str:
        return self.opt(name) or default

    def int(self, name: str, default: Optional[int], valid: Optional[range] = None) -> Optional[int]:
        raw = self.opt(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            self.fail(name, f"expected an integer, got {raw!r}")
            return default
        if valid is not None and value not in valid:
            self.fail(name, f"{value} is outside {valid.start}..{valid.stop - 1}")
            return default
        return value

    def bool(self, name: str, default: bool) -> bool:
        raw = self.opt(name)
        if raw is None:
            return default
        lowered = raw.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        self.fail(name, f"expected true or false, got {raw!r}")
        return default

    def choice(self, name: str, default: str, choices: Tuple[str, ...]) -> str:
        value = self.str(name, default).lower()
        if value not in choices:
            self.fail(name, f"expected one of {', '.join(choices)}, got {value!r}")
            return default
        return value

    def url(self, name: str) -> Optional[str]:
        value = self.opt(name)
        if value is not None and not re.match(r"^https?://[^/\s]+", value):
            self.fail(name, f"expected an http(s) URL, got {value!r}")
            return None
        return value.rstrip("/") if value else None


@dataclass(frozen=True)
class CosSettings:
    """Where and as whom to call COS content moderation (数据万象 CI)."""

    bucket: Optional[str] = None
    region: Optional[str] = None
    secret_id: str = field(default="", repr=False)
    secret_key: str = field(default="", repr=False)
    token: Optional[str] = field(default=None, repr=False)
    domain: Optional[str] = None
    scheme: str = "https"
    biz_type: Optional[str] = None

    @property
    def enabled(self) -> bool:
        return self.bucket is not None

    def sdk_options(self, timeout_s: float) -> Dict[str, Any]:
        """CosConfig's keyword arguments for these settings (CI and cos:// rules alike)."""
        options: Dict[str, Any] = dict(SecretId=self.secret_id, SecretKey=self.secret_key, Token=self.token,
                                       Scheme=self.scheme, Timeout=timeout_s)
        if self.domain:
            options["Domain"] = self.domain
        if self.region:
            options["Region"] = self.region
        return options


@dataclass(frozen=True)
class ReviewSettings:
    """Asynchronous audio/video review and the withdrawal of what it finds."""

    callback_url: Optional[str] = None
    signing_key: str = field(default="", repr=False)
    previous_signing_key: str = field(default="", repr=False)
    file_review: bool = False
    verify_with_query: bool = True

    @property
    def enabled(self) -> bool:
        return self.callback_url is not None

    @property
    def verification_keys(self) -> Tuple[str, ...]:
        """Keys a job reference may be signed with: the current one first, then the one it replaced."""
        return tuple(key for key in (self.signing_key, self.previous_signing_key) if key)


@dataclass(frozen=True)
class ImApiSettings:
    """How to call the IM REST API (withdrawals, profile and group remediation)."""

    base_url: str = "https://console.tim.qq.com"
    admin: str = "administrator"
    secret_key: str = field(default="", repr=False)


@dataclass(frozen=True)
class AuditSettings:
    dsn: Optional[str] = field(default=None, repr=False)  # may hold a database password
    store_content: bool = False
    wait_ms: int = 100


@dataclass(frozen=True)
class Settings:
    """Everything both functions read from the environment."""

    sdk_app_id: int
    callback_token: Optional[str] = field(default=None, repr=False)
    max_skew_s: int = 60
    deadline_ms: int = 1500
    fail_mode: str = "open"
    oversize_action: str = "block"
    suspicious_action: str = "allow"
    block_action: str = "reject"
    reject_error_code: Optional[int] = None
    group_reject_error_code: Optional[int] = None
    reject_error_info: str = "message blocked by content policy"
    whitelist_users: FrozenSet[str] = frozenset()
    rules_path: Optional[str] = None
    rules_url: Optional[str] = None
    rules_refresh_s: int = 60
    verdict_cache_s: int = 300
    friend_reject_code: int = 38000
    profile_remediate: bool = False
    profile_placeholder: str = "***"
    cos: CosSettings = CosSettings()
    review: ReviewSettings = ReviewSettings()
    im_api: ImApiSettings = ImApiSettings()
    audit: AuditSettings = AuditSettings()
    redis_url: Optional[str] = field(default=None, repr=False)  # may hold a password
    redis_timeout_ms: int = 50

    @classmethod
    def from_env(cls, environ: Optional[Mapping[str, str]] = None) -> "Settings":
        env = _Env(os.environ if environ is None else environ)
        settings = cls._read(env)
        if env.problems:
            raise ConfigError.of(env.problems)
        return settings

    @classmethod
    def _read(cls, env: "_Env") -> "Settings":
        sdk_app_id = env.int("IM_SDKAPPID", None, range(1, 2**32))
        if sdk_app_id is None:
            env.fail("IM_SDKAPPID", "required: the SDKAppID of your IM application")
        cos = env.guarded(lambda: _cos_settings(env), CosSettings())
        review = env.guarded(lambda: _review_settings(env), ReviewSettings())
        if review.enabled and not cos.enabled:
            env.fail("COS_BUCKET", "required with RESULT_CALLBACK_URL: CI reviews the audio and video")
        im_api = ImApiSettings(
            base_url=env.url("IM_API_BASE") or ImApiSettings.base_url,
            admin=env.str("IM_ADMIN_IDENTIFIER", ImApiSettings.admin),
            secret_key=env.str("IM_SECRET_KEY"),
        )
        profile_remediate = env.bool("PROFILE_REMEDIATE", False)
        if profile_remediate and not im_api.secret_key:
            env.fail("IM_SECRET_KEY", "required with PROFILE_REMEDIATE=true: the REST API needs a UserSig")
        callback_token = env.opt("IM_CALLBACK_TOKEN")
        if callback_token is None and (review.enabled or profile_remediate):
            # Without it anyone holding the URL can describe a message that was never sent and have
            # imguard act on it: withdraw someone else's message, overwrite someone's nickname.
            env.fail("IM_CALLBACK_TOKEN", "required with RESULT_CALLBACK_URL or PROFILE_REMEDIATE=true: "
                     "turn on callback authentication in the IM console and copy its token here")
        return cls(
            sdk_app_id=sdk_app_id or 0,
            callback_token=callback_token,
            # IM's own advice: refuse a RequestTime more than about a minute old.
            max_skew_s=env.int("CALLBACK_MAX_SKEW_S", 60, range(1, 3601)),
            # IM waits 2 s; the answer has to leave well before that.
            deadline_ms=env.int("DEADLINE_MS", 1500, range(50, 1901)),
            fail_mode=env.choice("FAIL_MODE", "open", ("open", "closed")),
            oversize_action=env.choice("OVERSIZE_ACTION", "block", ("block", "allow")),
            suspicious_action=env.guarded(lambda: _suspicious_action(env), "allow"),
            block_action=env.choice("BLOCK_ACTION", "reject", ("reject", "silent")),
            reject_error_code=env.int("REJECT_ERROR_CODE", None, C2C_CUSTOM_CODES),
            group_reject_error_code=env.int("GROUP_REJECT_ERROR_CODE", None, GROUP_CUSTOM_CODES),
            reject_error_info=env.str("REJECT_ERROR_INFO", cls.reject_error_info),
            whitelist_users=frozenset(
                user.strip() for user in env.str("WHITELIST_USERS").split(",") if user.strip()
            ),
            rules_path=env.opt("RULES_PATH") or _bundled_rules(env),
            rules_url=env.guarded(lambda: _rules_url(env), None),
            rules_refresh_s=env.int("RULES_REFRESH_S", 60, range(1, 86401)),
            verdict_cache_s=env.int("VERDICT_CACHE_S", 300, range(0, 86401)),
            friend_reject_code=env.int("FRIEND_REJECT_CODE", 38000, FRIEND_DENY_CODES),
            profile_remediate=profile_remediate,
            profile_placeholder=env.str("PROFILE_PLACEHOLDER", cls.profile_placeholder),
            cos=cos,
            review=review,
            im_api=im_api,
            audit=AuditSettings(
                dsn=env.guarded(lambda: audit_dsn(env.opt("AUDIT_DSN")), None),
                store_content=env.bool("AUDIT_STORE_CONTENT", False),
                wait_ms=env.int("AUDIT_WAIT_MS", 100, range(0, 1001)),
            ),
            redis_url=env.guarded(lambda: _redis_url(env), None),
            redis_timeout_ms=env.int("REDIS_TIMEOUT_MS", 50, range(5, 501)),
        )

    def require(self, *names: str) -> "Settings":
        """Fail unless the variables one function cannot work without are set."""
        present = {
            "COS_BUCKET": self.cos.enabled,
            "JOB_SIGNING_KEY": bool(self.review.signing_key),
            "IM_SECRET_KEY": bool(self.im_api.secret_key),
        }
        missing = {name: "required by this function" for name in names if not present[name]}
        if missing:
            raise ConfigError.of(missing)
        return self


def _redis_url(env: _Env) -> Optional[str]:
    value = env.opt("REDIS_URL")
    if value is None:
        return None
    problem = "expected redis://[:password@]host:port[/db] or rediss://..."  # never echo it: it may hold a password
    try:
        parts = urlsplit(value)
        port, path = parts.port, parts.path.strip("/")
    except ValueError:  # a port that is not a number
        raise ConfigError("REDIS_URL", problem) from None
    if parts.scheme not in ("redis", "rediss") or not parts.hostname or (path and not path.isdigit()):
        raise ConfigError("REDIS_URL", problem + (f" (port {port})" if port is not None and port > 65535 else ""))
    return value


def _suspicious_action(env: _Env) -> str:
    action = env.choice("SUSPICIOUS_ACTION", "allow", ("allow", "block", "review"))
    if action == "review" and not env.opt("AUDIT_DSN"):
        raise ConfigError("SUSPICIOUS_ACTION", "review needs AUDIT_DSN: the review queue lives in the SQL store")
    return action


def _bundled_rules(env: _Env) -> Optional[str]:
    """The rules `make build` put beside index.py; SCF says where that is in USER_CODE_ROOT."""
    root = env.opt("USER_CODE_ROOT")
    path = os.path.join(root, BUNDLED_RULES) if root else None
    return path if path and os.path.isfile(path) else None


def _rules_url(env: _Env) -> Optional[str]:
    value = env.opt("RULES_URL")
    if value is not None and value.startswith("cos://"):
        if not re.fullmatch(COS_URL, value):
            raise ConfigError("RULES_URL", f"expected cos://BucketName-APPID/key such as "
                              f"cos://imguard-1250000000/rules.yaml, got {value.split('?', 1)[0]!r}")
        return value
    return env.url("RULES_URL")


def _cos_settings(env: _Env) -> CosSettings:
    """Where and as whom to reach COS: for CI (COS_BUCKET) and for rules at a cos:// RULES_URL."""
    bucket = env.opt("COS_BUCKET")
    rules_on_cos = (env.opt("RULES_URL") or "").startswith("cos://")
    if bucket is None and not rules_on_cos:
        return CosSettings()
    needed_by = "COS_BUCKET" if bucket is not None else "a cos:// RULES_URL"
    problems: Dict[str, str] = {}
    if bucket is not None and not _BUCKET_RE.match(bucket):
        problems["COS_BUCKET"] = f"expected BucketName-APPID such as imguard-1250000000, got {bucket!r}"
    domain = env.opt("CI_DOMAIN")
    region = env.opt("COS_REGION")
    if region is None and domain is None:
        problems["COS_REGION"] = f"required with {needed_by} (for example ap-guangzhou)"
    # Explicit keys win; otherwise the temporary credentials of the SCF execution role.
    secret_id = env.opt("COS_SECRET_ID") or env.opt("TENCENTCLOUD_SECRETID")
    secret_key = env.opt("COS_SECRET_KEY") or env.opt("TENCENTCLOUD_SECRETKEY")
    token = None if env.opt("COS_SECRET_ID") else env.opt("TENCENTCLOUD_SESSIONTOKEN")
    if not secret_id:
        problems["COS_SECRET_ID"] = f"required with {needed_by} (or run with an SCF role)"
    if not secret_key:
        problems["COS_SECRET_KEY"] = f"required with {needed_by} (or run with an SCF role)"
    if problems:
        raise ConfigError.of(problems)
    return CosSettings(
        bucket=bucket,
        region=region,
        secret_id=secret_id,
        secret_key=secret_key,
        token=token,
        domain=domain,
        scheme=env.choice("CI_SCHEME", "https", ("http", "https")),
        biz_type=env.opt("CI_BIZTYPE"),
    )


def _review_settings(env: _Env) -> ReviewSettings:
    callback_url = env.url("RESULT_CALLBACK_URL")
    signing_key = env.str("JOB_SIGNING_KEY")
    previous = env.str("JOB_SIGNING_KEY_PREVIOUS")
    for name, key in (("JOB_SIGNING_KEY", signing_key), ("JOB_SIGNING_KEY_PREVIOUS", previous)):
        if key and len(key) < 16:
            env.fail(name, "use at least 16 random characters")
    if callback_url and not signing_key:
        env.fail("JOB_SIGNING_KEY", "required with RESULT_CALLBACK_URL")
    if previous and not signing_key:
        env.fail("JOB_SIGNING_KEY", "required with JOB_SIGNING_KEY_PREVIOUS: the new key signs, the old one only verifies")
    return ReviewSettings(
        callback_url=callback_url,
        signing_key=signing_key,
        previous_signing_key=previous,
        file_review=env.bool("FILE_REVIEW", False),
        verify_with_query=env.bool("VERIFY_WITH_QUERY", True),
    )


# Driverless schemes get the drivers imguard ships (psycopg 3, PyMySQL), not SQLAlchemy's defaults.
_DSN_DRIVERS = {
    "sqlite": "sqlite",
    "postgres": "postgresql+psycopg",
    "postgresql": "postgresql+psycopg",
    "postgresql+psycopg": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mysql+pymysql": "mysql+pymysql",
    "mariadb": "mysql+pymysql",
    "mariadb+pymysql": "mysql+pymysql",
}


def audit_dsn(dsn: Optional[str]) -> Optional[str]:
    """AUDIT_DSN with imguard's driver named, or ConfigError (which never quotes the value)."""
    if not dsn:
        return None
    scheme, sep, rest = dsn.partition("://")
    driver = _DSN_DRIVERS.get(scheme.lower())
    if not sep or driver is None or not rest:
        # Never echo the value: it may carry a password.
        raise ConfigError("AUDIT_DSN", "expected sqlite:///path, postgresql://user@host/db or mysql://user@host/db")
    return f"{driver}://{rest}"
