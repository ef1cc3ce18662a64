"""XEP-0114 link, service discovery and XMPP ping (COMP-1/2/4/7, XEP-0199)."""
from topology import COMPONENT

NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"


def test_comp_7_disco_info_gateway_identity(alice, xmpp_server):
    kind, iq = alice.iq(COMPONENT, "get", "<query xmlns='%s'/>" % NS_DISCO_INFO)
    assert kind == "result", "disco#info on %s via %s: expected an IQ result, got %s:\n%s" % (
        COMPONENT, xmpp_server.name, kind, iq["raw"])
    query = iq["xml"].find("{%s}query" % NS_DISCO_INFO)
    assert query is not None, "disco#info result without <query/>: %s" % iq["raw"]
    identities = [(i.get("category"), i.get("type")) for i in query.findall("{%s}identity" % NS_DISCO_INFO)]
    features = [f.get("var") for f in query.findall("{%s}feature" % NS_DISCO_INFO)]
    assert any(cat == "gateway" for cat, _ in identities), \
        "no <identity category='gateway'/> in disco#info of %s: identities=%r\n%s" % (COMPONENT, identities, iq["raw"])
    assert NS_DISCO_INFO in features, "disco#info does not list its own feature %s: %r" % (NS_DISCO_INFO, features)


def test_comp_4_xep0199_ping_answered(alice, xmpp_server):
    kind, iq = alice.iq(COMPONENT, "get", "<ping xmlns='urn:xmpp:ping'/>")
    assert kind == "result", "XEP-0199 ping to %s via %s: expected an empty IQ result, got %s:\n%s" % (
        COMPONENT, xmpp_server.name, kind, iq["raw"])
    assert iq["from"] == COMPONENT, "ping result from %r, expected %r" % (iq["from"], COMPONENT)
