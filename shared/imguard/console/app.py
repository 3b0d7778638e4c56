"""The console's pages. Reading is the audit store's; acting (keep, withdraw, lift) is the review queue's
and the sanctions' own code, so the console decides nothing the command line would not.

Access: with CONSOLE_TOKEN set, every page but the sign-in asks for it (a signed session cookie after);
without one the console refuses to start anywhere but loopback (settings.py). Every form carries a
CSRF token (Flask-WTF), so another site cannot make a signed-in moderator's browser act.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from datetime import datetime, timezone
from typing import Any, Dict, Optional
from urllib.parse import urlsplit

from flask import Flask, abort, redirect, render_template, request, session, url_for
from flask_wtf.csrf import CSRFProtect

from imguard.audit.report import local_time, milliseconds, why, zone
from imguard.audit.store import AuditStore
from imguard.console import chart, queries
from imguard.console.i18n import LANGUAGES, translate
from imguard.console.settings import ConsoleSettings
from imguard.review.queue import ReviewError, ReviewQueue

WINDOWS = ("1h", "1d", "7d", "30d", "all")
SCENES = ("c2c", "group", "group:Public", "group:Work", "group:Meeting", "group:AVChatRoom", "group:Community",
          "friend", "profile", "group_info")
PAGE = 100
SESSION_S = 12 * 3600  # a sign-in lasts a working day


def create_app(settings: ConsoleSettings, store: Optional[AuditStore] = None, secure_cookies: bool = True) -> Flask:
    """``secure_cookies``: the session cookie only over HTTPS (SCF's Function URL, a console behind TLS); off
    for `imguard console` on loopback, where the browser talks plain HTTP to this machine."""
    app = Flask(__name__)
    # The session is signed with a key made from the token, so that every instance of an SCF console agrees
    # on it and changing the token signs everybody out. The sign-in page hands anyone a cookie signed with
    # it, so the key comes through scrypt: each offline guess at the token costs what a sign-in does.
    # Without a token (loopback), a key for this process.
    secret = hashlib.scrypt(settings.token.encode(), salt=b"imguard-console-session", n=2**14, r=8, p=1) \
        if settings.token else secrets.token_bytes(32)
    app.config.update(SECRET_KEY=secret, SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
                      SESSION_COOKIE_SECURE=secure_cookies, PERMANENT_SESSION_LIFETIME=SESSION_S,
                      WTF_CSRF_TIME_LIMIT=None)
    if settings.token is None:
        # No sign-in is safe only for this machine's own browser: a page elsewhere that points its own name at
        # 127.0.0.1 (DNS rebinding) sends another Host, and is refused.
        app.config["TRUSTED_HOSTS"] = ["127.0.0.1", "localhost", "::1", "[::1]"]
    CSRFProtect(app)
    store = store or AuditStore(settings.dsn)
    tz = zone(settings.tz_name)
    signed_in = hmac.new(secret, b"signed-in", hashlib.sha256).hexdigest()

    def language() -> str:
        chosen = request.args.get("lang") or session.get("lang")
        if chosen in LANGUAGES:
            return chosen
        return request.accept_languages.best_match(["zh", "en"]) or "zh"

    @app.context_processor
    def helpers() -> Dict[str, Any]:
        lang = language()
        return {"t": lambda key: translate(key, lang), "lang": lang, "other_lang": "en" if lang == "zh" else "zh",
                "when": lambda moment: local_time(moment, tz).strftime("%Y-%m-%d %H:%M:%S") if moment else "",
                "tz": settings.tz_name, "ms": milliseconds, "why": why, "colour": chart.colour,
                "needs_sign_in": settings.token is not None, "can_act": settings.im is not None}

    @app.after_request
    def remember_language(response: Any) -> Any:
        if request.args.get("lang") in LANGUAGES:
            session["lang"] = request.args["lang"]  # in the session: one cookie (SCF's answer carries one)
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Content-Security-Policy"] = "default-src 'self'; style-src 'self' 'unsafe-inline'"
        return response

    @app.before_request
    def require_sign_in() -> Any:
        if settings.token is None or request.endpoint in ("sign_in", "static"):
            return None
        fresh = time.time() - session.get("since", 0) < SESSION_S  # a copied cookie stops working, at the latest
        if not (fresh and hmac.compare_digest(session.get("auth", ""), signed_in)):
            return redirect(url_for("sign_in", next=request.full_path))
        return None

    @app.route("/login", methods=["GET", "POST"])
    def sign_in() -> Any:
        wrong = False
        if request.method == "POST":
            given = request.form.get("token", "")
            if settings.token is not None and hmac.compare_digest(given.encode(), settings.token.encode()):
                lang = session.get("lang")
                session.clear()
                session.update(auth=signed_in, since=int(time.time()), lang=lang,
                               name=request.form.get("name", "").strip()[:64] or "console")
                target = request.args.get("next") or "/"
                return redirect(target if _local_path(target) else "/")
            wrong = True
            time.sleep(0.5)  # slows guessing; the token is long anyway
        return render_template("login.html", wrong=wrong), 401 if wrong else 200

    @app.post("/logout")
    def sign_out() -> Any:
        session.clear()
        return redirect(url_for("sign_in"))

    @app.get("/")
    def overview() -> Any:
        hours = 24 * 7 if request.args.get("span") == "week" else 24
        data = queries.overview(store, _now(), hours, tz)
        bars = chart.stacked_bars(data.hours, data.by_action, label_every=3 if hours == 24 else 24)
        return render_template("overview.html", data=data, bars=bars, span="week" if hours > 24 else "day",
                               actions=chart.ordered(list(data.by_action)))

    @app.get("/decisions")
    def decisions() -> Any:
        filters = {name: request.args.get(name, "").strip() or None
                   for name in ("user", "group_id", "action", "scene", "label", "rule")}
        window = request.args.get("window") if request.args.get("window") in WINDOWS else "1d"
        rows = store.recent(since=queries.since_for(window, _now()), limit=PAGE, **filters)
        return render_template("decisions.html", rows=rows, filters=filters, window=window, windows=WINDOWS,
                               actions=store.actions())

    @app.get("/decisions/<int:decision_id>")
    def decision(decision_id: int) -> Any:
        rows = store.recent(decision_id=decision_id, limit=1)
        if not rows:
            abort(404)
        return render_template("decision.html", row=rows[0])

    @app.get("/review")
    def review() -> Any:
        status = request.args.get("status", "pending")
        rows = ReviewQueue(store).list(None if status == "all" else status, PAGE)
        return render_template("review.html", rows=rows, status=status, message=request.args.get("message"))

    @app.post("/review/<int:item_id>")
    def review_decide(item_id: int) -> Any:
        queue, by = ReviewQueue(store), session.get("name", "console")
        try:
            if request.form.get("decision") == "withdraw":
                if settings.im is None:
                    abort(409)
                from imguard.im.rest import ImRestClient

                status = queue.withdraw(item_id, by, ImRestClient.from_settings(settings.im))
            else:
                status = queue.keep(item_id, by)
            message = f"#{item_id}: {status}"
        except ReviewError as exc:
            message = f"#{item_id}: {exc}"
        return redirect(url_for("review", message=message))

    @app.get("/sanctions")
    def sanctions() -> Any:
        rows = store.recent(scene="sanction", user=request.args.get("user") or None, limit=PAGE)
        return render_template("sanctions.html", rows=rows, message=request.args.get("message"))

    @app.post("/sanctions/lift")
    def sanctions_lift() -> Any:
        if settings.im is None:
            abort(409)
        from imguard.im.rest import ImRestClient
        from imguard.sanctions.enforce import lift

        user, group = request.form.get("user", "").strip(), request.form.get("group", "").strip()
        if not user:
            abort(400)
        action = lift(ImRestClient.from_settings(settings.im), store, user, group, session.get("name", "console"),
                      via="console")
        return redirect(url_for("sanctions", message=f"{user}: {action}"))

    @app.route("/try", methods=["GET", "POST"])
    def try_text() -> Any:
        from imguard.rules.book import Scene
        from imguard.rules.source import load_file

        text, scene, result, policy = request.form.get("text", ""), request.form.get("scene", "c2c"), None, None
        if request.method == "POST" and settings.rules_path and text:
            book = load_file(settings.rules_path)
            policy = book.policy(Scene.parse(scene if scene in SCENES else "c2c"))
            result = policy.scan(text).as_dict(text)
        return render_template("try.html", text=text, scene=scene, scenes=SCENES, result=result,
                               policy=policy.describe() if policy else None, has_rules=bool(settings.rules_path))

    return app


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _local_path(target: str) -> bool:
    """Only a path on this site: never send a signed-in moderator elsewhere (open redirect)."""
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc and target.startswith("/") and not target.startswith("//")
