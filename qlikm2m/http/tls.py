"""TLS trust: the OS store plus --ca-bundle, and the CA bundle of the environment."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import ssl

_CA_HINT = (
    "If the tenant or a TLS-inspecting proxy uses a private CA, pass --ca-bundle FILE.pem or set "
    "QLIK_CA_BUNDLE (the system trust store is always used as well)."
)


def tls_context(ca_bundle: str | None = None) -> ssl.SSLContext:
    """The client TLS context: the OS trust store (truststore) plus the CAs of ``ca_bundle``."""
    import ssl

    from qlikm2m.trust import lazy_os_trust_context

    # The OS roots from OpenSSL's hashed directory, read as needed (qlikm2m/trust.py); truststore
    # where that is not the OS's layout.
    context = lazy_os_trust_context()
    if context is None:
        import truststore

        context = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca_bundle and not is_os_trust_file(ca_bundle):
        try:
            context.load_verify_locations(cafile=ca_bundle)
        except (OSError, ssl.SSLError) as error:
            from qlikm2m.errors import ConfigError

            raise ConfigError(
                f"The CA bundle {ca_bundle!r} could not be loaded: {error}.",
                hint="It must be a PEM file with one or more CA certificates.",
            ) from error
    return context


CA_BUNDLE_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


def environment_ca_bundle(environ: Mapping[str, str] | None = None) -> tuple[str, str] | None:
    """(variable, path) of the CA bundle requests takes from the environment, or None.

    requests reads ``$REQUESTS_CA_BUNDLE``, then ``$CURL_CA_BUNDLE``, from the process
    environment for every HTTPS request; a file or a folder of hashed certificates.
    """
    import os

    environ = os.environ if environ is None else environ
    for name in CA_BUNDLE_VARIABLES:
        value = environ.get(name)
        if value:
            return name, value
    return None


def add_environment_ca_bundle(
    context: ssl.SSLContext, path: str, environ: Mapping[str, str] | None = None
) -> None:
    """Load the environment's CA bundle ``path`` into ``context`` (skipped for the OS file).

    Raises ConfigError (exit 3) naming the variable when ``path`` is missing, unreadable or not
    PEM certificates: requests would fail every request with a bare OSError or a misleading
    TLS verification error.
    """
    import os
    import ssl

    from qlikm2m.errors import ConfigError

    found = environment_ca_bundle(environ)
    name = f"${found[0]}" if found and found[1] == path else "The CA bundle variable"
    hint = (
        f"Point {name.lstrip('$')} at a PEM file of CA certificates, or unset it: the system "
        "trust store is always used, and --ca-bundle / QLIK_CA_BUNDLE add a private CA."
    )
    if not os.path.exists(path):
        raise ConfigError(f"{name} names {path}, which does not exist.", hint=hint)
    if os.path.isfile(path) and is_os_trust_file(path):
        return
    try:
        if os.path.isdir(path):
            context.load_verify_locations(capath=path)
        else:
            context.load_verify_locations(cafile=path)
    except (OSError, ssl.SSLError) as error:
        if isinstance(error, ssl.SSLError) and error.reason:
            reason = error.reason.replace("_", " ").lower()  # NO_CERTIFICATE_OR_CRL_FOUND
        else:
            reason = (error.strerror or str(error)).lower()
        raise ConfigError(
            f"{name} names {path}, which could not be loaded as CA certificates: {reason}.",
            hint=hint,
        ) from None


def is_os_trust_file(path: str) -> bool:
    """Whether ``path`` is the CA file the OS trust store loads anyway.

    On Linux and the BSDs truststore parses OpenSSL's default CA file; CI images and corporate
    set-ups often point REQUESTS_CA_BUNDLE (or QLIK_CA_BUNDLE) at that same file, and parsing its
    ~150 certificates a second time costs 40-100 ms of every command under OpenSSL 3.
    macOS and Windows verify with the OS instead, so there every bundle is loaded.
    """
    import os
    import ssl
    import sys

    if sys.platform in ("darwin", "win32"):
        return False
    default = ssl.get_default_verify_paths().cafile
    if not default:
        return False
    try:
        return os.path.samefile(path, default)
    except OSError:
        return False


def _tls_reason(error: BaseException) -> str:
    import ssl

    from qlikm2m.http.causes import _cause_chain
    from qlikm2m.http.error_bodies import _clean

    for cause in _cause_chain(error):
        # OpenSSL's own words, with the name that was checked ("... not valid for 'host'").
        if isinstance(cause, ssl.SSLCertVerificationError) and cause.verify_message:
            return (
                _clean(str(cause.verify_message).rstrip(". "), 160) or "certificate verify failed"
            )
    text = str(error)
    for pattern in (
        r"certificate verify failed: ([^(\]'\")]+)",
        r"(hostname mismatch[^'\")]*)",
        r"(wrong version number)",
        r"(handshake failure)",
    ):
        match = re.search(pattern, text, re.IGNORECASE)
        if match:
            return _clean(match.group(1), 160) or "certificate verify failed"
    return "the certificate could not be verified"
