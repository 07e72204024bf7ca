"""Which network addresses a webhook may be delivered to: public ones only (SSRF guard)."""
import ipaddress

# NAT64 (RFC 6052) embeds an IPv4 address in its last 32 bits; a NAT64 gateway would
# forward 64:ff9b::a9fe:a9fe to 169.254.169.254.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _embedded_ipv4(address: ipaddress.IPv6Address) -> list:
    embedded = [address.ipv4_mapped, address.sixtofour]
    if address.teredo:
        embedded.extend(address.teredo)
    if address in _NAT64:
        embedded.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return [ip for ip in embedded if ip is not None]


def _is_public(address) -> bool:
    # is_global alone lets multicast through (224.0.0.0/4 is "global" to Python 3.11).
    return address.is_global and not (
        address.is_multicast or address.is_loopback or address.is_link_local or address.is_private
        or address.is_reserved or address.is_unspecified
    )


def is_public_address(text: str) -> bool:
    """True when an IP address (v4 or v6, any embedded v4 included) is publicly routable."""
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return False
    if address.version == 6:
        embedded = _embedded_ipv4(address)
        if embedded:
            return all(_is_public(ip) for ip in embedded)
    return _is_public(address)


def is_ip_literal(host: str) -> bool:
    """True when a URL's host is an IP address rather than a name."""
    try:
        ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    return True
