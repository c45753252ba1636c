"""HTTP sessions for talking to cluster endpoints.

trust_env is off: a REQUESTS_CA_BUNDLE or HTTPS_PROXY meant for the internet
must neither replace the cluster's CA nor route cluster traffic elsewhere.

Every new connection still makes a TLS handshake, but shares an SSL context with
the others of the same trust (CA, client certificate, verified or not): urllib3
would build one per connection and, for an unverified one, load the system's whole
CA store into it. That was most of the CPU a probe every 100 ms cost.
"""

from __future__ import annotations

import functools
import os
import ssl
from pathlib import Path
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.ssl_ import create_urllib3_context

# Liveness probes do not verify (as haproxy's own check does not), and kcm and scheduler serve
# self-signed certificates, as on kubeadm clusters: not a warning per request.
urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)


def session(ca: Path | str | None = None, cert: Path | str | None = None,
            key: Path | str | None = None) -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    s.verify = str(ca) if ca else True
    if cert and key:
        s.cert = (str(cert), str(key))
    s.mount("https://", _SharedContexts())
    return s


class _SharedContexts(HTTPAdapter):
    def build_connection_pool_key_attributes(self, request: requests.PreparedRequest, verify: bool | str,
                                             cert: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:
        host, pool = super().build_connection_pool_key_attributes(request, verify, cert)
        if "ssl_context" not in pool:   # requests' own preloaded one for verify=True stays
            files = tuple(pool.pop(k, None) for k in ("ca_certs", "ca_cert_dir", "cert_file", "key_file"))
            pool["ssl_context"] = _context(pool.get("cert_reqs") == "CERT_NONE", files,
                                           tuple(_mtime(f) for f in files))
        return host, pool


def _mtime(path: str | None) -> int:
    """Part of the cache key: a CA or certificate replaced on disk (a renewal) gets a new context."""
    try:
        return os.stat(path).st_mtime_ns if path else 0
    except OSError:
        return 0


@functools.lru_cache(maxsize=64)
def _context(unverified: bool, files: tuple[str | None, ...], mtimes: tuple[int, ...]) -> ssl.SSLContext:
    ca, ca_dir, cert, key = files
    ctx = create_urllib3_context(cert_reqs=ssl.CERT_NONE if unverified else ssl.CERT_REQUIRED)
    if ca or ca_dir:
        ctx.load_verify_locations(ca, ca_dir)
    if cert:
        ctx.load_cert_chain(cert, key)
    return ctx
