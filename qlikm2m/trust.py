"""The OS trust store loaded lazily, where OpenSSL's hashed certificate directory makes that exact.

On Linux and the BSDs, truststore's context calls ``set_default_verify_paths`` at every new TLS
connection, which parses the whole OS CA file (~150 certificates, ~24 ms under OpenSSL 3) each
time. Where the OS keeps the same roots as a hashed directory (``c_rehash`` links such as
``/etc/ssl/certs/2e5ac55d.0``, kept by ``update-ca-certificates`` next to the CA file it writes),
OpenSSL can be pointed at the directory instead: it then reads only the certificates a chain
needs, when it needs them. Same roots, verified by OpenSSL with the same checks.

Used only when that equivalence holds: the CA file OpenSSL's default paths name (``SSL_CERT_FILE``
or the built-in one), if it exists, lives in the directory they name (``SSL_CERT_DIR`` or the
built-in one) - the bundle ``update-ca-certificates`` writes beside its links - and the directory
holds hashed certificates. Elsewhere (macOS, Windows, a CA file kept apart) ``lazy_os_trust_context``
returns None and the caller uses truststore, which parses the file as before.
"""

from __future__ import annotations

import os
import re
import ssl
import sys

_HASHED_NAME = re.compile(r"[0-9a-f]{8}\.[0-9]+")


def lazy_os_trust_context() -> ssl.SSLContext | None:
    """A client context trusting the OS roots through the hashed directory, or None.

    ``PROTOCOL_TLS_CLIENT``: certificate and host name checks on, as truststore's context. None
    when the OS roots cannot be shown to be the directory's (see the module docstring).
    """
    directory = hashed_os_directory()
    if directory is None:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(capath=directory)
    return context


def hashed_os_directory() -> str | None:
    """The directory OpenSSL's default paths name (real path) when it holds all the OS roots.

    The paths are OpenSSL's defaults or ``SSL_CERT_FILE``/``SSL_CERT_DIR`` from the process
    environment, as ``set_default_verify_paths`` (what truststore calls) reads them.
    """
    if sys.platform in ("darwin", "win32"):
        return None
    paths = ssl.get_default_verify_paths()
    if paths.capath is None:
        return None
    directory = os.path.realpath(paths.capath)
    if paths.cafile is not None and os.path.dirname(os.path.realpath(paths.cafile)) != directory:
        # A CA file kept apart from the directory (a custom SSL_CERT_FILE, Fedora's extracted
        # bundle): nothing says they hold the same roots, so it is loaded as before.
        return None
    try:
        with os.scandir(directory) as entries:
            if not any(_HASHED_NAME.fullmatch(entry.name) for entry in entries):
                return None
    except OSError:
        return None
    return directory
