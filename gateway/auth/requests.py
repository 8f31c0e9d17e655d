"""Requests as authlib's framework-neutral core expects them, built from what FastAPI already parsed."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc6749.requests import OAuth2Payload


class Payload(OAuth2Payload):
    """Request parameters with their repeats kept, so repeated parameters can be refused."""

    def __init__(self, items: Iterable[tuple[str, str]]) -> None:
        self._datalist: defaultdict[str, list[str]] = defaultdict(list)
        for key, value in items:
            self._datalist[key].append(value)
        self._data = {k: v[0] for k, v in self._datalist.items()}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


class HttpRequest(OAuth2Request):
    """An already-parsed HTTP request, as authlib's framework-neutral core expects it."""

    def __init__(self, method: str, url: str, headers: Mapping[str, str], *,
                 args: Iterable[tuple[str, str]] = (), form: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__(method, url, headers=headers)
        self._args, self._form = Payload(args), Payload(form)
        self.payload = self._args if method == "GET" else self._form

    @property
    def args(self) -> dict[str, str]:
        return self._args.data

    @property
    def form(self) -> dict[str, str]:
        return self._form.data

