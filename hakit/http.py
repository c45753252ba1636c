"""HTTP sessions for talking to cluster endpoints.

trust_env is off: a REQUESTS_CA_BUNDLE or HTTPS_PROXY meant for the internet
must neither replace the cluster's CA nor route cluster traffic elsewhere.
"""

from __future__ import annotations

from pathlib import Path

import requests
import urllib3

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
    return s
