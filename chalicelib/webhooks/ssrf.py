"""Which network addresses a webhook may be delivered to: public ones only (SSRF guard).

The refused ranges come from the IANA registries, not from Python's `ipaddress` flags, which
lag them (Python 3.11 counts fec0::1 and 3fff::1 as global). Every entry of the IANA IPv4 and
IPv6 Special-Purpose Address Registries is refused, even those the registry marks "globally
reachable" (anycast services, AS112, AMT): none of them hosts a webhook receiver. IPv6 is
further limited to 2000::/3, the only block the IANA IPv6 Address Space registry allocates to
global unicast, which also shuts out multicast, the deprecated site-local fec0::/10 and every
block IANA has not yet assigned.
  https://www.iana.org/assignments/iana-ipv4-special-registry/
  https://www.iana.org/assignments/iana-ipv6-special-registry/
  https://www.iana.org/assignments/ipv6-address-space/
"""
import ipaddress

# (range, registry name, source) rows; kept as the registries list them.
IPV4_SPECIAL_PURPOSE = (
    ("0.0.0.0/8", "This network", "RFC 791"),
    ("0.0.0.0/32", "This host on this network", "RFC 1122"),
    ("10.0.0.0/8", "Private-Use", "RFC 1918"),
    ("100.64.0.0/10", "Shared Address Space", "RFC 6598"),
    ("127.0.0.0/8", "Loopback", "RFC 1122"),
    ("169.254.0.0/16", "Link Local", "RFC 3927"),
    ("172.16.0.0/12", "Private-Use", "RFC 1918"),
    ("192.0.0.0/24", "IETF Protocol Assignments", "RFC 6890"),
    ("192.0.0.0/29", "IPv4 Service Continuity Prefix", "RFC 7335"),
    ("192.0.0.8/32", "IPv4 dummy address", "RFC 7600"),
    ("192.0.0.9/32", "Port Control Protocol Anycast", "RFC 7723"),
    ("192.0.0.10/32", "Traversal Using Relays around NAT Anycast", "RFC 8155"),
    ("192.0.0.170/32", "NAT64/DNS64 Discovery", "RFC 8880, RFC 7050"),
    ("192.0.0.171/32", "NAT64/DNS64 Discovery", "RFC 8880, RFC 7050"),
    ("192.0.2.0/24", "Documentation (TEST-NET-1)", "RFC 5737"),
    ("192.31.196.0/24", "AS112-v4", "RFC 7535"),
    ("192.52.193.0/24", "AMT", "RFC 7450"),
    ("192.88.99.0/24", "Deprecated (6to4 Relay Anycast)", "RFC 7526"),
    ("192.168.0.0/16", "Private-Use", "RFC 1918"),
    ("192.175.48.0/24", "Direct Delegation AS112 Service", "RFC 7534"),
    ("198.18.0.0/15", "Benchmarking", "RFC 2544"),
    ("198.51.100.0/24", "Documentation (TEST-NET-2)", "RFC 5737"),
    ("203.0.113.0/24", "Documentation (TEST-NET-3)", "RFC 5737"),
    ("240.0.0.0/4", "Reserved", "RFC 1112"),
    ("255.255.255.255/32", "Limited Broadcast", "RFC 8190, RFC 919"),
    # Not special-purpose but never a unicast receiver: the IANA IPv4 Multicast Address Space registry.
    ("224.0.0.0/4", "Multicast", "RFC 5771"),
)
IPV6_SPECIAL_PURPOSE = (
    ("::1/128", "Loopback Address", "RFC 4291"),
    ("::/128", "Unspecified Address", "RFC 4291"),
    ("::ffff:0:0/96", "IPv4-mapped Address", "RFC 4291"),
    ("64:ff9b::/96", "IPv4-IPv6 Translat.", "RFC 6052"),
    ("64:ff9b:1::/48", "IPv4-IPv6 Translat.", "RFC 8215"),
    ("100::/64", "Discard-Only Address Block", "RFC 6666"),
    ("100:0:0:1::/64", "Dummy IPv6 Prefix", "RFC 9780"),
    ("2001::/23", "IETF Protocol Assignments", "RFC 2928"),
    ("2001::/32", "TEREDO", "RFC 4380, RFC 8190"),
    ("2001:1::1/128", "Port Control Protocol Anycast", "RFC 7723"),
    ("2001:1::2/128", "Traversal Using Relays around NAT Anycast", "RFC 8155"),
    ("2001:1::3/128", "DNS-SD Service Registration Protocol Anycast", "RFC 9665"),
    ("2001:2::/48", "Benchmarking", "RFC 5180"),
    ("2001:3::/32", "AMT", "RFC 7450"),
    ("2001:4:112::/48", "AS112-v6", "RFC 7535"),
    ("2001:10::/28", "Deprecated (previously ORCHID)", "RFC 4843"),
    ("2001:20::/28", "ORCHIDv2", "RFC 7343"),
    ("2001:30::/28", "Drone Remote ID Protocol Entity Tags (DETs) Prefix", "RFC 9374"),
    ("2001:db8::/32", "Documentation", "RFC 3849"),
    ("2002::/16", "6to4", "RFC 3056"),
    ("2620:4f:8000::/48", "Direct Delegation AS112 Service", "RFC 7534"),
    ("3fff::/20", "Documentation", "RFC 9637"),
    ("5f00::/16", "Segment Routing (SRv6) SIDs", "RFC 9602"),
    ("fc00::/7", "Unique-Local", "RFC 4193, RFC 8190"),
    ("fe80::/10", "Link-Local Unicast", "RFC 4291"),
    # From the IANA IPv6 Address Space registry: deprecated site-local, and multicast.
    ("fec0::/10", "Site-Local (deprecated)", "RFC 3879"),
    ("ff00::/8", "Multicast", "RFC 4291"),
)
# IANA IPv6 Address Space: 2000::/3 is the one block allocated as Global Unicast.
IPV6_GLOBAL_UNICAST = ipaddress.ip_network("2000::/3")

_REFUSED = tuple(ipaddress.ip_network(row[0]) for row in IPV4_SPECIAL_PURPOSE + IPV6_SPECIAL_PURPOSE)


def special_purpose_range(address) -> str | None:
    """The registry entry (range, name, source) an address falls in, as text; None when it is in none."""
    for network, row in zip(_REFUSED, IPV4_SPECIAL_PURPOSE + IPV6_SPECIAL_PURPOSE):
        if address.version == network.version and address in network:
            return f"{row[0]} ({row[1]}, {row[2]})"
    if address.version == 6 and address not in IPV6_GLOBAL_UNICAST:
        return "outside 2000::/3 (not global unicast)"
    return None


def is_public_address(text: str) -> bool:
    """True when an IP address (v4 or v6) lies outside every special-purpose range of the IANA registries."""
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return False
    # IPv4-mapped, 6to4, Teredo and NAT64 addresses are refused whole (their ranges are in the
    # table), so no embedded IPv4 address can reach a private network through a translator.
    return special_purpose_range(address) is None


def is_ip_literal(host: str) -> bool:
    """True when a URL's host is an IP address rather than a name."""
    try:
        ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    return True
