"""Proxies from the environment, by the rules requests, urllib and curl apply."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit


def proxy_for(url: str, env: Mapping[str, str] | None = None) -> str | None:
    """The proxy a request to ``url`` goes through, or None for a direct connection.

    ``env`` (default: the process environment) by the rules requests, urllib and curl apply:
    ``https_proxy`` or ``http_proxy`` for the URL's scheme, else ``all_proxy`` (each in lower
    case, else upper case), unless ``no_proxy`` matches the host: ``*``, a host or domain suffix
    (``example.com`` or ``.example.com``), ``host:port``, an IP address, or a CIDR block
    (``127.0.0.0/8``). Proxy URLs may be ``http://``, ``https://``, ``socks5://``,
    ``socks5h://`` (names resolved by the proxy), ``socks4://`` or ``socks4a://``. The one
    decision both the transport and ``doctor`` use, on the run's own environment.
    """
    import os

    variables = os.environ if env is None else env

    def variable(name: str) -> str:
        return (variables.get(name) or variables.get(name.upper()) or "").strip()

    parts = urlsplit(url)
    proxy = variable(f"{parts.scheme.lower()}_proxy") or variable("all_proxy")
    if not proxy or _no_proxy_matches(parts.hostname or "", parts.port, variable("no_proxy")):
        return None
    return proxy


def _no_proxy_matches(host: str, port: int | None, no_proxy: str) -> bool:
    import ipaddress

    host = host.lower().strip("[]")
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for raw in no_proxy.replace(" ", ",").split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        if "/" in entry:
            try:
                if address is not None and address in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass
            continue
        name, entry_port = entry, None
        if entry.startswith("["):  # [v6]:port
            name, _, rest = entry[1:].partition("]")
            entry_port = rest.removeprefix(":") or None
        elif entry.count(":") == 1:  # host:port (an IPv6 address has several colons)
            name, entry_port = entry.split(":")
        if entry_port is not None and (port is None or str(port) != entry_port):
            continue
        name = name.lstrip(".")
        if host == name or (address is None and host.endswith("." + name)):
            return True
    return False
