"""`tenant me` the way a CI script does it with Qlik's Python SDK (qlik-sdk from PyPI).

Run by the benchmark in its own throwaway venv, never by the project. Reads QLIK_SERVER,
QLIK_CLIENT_ID and QLIK_CLIENT_SECRET; the test CA comes in through REQUESTS_CA_BUNDLE.
"""

import os
import sys

from qlik_sdk import Auth, AuthType, Config

auth = Auth(
    Config(
        host=os.environ["QLIK_SERVER"],
        auth_type=AuthType.OAuth2,
        client_id=os.environ["QLIK_CLIENT_ID"],
        client_secret=os.environ["QLIK_CLIENT_SECRET"],
    )
)
# The SDK mints a token when told to and keeps it in memory only: one mint per process.
auth.authorize()
# Auth.rest rather than Qlik(...).tenants.get_me(): the same imports and requests, but the raw
# JSON, without the SDK's dataclass rejecting fields it does not know.
response = auth.rest(path="/tenants/me")
sys.stdout.write(response.text + "\n")
