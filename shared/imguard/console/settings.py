"""What the console reads from the environment, checked at start-up, every bad variable named at once."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional

from imguard.config import BUNDLED_RULES, ConfigError, Settings, audit_dsn

LOOPBACK = ("127.0.0.1", "localhost", "::1")

# The console's own variables; it also reads AUDIT_DSN, RULES_PATH and, to act through IM, IM_SDKAPPID,
# IM_SECRET_KEY, IM_API_BASE and IM_ADMIN_IDENTIFIER as the functions do.
CONSOLE_VARIABLES = {
    "CONSOLE_TOKEN": "the sign-in token (16+ characters); required unless the console is bound to loopback",
    "CONSOLE_TZ": "the time zone times are shown in (IANA name, default Asia/Shanghai)",
}


@dataclass(frozen=True)
class ConsoleSettings:
    dsn: str = field(repr=False)
    token: Optional[str] = field(default=None, repr=False)
    tz_name: str = "Asia/Shanghai"
    rules_path: Optional[str] = None
    im: Optional[Settings] = field(default=None, repr=False)  # present when IM can be called (withdraw, lift)

    @classmethod
    def from_env(cls, environ: Optional[Mapping[str, str]] = None, host: Optional[str] = None) -> "ConsoleSettings":
        """``host``: where `imguard console` listens (None on SCF, which is never loopback)."""
        from imguard.audit.report import zone

        env = os.environ if environ is None else environ
        problems: Dict[str, str] = {}
        dsn: Any = None
        try:
            dsn = audit_dsn(env.get("AUDIT_DSN", "").strip())
        except ConfigError as exc:
            problems.update(exc.problems)
        if not dsn and "AUDIT_DSN" not in problems:
            problems["AUDIT_DSN"] = "required: the console reads the audit store the functions write"
        token = env.get("CONSOLE_TOKEN", "").strip() or None
        if token is None and host not in LOOPBACK:
            problems["CONSOLE_TOKEN"] = "required unless the console listens on loopback only (127.0.0.1)"
        elif token is not None and len(token) < 16:
            problems["CONSOLE_TOKEN"] = "use at least 16 random characters"
        tz_name = env.get("CONSOLE_TZ", "").strip() or "Asia/Shanghai"
        try:
            zone(tz_name)
        except ValueError as exc:
            problems["CONSOLE_TZ"] = str(exc)
        im = None
        if env.get("IM_SECRET_KEY", "").strip():
            try:
                im = Settings.from_env(dict(env)).require("IM_SECRET_KEY")
            except ConfigError as exc:
                problems.update(exc.problems)
        if problems:
            raise ConfigError.of(problems)
        rules = env.get("RULES_PATH", "").strip() or None
        root = env.get("USER_CODE_ROOT", "").strip()  # on SCF: the rules `make build` bundled, as the functions read them
        if rules is None and root and os.path.isfile(os.path.join(root, BUNDLED_RULES)):
            rules = os.path.join(root, BUNDLED_RULES)
        return cls(dsn, token, tz_name, rules, im)
