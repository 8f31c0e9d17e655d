"""The sign-in page of the authorization endpoint (``/oauth/authorize``).

GET validates the authorization request (client, exact redirect URI, PKCE S256, scope) with authlib
and shows a plain HTML form; POST checks the username and password and redirects back to the
client with a one-time code. No session is kept: the form carries the authorization request in a
signed ``login_state`` (``gateway/auth/pages.py``), bound to a random cookie.
"""

from __future__ import annotations

import datetime as dt
import html
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc6749.errors import OAuth2Error
from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, RedirectResponse, Response

from gateway.addresses import source_of
from gateway.auth import lockout, people
from gateway.auth.known import KnownSources
from gateway.auth.pages import FORM_LIFETIME, MESSAGES, SECURITY_HEADERS, STYLE, LoginState, template, choose_language
from gateway.auth.people import LoginOutcome
from gateway.auth.requests import HttpRequest
from gateway.auth.server import AuthorizationServer
from gateway.auth.throttle import FailureThrottle, log_failure, log_throttled, pseudonym, source_key
from gateway.store import keys as store
from gateway.store.connections import SyncConnection, SyncPool

COOKIE = "segin_login"


@dataclass
class Attempt:
    """What the worker thread decided about one submitted form."""

    outcome: LoginOutcome | None = None
    location: str | None = None  # where to redirect (a code, or an OAuth error for the client)
    error: OAuth2Error | None = None  # an invalid request that cannot be redirected
    wrong_org: bool = False
    client_id: str = ""


class LoginFlow:
    def __init__(self, server: AuthorizationServer, pool: SyncPool, secret: bytes, issuer: str,
                 per_ip: FailureThrottle, *, secure_cookie: bool) -> None:
        self.server, self.pool, self.secret, self.issuer = server, pool, secret, issuer
        self.state = LoginState(secret)
        self.secure_cookie = secure_cookie
        self.authorize_url = f"{issuer}/oauth/authorize"
        self.per_ip = per_ip  # the token endpoint's: one budget of failures per address
        self.known = KnownSources(pool, secret)  # who signed in from where lately: not refused by that budget

    # GET /oauth/authorize

    async def show(self, request: Request) -> Response:
        """Validate the authorization request; show the sign-in form (or send the client its error)."""
        params = list(request.query_params.multi_items())
        lang = choose_language(request.query_params.get("ui_locales"), request.headers.get("accept-language"))
        checked = await run_in_threadpool(self._validate, params, dict(request.headers))
        if isinstance(checked, Attempt):
            return self._refusal(checked, lang)
        cookie = request.cookies.get(COOKIE) or secrets.token_urlsafe(32)
        response = self._form(params, lang, cookie, client_id=checked)
        self._set_cookie(response, cookie)
        return response

    def _validate(self, params: list[tuple[str, str]], headers: dict[str, str]) -> str | Attempt:
        """The client id when the request is valid, else what to answer."""
        oauth_request = HttpRequest("GET", self.authorize_url, headers, args=params)
        try:
            grant = self.server.get_consent_grant(oauth_request)
        except OAuth2Error as error:
            return self._oauth_error(oauth_request, error)
        return grant.client.client_id

    def _oauth_error(self, oauth_request: HttpRequest, error: OAuth2Error) -> Attempt:
        """Errors go back to the client when its redirect URI was verified (RFC 6749 §4.1.2.1), else on a page."""
        if error.redirect_uri:
            _, _, headers = self.server.handle_error_response(oauth_request, error)
            return Attempt(location=headers["Location"])
        return Attempt(error=error)

    # POST /oauth/authorize

    async def submit(self, request: Request) -> Response:
        """Check the signed form, the username and password; redirect to the client with a code."""
        form = await request.form()
        ip = request.client.host if request.client else "unknown"
        source = source_of(request)
        opened = self.state.open(str(form.get("login_state", "")), request.cookies.get(COOKIE))
        if opened is None:
            lang = choose_language(None, request.headers.get("accept-language"))
            return self._message(lang, "expired", status=400)
        params, lang = opened
        username = str(form.get("username", ""))[:128]
        password = str(form.get("password", ""))
        user_hash = pseudonym(self.secret, username)
        source_hash = pseudonym(self.secret, f"source:{source}")  # the database keeps no address
        retry_after = self.per_ip.retry_after(source_key(source))
        if retry_after and not await run_in_threadpool(self.known.known, "person", user_hash, source):
            log_throttled("authorize", ip, retry_after)
            return self._message(lang, "throttled", status=429, seconds=retry_after,
                                 headers={"Retry-After": str(retry_after)})
        if len(password) > 1024:
            password = ""  # no argon2 work on absurd input: a wrong password like any other
        attempt = await run_in_threadpool(self._sign_in, params, dict(request.headers), username, password,
                                          (user_hash, source_hash))
        if attempt.outcome is LoginOutcome.OK:
            await run_in_threadpool(self.known.remember, "person", user_hash, source)
        if attempt.location:
            return self._redirect(attempt.location)
        if attempt.error is not None:
            return self._message(lang, "invalid_request", status=400, detail=attempt.error.description)
        if attempt.wrong_org:
            log_failure("authorize", ip, "wrong_organisation", username_hash=user_hash, client_id=attempt.client_id)
            return self._message(lang, "wrong_org", status=403)
        outcome = self._count_failure(attempt.outcome, user_hash, ip, source)
        cookie = request.cookies.get(COOKIE) or secrets.token_urlsafe(32)
        response = self._form(params, lang, cookie, client_id=dict(params).get("client_id", ""),
                              error=outcome, username=username)
        self._set_cookie(response, cookie)
        return response

    def _sign_in(self, params: list[tuple[str, str]], headers: dict[str, str], username: str,
                 password: str, keys: tuple[str, str]) -> Attempt:
        """Revalidate the authorization request, check the password, issue the code (worker thread)."""
        oauth_request = HttpRequest("GET", self.authorize_url, headers, args=params)
        try:
            grant = self.server.get_consent_grant(oauth_request)
        except OAuth2Error as error:
            return self._oauth_error(oauth_request, error)
        with self.pool.connection() as conn:
            outcome, person = self._check_password(conn, username, password, *keys)
        if outcome is not LoginOutcome.OK or person is None:
            return Attempt(outcome=outcome)
        if not grant.client.serves(person):
            return Attempt(wrong_org=True, client_id=grant.client.client_id)
        status, body, headers_out = self.server.create_authorization_response(grant.request, grant_user=person,
                                                                              grant=grant)
        if "Location" not in headers_out:  # e.g. the client was revoked meanwhile: nowhere safe to redirect
            return Attempt(error=OAuth2Error(description=str(body.get("error_description", "")) if isinstance(
                body, dict) else "", status_code=status))
        return Attempt(outcome=LoginOutcome.OK, location=headers_out["Location"])

    @staticmethod
    def _check_password(conn: Any, username: str, password: str, account: str,
                        source: str) -> tuple[LoginOutcome, people.Person | None]:
        """The password check under ``gateway.auth.lockout``'s rule; unknown usernames are counted alike."""
        now = dt.datetime.now(dt.timezone.utc)
        lockout.serialise(conn, account)
        if lockout.refused(conn, account, source, now):
            return LoginOutcome.LOCKED, None
        outcome, person = people.authenticate(conn, username, password, now)
        if outcome is LoginOutcome.OK:
            lockout.succeeded(conn, account, source)
            return outcome, person
        return (LoginOutcome.LOCKED if lockout.failed(conn, account, source, now) else outcome), None

    def _count_failure(self, outcome: LoginOutcome | None, user_hash: str, ip: str, source: str) -> str:
        """Count a failed sign-in against the address, and log it. Returns the message key."""
        self.per_ip.failed(source_key(source))
        reason = outcome.value if outcome else "bad_credentials"
        log_failure("authorize", ip, reason, username_hash=user_hash)
        return "locked" if outcome is LoginOutcome.LOCKED else "bad_credentials"

    # rendering

    def _form(self, params: list[tuple[str, str]], lang: str, cookie: str, *, client_id: str,
              error: str | None = None, username: str = "") -> HTMLResponse:
        text = MESSAGES[lang]
        other = "en" if lang == "fr" else "fr"
        switch = [(k, v) for k, v in params if k != "ui_locales"] + [("ui_locales", other)]
        alert = f'<p id="login-error" role="alert" class="error">{html.escape(text[error])}</p>' if error else ""
        page = template("login.html").substitute(
            lang=lang, style=STYLE, title=html.escape(text["title"]), heading=html.escape(text["heading"]),
            intro=html.escape(text["intro"].format(client=client_id)), alert=alert,
            action="/oauth/authorize", login_state=html.escape(self.state.sign(params, cookie, lang)),
            username_label=html.escape(text["username"]), password_label=html.escape(text["password"]),
            username=html.escape(username), submit=html.escape(text["submit"]),
            describedby=' aria-describedby="login-error" aria-invalid="true"' if error else "",
            switch_href=html.escape("/oauth/authorize?" + urlencode(switch)), switch_lang=other,
            switch_label=html.escape(text["switch"]),
        )
        return HTMLResponse(page, headers=SECURITY_HEADERS)

    def _message(self, lang: str, key: str, *, status: int, detail: str | None = None,
                 headers: dict[str, str] | None = None, **values: Any) -> HTMLResponse:
        text = MESSAGES[lang]
        page = template("message.html").substitute(
            lang=lang, style=STYLE, title=html.escape(text["title"]), heading=html.escape(text["error_heading"]),
            message=html.escape(text[key].format(**values)),
            detail=f'<p lang="en"><small>{html.escape(detail)}</small></p>' if detail else "",
        )
        return HTMLResponse(page, status_code=status, headers={**SECURITY_HEADERS, **(headers or {})})

    def _refusal(self, attempt: Attempt, lang: str) -> Response:
        if attempt.location:
            return self._redirect(attempt.location)
        detail = attempt.error.description if attempt.error is not None else None
        return self._message(lang, "invalid_request", status=400, detail=detail)

    def _redirect(self, location: str) -> Response:
        """Back to the client, naming this issuer (RFC 9207) so a client of several servers cannot be mixed up."""
        location = add_params_to_uri(location, [("iss", self.issuer)])
        return RedirectResponse(location, status_code=302, headers=SECURITY_HEADERS)

    def _set_cookie(self, response: Response, cookie: str) -> None:
        response.set_cookie(COOKIE, cookie, max_age=FORM_LIFETIME * 3, path="/oauth/authorize", httponly=True,
                            samesite="strict", secure=self.secure_cookie)


def load_secret(pool: SyncPool, name: str = "login-state") -> bytes:
    """The server secret for signing forms (generated once, shared by every gateway replica)."""
    with pool.connection() as conn:
        return read_secret(conn, name)


def read_secret(conn: SyncConnection, name: str = "login-state") -> bytes:
    """The secret also keys the pseudonyms of usernames and addresses (logs, ``gateway.auth.lockout``)."""
    return store.secret(conn, name)
