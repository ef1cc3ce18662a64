//! Model -> Jingle `<content>`, `<transport>` and XEP-0338 `<group>` elements.

use crate::media::model::*;
use crate::xmpp::xml::BuilderExt;
use tokio_xmpp::minidom::Element;
use xmpp_parsers::ns;

/// XEP-0167 §7 `<encryption>` (SDES) lives in the RTP namespace.
const NS_RTP: &str = ns::JINGLE_RTP;

/// Render the contents of `desc` as `<content>` elements created by `creator`, followed by
/// the XEP-0338 `<group>` when the description bundles.
pub fn render(desc: &Description, creator: Role) -> Vec<Element> {
    let mut out: Vec<Element> = desc
        .contents
        .iter()
        .map(|c| render_content(c, creator))
        .collect();
    for (sem, names) in [("BUNDLE", &desc.bundle), ("LS", &desc.lip_sync)] {
        if !names.is_empty() {
            let mut g = Element::builder("group", ns::JINGLE_GROUPING).a("semantics", sem);
            for n in names {
                g = g.append(
                    Element::builder("content", ns::JINGLE_GROUPING)
                        .a("name", n.as_str())
                        .build(),
                );
            }
            out.push(g.build());
        }
    }
    out
}

fn creator_str(r: Role) -> &'static str {
    match r {
        Role::Initiator => "initiator",
        Role::Responder => "responder",
    }
}

/// One `<content>`.
pub fn render_content(c: &Content, creator: Role) -> Element {
    let mut d = Element::builder("description", ns::JINGLE_RTP).a("media", c.media.as_str());
    for p in &c.payloads {
        let mut pt = Element::builder("payload-type", ns::JINGLE_RTP).a("id", p.id);
        // A static type may come without a name; whatever is known is written, so a
        // description reads back the same (found by sdp_jingle).
        if !p.name.is_empty() {
            pt = pt.a("name", p.name.as_str());
        }
        if p.clockrate != 0 {
            pt = pt.a("clockrate", p.clockrate);
        }
        if p.channels > 1 {
            pt = pt.a("channels", p.channels);
        }
        pt = pt.a("ptime", p.ptime).a("maxptime", p.maxptime);
        for (n, v) in &p.params {
            pt = pt.append(
                Element::builder("parameter", ns::JINGLE_RTP)
                    .a("name", n.as_str())
                    .a("value", v.as_str())
                    .build(),
            );
        }
        for fb in &p.rtcp_fb {
            pt = pt.append(fb_element(fb));
        }
        d = d.append(pt.build());
    }
    for fb in &c.rtcp_fb_all {
        d = d.append(fb_element(fb));
    }
    for h in &c.hdrexts {
        let senders = h.senders.map(Senders::as_str);
        d = d.append(
            Element::builder("rtp-hdrext", ns::JINGLE_RTP_HDREXT)
                .a("id", h.id)
                .a("uri", h.uri.as_str())
                .a("senders", senders)
                .build(),
        );
    }
    if c.extmap_allow_mixed {
        d = d.append(Element::builder("extmap-allow-mixed", ns::JINGLE_RTP_HDREXT).build());
    }
    for s in &c.sources {
        let mut e = Element::builder("source", ns::JINGLE_SSMA).a("ssrc", s.ssrc);
        for (n, v) in &s.params {
            e = e.append(
                Element::builder("parameter", ns::JINGLE_SSMA)
                    .a("name", n.as_str())
                    .a("value", v.as_deref())
                    .build(),
            );
        }
        d = d.append(e.build());
    }
    for g in &c.source_groups {
        let mut e =
            Element::builder("ssrc-group", ns::JINGLE_SSMA).a("semantics", g.semantics.as_str());
        for s in &g.ssrcs {
            e = e.append(
                Element::builder("source", ns::JINGLE_SSMA)
                    .a("ssrc", *s)
                    .build(),
            );
        }
        d = d.append(e.build());
    }
    if let Some((t, v)) = &c.bandwidth {
        d = d.append(
            Element::builder("bandwidth", ns::JINGLE_RTP)
                .a("type", t.as_str())
                .append(v.to_string())
                .build(),
        );
    }
    if c.rtcp_mux {
        d = d.append(Element::builder("rtcp-mux", ns::JINGLE_RTP).build());
    }
    if !c.crypto.is_empty() {
        let mut e = Element::builder("encryption", NS_RTP);
        for cr in &c.crypto {
            e = e.append(
                Element::builder("crypto", NS_RTP)
                    .a("crypto-suite", cr.suite.as_str())
                    .a("key-params", cr.key_params.as_str())
                    .a("session-params", cr.session_params.as_deref())
                    .a("tag", cr.tag)
                    .build(),
            );
        }
        d = d.append(e.build());
    }
    Element::builder("content", ns::JINGLE)
        .a("creator", creator_str(creator))
        .a("name", c.name.as_str())
        .a(
            "senders",
            (c.senders != Senders::Both).then(|| c.senders.as_str()),
        )
        .append(d.build())
        .append(render_transport(&c.transport))
        .build()
}

fn fb_element(fb: &RtcpFb) -> Element {
    Element::builder("rtcp-fb", ns::JINGLE_RTCP_FB)
        .a("type", fb.kind.as_str())
        .a("subtype", fb.subtype.as_deref())
        .build()
}

/// A `<transport>`: ICE-UDP when the transport has credentials, else Raw-UDP.
pub fn render_transport(t: &Transport) -> Element {
    let Some(ice) = &t.ice else {
        let mut e = Element::builder("transport", ns::JINGLE_RAW_UDP);
        // DTLS-SRTP without ICE (some SIP phones): XEP-0320 puts the fingerprint in any
        // transport (found by sdp_jingle: it was dropped here).
        if let Some(fp) = &t.fingerprint {
            e = e.append(fingerprint(fp));
        }
        for c in &t.candidates {
            e = e.append(
                Element::builder("candidate", ns::JINGLE_RAW_UDP)
                    .a("component", c.component)
                    .a("generation", c.generation)
                    .a("id", c.id.as_str())
                    .a("ip", c.ip)
                    .a("port", c.port)
                    .build(),
            );
        }
        return e.build();
    };
    let mut e = Element::builder("transport", ns::JINGLE_ICE_UDP)
        .a("ufrag", ice.ufrag.as_str())
        .a("pwd", ice.pwd.as_str());
    if let Some(fp) = &t.fingerprint {
        e = e.append(fingerprint(fp));
    }
    for c in &t.candidates {
        e = e.append(
            Element::builder("candidate", ns::JINGLE_ICE_UDP)
                .a("component", c.component)
                .a("foundation", c.foundation.as_str())
                .a("generation", c.generation)
                .a("id", c.id.as_str())
                .a("ip", c.ip)
                .a("network", 0u8)
                .a("port", c.port)
                .a("priority", c.priority)
                .a("protocol", c.protocol.as_str())
                .a("type", c.kind.as_str())
                .a("rel-addr", c.rel_addr)
                .a("rel-port", c.rel_port)
                .build(),
        );
    }
    e.build()
}

fn fingerprint(fp: &Fingerprint) -> Element {
    Element::builder("fingerprint", ns::JINGLE_DTLS)
        .a("hash", fp.hash.as_str())
        .a("setup", fp.setup.as_str())
        .append(fp.value.as_str())
        .build()
}
