"""Ports and names of the integration-test topology (all 127.0.0.1; the peer kit's defaults)."""
C2S_PORT = 5222                 # XMPP c2s (Prosody or ejabberd)
COMPONENT_PORT = 5347           # XEP-0114 component port
COMPONENT = "sip.localhost"     # the gateway's component domain
MUC_DOMAIN = "conference.localhost"  # the servers' MUC service ([muc] services: SIP users join its rooms)
XMPP_DOMAIN = "localhost"       # XMPP users: alice@localhost (alicepass), bob@localhost (bobpass)
SIP_DOMAIN = "127.0.0.1"        # default SIP domain: sip:bob@127.0.0.1 <-> bob@sip.localhost
GW_PORT = 5070                  # the gateway's SIP listener (udp + tcp)
KAMAILIO_PORT = 5060            # Kamailio registrar/proxy (outbound proxy of the gateway)
UAS_OK_PORT, UAS_OK_DOMAIN = 5096, "sipp.test"          # SIPp UAS answering 200 (route in the config)
UAS_404_PORT, UAS_404_DOMAIN = 5098, "sipp404.test"     # SIPp UAS answering 404
UAS_CODE_PORT, UAS_CODE_DOMAIN = 5099, "sippcode.test"  # SIPp UAS answering NNN to sip:codeNNN@...
UAS_TCP_PORT, UAS_TCP_DOMAIN = 5094, "sipptcp.test"    # TCP-only SIPp UAS answering 200
UAC_PORT = 5097                 # local port of the SIPp UAC
BOUNCE_WINDOW_MS = 250
RECONNECT_MAX_SECS = 2          # backoff cap in the test config: reconnect well within 10 s


def sip_jid(user: str, domain: str) -> str:
    """JID of a SIP AOR outside the default SIP domain (XEP-0106 escaped '@')."""
    return "%s\\40%s@%s" % (user, domain, COMPONENT)
PJSUA_PORT = 5093               # pjsua2 presence peer (direct topology: the route below points at it)
PJSUA_DOMAIN = "pjsua.test"     # static route -> 127.0.0.1:PJSUA_PORT (SUBSCRIBE straight to the UA)
BARESIP_P1 = (5111, 4461)       # baresip presence peers: SIP port, ctrl_tcp port
BARESIP_P2 = (5121, 4471)
GW_MSRP_PORT = 2870             # the gateway's MSRP listener ([chat] msrp_listen)
GW_MSRPS_PORT = 2871            # the gateway's MSRP over TLS listener ([chat] msrps_listen, [sip.tls] certificate)
MSRP_UA_PORT = 5131             # msrp_ua.py SIP port (route "msrp.test"; [chat.domains] session)
MSRP_UA_MSRP_PORT = 2861        # msrp_ua.py MSRP port
MSRP_DOMAIN = "msrp.test"
MSRP_RELAY_PORT = 2855          # the kit's Kamailio MSRP relay
BARESIP_FB = (5141, 4491)       # baresip answering 488 to MSRP INVITEs (route "bsfb.test"; [chat.domains] auto)
BARESIP_FB_DOMAIN = "bsfb.test"
CHAT_IDLE_SECS = 8              # [chat] idle_timeout_secs of the test config
MSRP_PAGE_DOMAIN = "msrppage.test"  # the same msrp_ua.py, routed, in page mode (typing and IMDN over MESSAGE)
METRICS_PORT = 9477             # the gateway's [metrics] listen (GET /metrics)
RELOAD_DOMAIN = "reload.test"   # not routed at start; the reload test routes it to msrp_ua.py (page mode)
UNTRUSTED_IP = "127.0.0.2"      # a SIP source outside [access] sip_trusted (only 127.0.0.1 is): challenged
SIP_AUTH_USER, SIP_AUTH_PASSWORD = "carol", "carol-pa:ss"  # its credentials (sip_credentials_file)
MAX_HELD_BYTES = 32 << 20       # [sip] max_held_bytes: small enough for the stalled-server test to reach
GW_TLS_PORT = 5171              # the gateway's SIP over TLS listener (tls: in sip.listen, [sip.tls])
TLS_UAS_PORT = 5172             # tls_peer.TlsUas (route "tls.test" = ;transport=tls)
TLS_UAS_DOMAIN = "tls.test"
BARESIP_TLS = (5173, 4501)      # baresip over TLS (tls_peer.BaresipTls): SIP 5173, TLS 5174, ctrl_tcp 4501
BARESIP_TLS_DOMAIN = "bstls.test"  # route -> 127.0.0.1:5174;transport=tls
BARESIP_CALL = (5181, 4511)     # baresip with ice + dtls_srtp for calls (call_peer.BaresipCall): SIP 5181, ctrl_tcp 4511
CALL_DOMAIN = "calls.test"      # route -> 127.0.0.1:5181 (calls from XMPP to baresip)
BARESIP_CALL_MANUAL = (5185, 4515)  # baresip 'dave' for calls, answering only when told (ring, reject, cancel tests)
CALL_MANUAL_DOMAIN = "ring.test"    # route -> 127.0.0.1:5185 (dave)
CALL_RING_SECS = 4                  # [calls] ring_timeout_secs of the test config (the no-answer test waits it out)
BARESIP_FORK_1 = (5187, 4517)   # two baresips (call_peer.BaresipCall, register=True) registered under one AOR at
BARESIP_FORK_2 = (5189, 4519)   # Kamailio, which forks stox's INVITE to both (test_calls_fork.py, MEDIA-22)
BAD_OFFER_UAC_PORT = 5191       # test_calls_bad_offer.py: the raw UDP INVITEs with corpus SDP come from here
SINK_PORT, SINK_DOMAIN = 5193, "sink.test"  # a UDP SIP sink that records every request (route in the config)
FORK_SHIM_PORT = 5195           # test_calls_fork.py: UDP relay in front of the second fork (delays its INVITE and CANCEL)
BARESIP_PLAIN = (5197, 4527)    # baresip without ice/dtls_srtp (plain RTP/AVP) for calls: SIP 5197, ctrl_tcp 4527
PLAIN_DOMAIN = "plain.test"     # route -> 127.0.0.1:5197 (calls from XMPP to the plain-RTP baresip)
FOCUS_PORT, FOCUS_MSRP_PORT = 5211, 2881  # msrp_room.TestFocus: a SIP/MSRP chat room server (route "rooms.test")
FOCUS_DOMAIN = "rooms.test"     # its rooms: sip:<room>@rooms.test = JID <room>\\40rooms.test@sip.localhost
