"""The sign-in page's parts that hold no state: texts in French and English, the language choice,
security headers, and the signed ``login_state`` that carries an authorization request in the form.

A form cannot be forged (HMAC with a server secret), replayed from another browser (bound to a
random cookie) or reused after ``FORM_LIFETIME``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path
from string import Template

FORM_LIFETIME = 600  # seconds a sign-in form stays valid
LANGUAGES = ("fr", "en")
TEMPLATES = Path(__file__).parent / "templates"
STYLE = ("body{font-family:system-ui,sans-serif;margin:0;padding:1rem;color:#111;background:#fafafa}"
         "main{max-width:26rem;margin:2rem auto;background:#fff;padding:1.5rem;border:1px solid #ccc}"
         "label{display:block;font-weight:600;margin-bottom:.25rem}"
         "input{width:100%;box-sizing:border-box;font-size:1rem;padding:.5rem;border:1px solid #555}"
         "button{font-size:1rem;padding:.6rem 1.2rem}"
         ".error{color:#a00000;border-left:4px solid #a00000;padding-left:.5rem}"
         "input:focus,button:focus,a:focus{outline:3px solid #1a5fb4;outline-offset:2px}")
_STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Content-Security-Policy": f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; frame-ancestors 'none';"
                               " base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

MESSAGES: dict[str, dict[str, str]] = {
    "fr": {
        "title": "Connexion — Segin",
        "heading": "Connexion à Segin",
        "intro": "L’application « {client} » demande à utiliser Segin en votre nom.",
        "username": "Nom d’utilisateur",
        "password": "Mot de passe",
        "submit": "Se connecter",
        "switch": "English",
        "bad_credentials": "Nom d’utilisateur ou mot de passe incorrect.",
        "locked": "Trop de tentatives ont échoué : ce compte est verrouillé pendant 15 minutes. Réessayez plus tard "
                  "ou contactez l’administrateur de votre organisation.",
        "wrong_org": "Ce compte ne peut pas se connecter à cette application.",
        "expired": "Cette page de connexion a expiré. Retournez à l’application et recommencez.",
        "invalid_request": "Cette demande de connexion n’est pas valide. Retournez à l’application et recommencez.",
        "throttled": "Trop de tentatives depuis cette adresse. Réessayez dans {seconds} secondes.",
        "error_heading": "Connexion impossible",
    },
    "en": {
        "title": "Sign in — Segin",
        "heading": "Sign in to Segin",
        "intro": "The application “{client}” asks to use Segin on your behalf.",
        "username": "Username",
        "password": "Password",
        "submit": "Sign in",
        "switch": "Français",
        "bad_credentials": "Wrong username or password.",
        "locked": "Too many failed attempts: this account is locked for 15 minutes. Try again later or contact "
                  "your organisation’s administrator.",
        "wrong_org": "This account cannot sign in to this application.",
        "expired": "This sign-in page has expired. Go back to the application and start again.",
        "invalid_request": "This sign-in request is not valid. Go back to the application and start again.",
        "throttled": "Too many attempts from this address. Try again in {seconds} seconds.",
        "error_heading": "Cannot sign in",
    },
}


def choose_language(ui_locales: str | None, accept_language: str | None) -> str:
    """``ui_locales`` (OpenID Connect) first, then Accept-Language by preference, else French."""
    for tag in (ui_locales or "").split():
        base = tag.split("-")[0].lower()
        if base in LANGUAGES:
            return base
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate((accept_language or "").split(",")):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        ranked.append((-quality, position, tag.split("-")[0].lower()))
    for quality, _, base in sorted(ranked):
        if base in LANGUAGES and quality < 0:
            return base
    return "fr"


class LoginState:
    """Signs the authorization request into the form, bound to the browser's login cookie."""

    def __init__(self, secret: bytes) -> None:
        self.secret = secret

    def sign(self, params: list[tuple[str, str]], cookie: str, lang: str, now: float | None = None) -> str:
        body = json.dumps({"p": params, "t": int(now or time.time()), "c": self._bind(cookie), "l": lang},
                          separators=(",", ":")).encode()
        encoded = base64.urlsafe_b64encode(body).decode().rstrip("=")
        return f"{encoded}.{self._mac(encoded)}"

    def open(self, token: str, cookie: str | None, now: float | None = None) -> tuple[list[tuple[str, str]], str] | None:
        """The signed parameters and language, or None if forged, expired or from another browser."""
        encoded, _, mac = token.partition(".")
        if not cookie or not hmac.compare_digest(mac, self._mac(encoded)):
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
            fresh = 0 <= (now or time.time()) - data["t"] <= FORM_LIFETIME
            if not fresh or not hmac.compare_digest(data["c"], self._bind(cookie)):
                return None
            return [(str(k), str(v)) for k, v in data["p"]], data["l"] if data["l"] in LANGUAGES else "fr"
        except (ValueError, KeyError, TypeError):
            return None

    def _mac(self, encoded: str) -> str:
        digest = hmac.new(self.secret, b"login-state." + encoded.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def _bind(self, cookie: str) -> str:
        return hashlib.sha256(cookie.encode()).hexdigest()[:32]


def template(name: str) -> Template:
    return Template((TEMPLATES / name).read_text(encoding="utf-8"))
