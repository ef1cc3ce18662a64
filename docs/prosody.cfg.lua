-- stox on Prosody 0.12: the lines to add to prosody.cfg.lua.
-- Replace sip.example.com and the secret with your own; stox's component.toml must say
-- the same: jid = "sip.example.com", server = "127.0.0.1:5347" and this secret.

-- (1) Global section: ABOVE the first VirtualHost or Component line.
-- Every option written below a VirtualHost/Component line belongs to that host. The
-- component listener reads only global options, so these two lines written lower are
-- ignored without an error (Prosody then listens on 127.0.0.1 and ::1, port 5347).
-- `prosodyctl check config` lists options that are in the wrong place.

-- The XEP-0114 listener stox connects to. Keep it on loopback when stox runs on this
-- machine; never make it reachable from the internet.
component_ports = { 5347 }
component_interfaces = { "127.0.0.1" }

-- Only if this server must not federate with other XMPP servers (stox needs no
-- federation: it serves the users of its addresses.xmpp_domains, which are yours).
-- If modules_disabled is already set, add "s2s" to that list: a second assignment
-- replaces the first.
-- modules_disabled = { "s2s" }

-- (2) The component: below the global section, next to your VirtualHost lines.
Component "sip.example.com"
    component_secret = "a long random secret"
