"""What the web server's access log may say about a request (issue #13, item 10).

The access log is kept by the web server, outside Mosaic's code; it would hold each client's
full address and every request line, query string included (decide's `?visitor=`) and the
export/erase paths (`/api/v1/profiles/<visitor>`). These functions give what is logged instead:
the address truncated (IPv4 to its /24, IPv6 to its /48), the path without its query string
and with a visitor id in it replaced by "-". Pure: no Django.
"""

from __future__ import annotations

import functools
import ipaddress
import re

_PROFILE_PATH = re.compile(r"^(/api/v\d+/profiles/)(.+?)(/export/?)?$")


# Logged on every request, from few addresses (a proxy's, a load generator's, returning
# clients'): each one's network is remembered, bounded (the address is the client's), rather than
# parsed again (ipaddress's parsing was a few % of a request's CPU; docs/benchmarks.md).
@functools.lru_cache(maxsize=4096)
def truncated_address(raw: str) -> str:
    """The network of an address, not the host: 203.0.113.0, 2001:db8:1:: ("-" if unparsable)."""
    try:
        address = ipaddress.ip_address(raw.strip())
    except ValueError:
        return "-"
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)


def scrubbed_path(path: str) -> str:
    """The path without query string or fragment, a visitor id in it replaced by "-"."""
    path = path.split("?", 1)[0].split("#", 1)[0]
    match = _PROFILE_PATH.match(path)
    if match:
        return match.group(1) + "-" + (match.group(3) or "")
    return path


def scrubbed_url(url: str) -> str:
    """A URL (the Referer) without its query string and fragment."""
    return url.split("?", 1)[0].split("#", 1)[0]
