//! The address plan (RFC 7247 §6, ADDR-11) on arbitrary text, read as a SIP URI, as a JID
//! and as CLI input for `AddressMap::translate`.
//!
//! Invariants:
//! * `SipAddr::parse` -> `to_uri` -> `SipAddr::parse` gives the same address.
//! * SIP -> JID -> SIP: when `sip_to_jid` succeeds for an address outside the gateway's own
//!   domains, `jid_to_sip` takes the JID back, to the same user, host and (for a foreign
//!   host) port, and the same gr; mapping that address again gives the same JID.
//! * JID -> SIP -> JID: when `jid_to_sip` succeeds, the SIP address re-parses from its URI,
//!   `sip_to_jid` takes it back (for a component JID, to the same JID unless the localpart
//!   used the `%` alias), and the two mappings reach a fixed point.
//! * `translate` never panics, and what it returns parses as the other side's address.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stox::addr::{AddressMap, Jid, Scheme, SipAddr};
use stox_fuzz::*;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let map = map();
    if debug() {
        eprintln!(
            "{text:?}: parse {:?}; jid {:?}; translate {:?}",
            SipAddr::parse(&text),
            Jid::new(&text),
            map.translate(&text)
        );
    }
    sip_side(&text, &map);
    xmpp_side(&text, &map);
    translate(&text, &map);
});

fn sip_side(text: &str, map: &AddressMap) {
    let Ok(a) = SipAddr::parse(text) else {
        return;
    };
    let uri = a.to_uri();
    assert_eq!(
        SipAddr::parse(&uri).as_ref(),
        Ok(&a),
        "{text:?} -> {uri:?} does not re-parse to the same address"
    );
    // F1: `gr` exists only for sip:/sips: (RFC 7247 §6.3).
    assert!(
        matches!(a.scheme, Scheme::Sip | Scheme::Sips) || a.gr.is_none(),
        "{text:?}: {} URI with a gr",
        a.scheme.as_str()
    );
    let Ok(jid) = map.sip_to_jid(&a) else {
        return;
    };
    // The component host names XMPP users through the gateway (a different address on the
    // way back by design); only SIP users must round-trip.
    if a.host == COMPONENT || a.host == XMPP_DOMAIN {
        return;
    }
    assert!(
        map.is_component_jid(&jid),
        "SIP user {uri} mapped to {jid}, outside the component domain"
    );
    // F8: the JID is in canonical form (preparing it again changes nothing).
    assert_eq!(
        Jid::new(jid.as_str()).as_ref(),
        Ok(&jid),
        "{uri} -> {jid}: not a canonical JID"
    );
    let back = map
        .jid_to_sip(&jid)
        .unwrap_or_else(|e| panic!("{uri} -> {jid} does not map back to SIP: {e}"));
    let user = a.user.as_deref().unwrap_or_default();
    let back_user = back.user.as_deref().unwrap_or_default();
    // Nodeprep may fold case or normalise Unicode, so compare exactly only where it cannot.
    if user
        .chars()
        .all(|c| c.is_ascii() && !c.is_ascii_uppercase())
    {
        assert_eq!(back_user, user, "{uri} -> {jid} -> {back}: user changed");
    }
    assert_eq!(back.host, a.host, "{uri} -> {jid} -> {back}: host changed");
    if a.host != SIP_DOMAIN {
        assert_eq!(back.port, a.port, "{uri} -> {jid} -> {back}: port changed");
    }
    // Resourceprep may normalise non-ASCII text, like Nodeprep above.
    if a.gr
        .as_deref()
        .unwrap_or_default()
        .chars()
        .all(|c| c.is_ascii_graphic())
    {
        assert_eq!(back.gr, a.gr, "{uri} -> {jid} -> {back}: gr changed");
    }
    let again = map
        .sip_to_jid(&back)
        .unwrap_or_else(|e| panic!("{uri} -> {jid} -> {back} does not map to a JID: {e}"));
    assert_eq!(
        again, jid,
        "{uri} -> {jid} -> {back} -> {again}: not a fixed point"
    );
}

fn xmpp_side(text: &str, map: &AddressMap) {
    let Ok(jid) = Jid::new(text) else {
        return;
    };
    let Ok(sip) = map.jid_to_sip(&jid) else {
        return;
    };
    let uri = sip.to_uri();
    assert_eq!(
        SipAddr::parse(&uri).as_ref(),
        Ok(&sip),
        "{jid} -> {uri:?} does not re-parse to the same address"
    );
    // An escaped AOR in the gateway's own domains (`juliet\40example.com@sip.example.com`)
    // is an XMPP address: callers refuse to send there (GEN-5), it needs no way back.
    if map.is_component_jid(&jid) && (sip.host == COMPONENT || sip.host == XMPP_DOMAIN) {
        return;
    }
    // F7: the SIP address has a JID; F5, F6, F9: the JID it maps back to is this one.
    let back = map
        .sip_to_jid(&sip)
        .unwrap_or_else(|e| panic!("{jid} -> {uri} does not map back to a JID: {e}"));
    let alias = jid.node().is_some_and(|n| n.as_str().contains('%'));
    if !alias {
        assert_eq!(back, jid, "{jid} -> {uri} -> {back}: JID changed");
    }
    let sip_again = map
        .jid_to_sip(&back)
        .unwrap_or_else(|e| panic!("{jid} -> {uri} -> {back} does not map to SIP: {e}"));
    assert_eq!(
        sip_again, sip,
        "{jid} -> {uri} -> {back} -> {sip_again}: not a fixed point"
    );
}

fn translate(text: &str, map: &AddressMap) {
    let Ok(out) = map.translate(text) else {
        return;
    };
    if out.starts_with("sip:") {
        assert!(
            SipAddr::parse(&out).is_ok(),
            "translate({text:?}) = {out:?}, which is no SIP address"
        );
    } else {
        assert!(
            Jid::new(&out).is_ok(),
            "translate({text:?}) = {out:?}, which is no JID"
        );
    }
}
