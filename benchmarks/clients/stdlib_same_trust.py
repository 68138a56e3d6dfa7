"""Floor with qlikm2m's trust: the standard library (http.client + ssl) doing what a warm command does.

Trust as qlikm2m's: the OS's CA file plus the extra CA (QLIK_CA_BUNDLE), verified by OpenSSL. The
token is read from qlikm2m's token cache file (the one file under QLIKM2M_CACHE_DIR/tokens), as a
warm command reads it. One TLS connection; redirects (the 302 of tenants/me, the 301 of users/me)
are followed on it.

    stdlib_same_trust.py PATH               print the body of GET PATH
    stdlib_same_trust.py PATH --paginate    print every item of every page as NDJSON,
                                            following links.next.href on the same connection
"""

import http.client
import json
import os
import ssl
import sys
from pathlib import Path
from urllib.parse import urljoin, urlsplit

server = urlsplit(os.environ["QLIK_SERVER"])
# create_default_context loads the OS's CA file (set_default_verify_paths), then the extra CA.
context = ssl.create_default_context()
context.load_verify_locations(cafile=os.environ["QLIK_CA_BUNDLE"])
(cache_file,) = (Path(os.environ["QLIKM2M_CACHE_DIR"]) / "tokens").glob("*.json")
token = json.loads(cache_file.read_bytes())["access_token"]
connection = http.client.HTTPSConnection(
    server.hostname or "", server.port or 443, context=context, timeout=30
)
headers = {"Authorization": f"Bearer {token}"}
base = os.environ["QLIK_SERVER"]


def get(path: str) -> bytes:
    for _ in range(5):
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        body = response.read()
        location = response.getheader("Location")
        if response.status in (301, 302, 303, 307, 308) and location:
            path = location if location.startswith("/") else urlsplit(location).path
            continue
        if response.status != 200:
            sys.exit(f"HTTP {response.status}")
        return body
    sys.exit("too many redirects")


path = sys.argv[1]
out = sys.stdout.buffer
if sys.argv[2:] == ["--paginate"]:
    url = urljoin(base, path)
    while True:
        split = urlsplit(url)
        page = json.loads(get(split.path + (f"?{split.query}" if split.query else "")))
        for item in page["data"]:
            out.write(json.dumps(item, separators=(",", ":")).encode() + b"\n")
        href = (page.get("links") or {}).get("next", {}).get("href")
        if not href:
            break
        url = urljoin(url, href)
else:
    out.write(get(path) + b"\n")
