"""The HTTP layer: one session, timeouts, TLS, retries, redirects and Qlik error parsing.

A package split along its concerns: ``base`` (options, limits, URL helpers), ``responses``,
``error_bodies`` (Qlik error shapes), ``retries`` (timing), ``causes`` (why a connection
failed), ``tls`` (trust), ``proxies`` (the environment's proxy rules), ``transport`` (the
requests session) and ``streaming`` (uploads and large downloads). The only package that imports
``requests`` (and ``truststore``), and only when a request is made: ``import requests`` alone
costs about 0.2 s, which a ``--help`` should not pay.

Every name is re-exported here, lazily: ``from qlikm2m.http import Transport`` loads only the
modules that name needs, so importing this package costs nothing on the start-up path.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qlikm2m.http.base import CHUNK_SIZE as CHUNK_SIZE
    from qlikm2m.http.base import IDEMPOTENT_METHODS as IDEMPOTENT_METHODS
    from qlikm2m.http.base import MAX_ERROR_BODY as MAX_ERROR_BODY
    from qlikm2m.http.base import MAX_JSON_BODY as MAX_JSON_BODY
    from qlikm2m.http.base import MAX_REDIRECTS as MAX_REDIRECTS
    from qlikm2m.http.base import HttpOptions as HttpOptions
    from qlikm2m.http.base import Params as Params
    from qlikm2m.http.base import RequestsSession as RequestsSession
    from qlikm2m.http.base import origin_of as origin_of
    from qlikm2m.http.base import without_userinfo as without_userinfo
    from qlikm2m.http.error_bodies import QlikErrorInfo as QlikErrorInfo
    from qlikm2m.http.error_bodies import error_for as error_for
    from qlikm2m.http.error_bodies import error_sentence as error_sentence
    from qlikm2m.http.error_bodies import parse_error_body as parse_error_body
    from qlikm2m.http.error_bodies import raise_for_status as raise_for_status
    from qlikm2m.http.proxies import proxy_for as proxy_for
    from qlikm2m.http.responses import Response as Response
    from qlikm2m.http.retries import backoff_delay as backoff_delay
    from qlikm2m.http.retries import parse_retry_after as parse_retry_after
    from qlikm2m.http.streaming import read_body_into as read_body_into
    from qlikm2m.http.streaming import send_stream as send_stream
    from qlikm2m.http.tls import CA_BUNDLE_VARIABLES as CA_BUNDLE_VARIABLES
    from qlikm2m.http.tls import add_environment_ca_bundle as add_environment_ca_bundle
    from qlikm2m.http.tls import environment_ca_bundle as environment_ca_bundle
    from qlikm2m.http.tls import is_os_trust_file as is_os_trust_file
    from qlikm2m.http.tls import tls_context as tls_context
    from qlikm2m.http.transport import Transport as Transport
    from qlikm2m.http.transport import _build_session as _build_session

# name -> the module of this package that defines it
_HOME = {
    "CA_BUNDLE_VARIABLES": "tls",
    "CHUNK_SIZE": "base",
    "HttpOptions": "base",
    "IDEMPOTENT_METHODS": "base",
    "MAX_ERROR_BODY": "base",
    "MAX_JSON_BODY": "base",
    "MAX_REDIRECTS": "base",
    "Params": "base",
    "QlikErrorInfo": "error_bodies",
    "RequestsSession": "base",
    "Response": "responses",
    "Transport": "transport",
    "_build_session": "transport",
    "add_environment_ca_bundle": "tls",
    "backoff_delay": "retries",
    "environment_ca_bundle": "tls",
    "error_for": "error_bodies",
    "error_sentence": "error_bodies",
    "is_os_trust_file": "tls",
    "origin_of": "base",
    "parse_error_body": "error_bodies",
    "parse_retry_after": "retries",
    "proxy_for": "proxies",
    "raise_for_status": "error_bodies",
    "read_body_into": "streaming",
    "send_stream": "streaming",
    "tls_context": "tls",
    "without_userinfo": "base",
}

__all__ = sorted(_HOME)


def __getattr__(name: str) -> Any:
    """Load the module that defines ``name`` on first use (PEP 562)."""
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value
