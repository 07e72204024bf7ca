"""The webhook SSRF guard refuses every range of the IANA special-purpose registries (issue 17, item 11)."""
import ipaddress

import pytest

from chalicelib.webhooks import ssrf

ROWS = ssrf.IPV4_SPECIAL_PURPOSE + ssrf.IPV6_SPECIAL_PURPOSE


@pytest.mark.parametrize("cidr, name, source", ROWS, ids=[row[0] for row in ROWS])
def test_every_special_purpose_range_is_refused_at_its_first_and_last_address(cidr, name, source):
    network = ipaddress.ip_network(cidr)
    for address in (network[0], network[-1]):
        assert not ssrf.is_public_address(str(address)), (address, name, source)
        assert ssrf.special_purpose_range(address) is not None


def test_site_local_and_the_rfc_9637_documentation_prefix_are_refused():
    # Regression: Python's ipaddress counts both as global; the guard used to let them through.
    assert ipaddress.ip_address("fec0::1").is_global and ipaddress.ip_address("3fff::1").is_global
    assert not ssrf.is_public_address("fec0::1")
    assert not ssrf.is_public_address("3fff::1")
    assert "RFC 9637" in ssrf.special_purpose_range(ipaddress.ip_address("3fff::1"))


@pytest.mark.parametrize("address", ["4000::1", "ff02::1", "::2", "1::1"])
def test_ipv6_outside_global_unicast_is_refused(address):
    assert not ssrf.is_public_address(address)


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "2a00:1450:4001::200e",
                                     "192.0.1.255", "198.20.0.1", "223.255.255.254"])
def test_public_unicast_addresses_are_accepted(address):
    assert ssrf.is_public_address(address)


@pytest.mark.parametrize("text", ["", "not-an-ip", "999.1.1.1", "::ffff:10.0.0.1%eth0x"])
def test_text_that_is_no_address_is_not_public(text):
    assert not ssrf.is_public_address(text)
