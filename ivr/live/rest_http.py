"""The twilio library's HTTP client interface on a urllib3 connection pool.

The twilio library sends through ``requests`` by default, which for every request merges
the environment's settings (proxies, certificates) by scanning ``os.environ`` and
prepares the request through several layers of hooks: about 2.5 ms of CPU per REST call
in a loaded worker, 12 % of a worker's CPU on the live call path
(``scripts/bench_live.py``). This client does the same request with urllib3, which
``requests`` itself runs on, reading the environment once, when it is built:

- proxies: ``HTTPS_PROXY`` / ``HTTP_PROXY`` and ``NO_PROXY``, as ``requests`` reads them;
- certificates: ``REQUESTS_CA_BUNDLE`` or ``CURL_CA_BUNDLE``, else certifi's bundle, as
  ``requests`` does.

Connections are kept alive and reused (one pool per host). A request is not retried here
once it may have reached the server; the outbox retries with backoff.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.request
from typing import Any
from urllib.parse import urlencode, urlsplit

import certifi
import urllib3
from twilio.http import HttpClient
from twilio.http.response import Response

_logger = logging.getLogger("twilio.http_client")


class PooledHttpClient(HttpClient):  # type: ignore[misc]
    """What :class:`twilio.http.http_client.TwilioHttpClient` does, on urllib3 directly."""

    def __init__(self, timeout: float | None = None, maxsize: int = 16,
                 logger: logging.Logger = _logger) -> None:
        super().__init__(logger, False, timeout)
        ca = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        self._pool_args: dict[str, Any] = {"maxsize": maxsize, "block": False,
                                           "cert_reqs": "CERT_REQUIRED",
                                           "ca_certs": ca or certifi.where()}
        self._proxies = urllib.request.getproxies_environment()
        self._direct = urllib3.PoolManager(**self._pool_args)
        self._route: dict[str, urllib3.PoolManager] = {}
        # As requests: no retry once the request may have been sent (read=False).
        self._retries = urllib3.Retry(0, read=False, redirect=False)

    def _manager(self, scheme: str, host: str) -> urllib3.PoolManager:
        """The pool a URL goes through: direct, or its scheme's proxy (decided once per host)."""
        key = f"{scheme}://{host}"
        manager = self._route.get(key)
        if manager is None:
            proxy = self._proxies.get(scheme)
            if not proxy or urllib.request.proxy_bypass(host):
                manager = self._direct
            else:
                manager = urllib3.ProxyManager(proxy, **self._pool_args)
            self._route[key] = manager
        return manager

    def request(self, method: str, url: str, params: dict[str, object] | None = None,
                data: dict[str, object] | None = None,
                headers: dict[str, str] | None = None, auth: tuple[str, str] | None = None,
                timeout: float | None = None, allow_redirects: bool = False) -> Response:
        if timeout is None:
            timeout = self.timeout
        elif timeout <= 0:
            raise ValueError(timeout)
        headers = dict(headers or {})
        self.log_request({"method": method.upper(), "url": url, "params": params,
                          "headers": headers})
        if params:
            url += ("&" if "?" in url else "?") + urlencode(params, doseq=True)
        if auth is not None:
            headers.update(urllib3.make_headers(basic_auth=f"{auth[0]}:{auth[1]}"))
        body: bytes | None = None
        if data:
            kind = headers.get("Content-Type", "")
            if kind in ("application/json", "application/scim+json"):
                body = json.dumps(data).encode()
            else:
                body = urlencode(data, doseq=True).encode()
                headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        parts = urlsplit(url)
        manager = self._manager(parts.scheme, parts.hostname or "")
        resp = manager.request(method.upper(), url, body=body, headers=headers,
                               timeout=urllib3.Timeout(connect=timeout, read=timeout),
                               retries=self._retries, redirect=allow_redirects)
        self.log_response(resp.status, resp)
        out = Response(int(resp.status), resp.data.decode("utf-8", "replace"), resp.headers)
        self._test_only_last_response = out
        return out
