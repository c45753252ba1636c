"""HTTP sessions for talking to cluster endpoints.

trust_env is off: a REQUESTS_CA_BUNDLE or HTTPS_PROXY meant for the internet
must neither replace the cluster's CA nor route cluster traffic elsewhere.
"""

from __future__ import annotations

from pathlib import Path

import requests


def session(ca: Path | str | None = None, cert: Path | str | None = None,
            key: Path | str | None = None) -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    s.verify = str(ca) if ca else True
    if cert and key:
        s.cert = (str(cert), str(key))
    return s
