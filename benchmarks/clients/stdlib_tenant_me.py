"""Floor: `tenant me` with nothing but the standard library (http.client + ssl), given a token.

One TLS connection, GET /api/v1/tenants/me, follow the 302 on the same connection, print the
body. Reads QLIK_SERVER, QLIK_ACCESS_TOKEN and QLIK_CA_BUNDLE.
"""

import http.client
import os
import ssl
import sys
from urllib.parse import urlsplit

server = urlsplit(os.environ["QLIK_SERVER"])
context = ssl.create_default_context(cafile=os.environ["QLIK_CA_BUNDLE"])
connection = http.client.HTTPSConnection(
    server.hostname or "", server.port or 443, context=context, timeout=30
)
headers = {"Authorization": f"Bearer {os.environ['QLIK_ACCESS_TOKEN']}"}
path = "/api/v1/tenants/me"
for _ in range(5):
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    body = response.read()
    location = response.getheader("Location")
    if response.status in (301, 302, 303, 307, 308) and location:
        path = location if location.startswith("/") else urlsplit(location).path
        continue
    break
if response.status != 200:
    sys.exit(f"HTTP {response.status}")
sys.stdout.buffer.write(body + b"\n")
