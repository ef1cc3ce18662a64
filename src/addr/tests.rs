//! Tests for the RFC 7247 §6 address plan ([`AddressMap`]): the ADDR-6 vectors, the ADDR-11
//! component forms, the checklist worked examples A1/A2/A4, error cases and round-trip properties.

use super::*;
use proptest::prelude::*;

/// The deployment of CHECKLIST §0: component `sip.example.com`, XMPP server `example.com`,
/// default SIP domain `example.net`.
fn component_map() -> AddressMap {
    AddressMap::new("sip.example.com", &["example.com".into()], "example.net")
}

/// RFC 7247 assumes the SIP and XMPP domains coincide (`f&#xFC;@sip.example` is reachable as
/// `sip:f%C3%BC@sip.example`). In our plan that is exactly the "served XMPP domain" case, where the
/// host is kept, so the ADDR-6 vectors are tested with every vector domain served; the component and
/// default SIP domain are placed elsewhere so they cannot shadow the vectors.
fn stox_map() -> AddressMap {
    AddressMap::new(
        "gw.example",
        &[
            "sip.example".into(),
            "xmpp.example".into(),
            "x.example".into(),
        ],
        "default.example",
    )
}

fn s2x(map: &AddressMap, uri: &str) -> Result<String, AddrError> {
    Ok(map.sip_to_jid(&SipAddr::parse(uri)?)?.to_string())
}

fn x2s(map: &AddressMap, jid: &str) -> Result<String, AddrError> {
    let jid = Jid::new(jid).map_err(jid_error)?;
    Ok(map.jid_to_sip(&jid)?.to_uri())
}

/// Asserts both directions of a vector whose SIP form is canonical.
fn both_ways(map: &AddressMap, uri: &str, jid: &str) {
    assert_eq!(s2x(map, uri).as_deref(), Ok(jid), "SIP→XMPP {uri}");
    assert_eq!(x2s(map, jid).as_deref(), Ok(uri), "XMPP→SIP {jid}");
}

#[test]
fn addr_6_vector_fu_percent_decoded() {
    both_ways(&stox_map(), "sip:f%C3%BC@sip.example", "fü@sip.example");
}

#[test]
fn addr_6_vector_omalley_apostrophe_escaped() {
    both_ways(
        &stox_map(),
        "sip:o'malley@sip.example",
        "o\\27malley@sip.example",
    );
}

#[test]
fn addr_6_vector_foo_gr_bar_resource() {
    both_ways(
        &stox_map(),
        "sip:foo@sip.example;gr=bar",
        "foo@sip.example/bar",
    );
}

#[test]
fn addr_6_vector_m_ampersand_m() {
    both_ways(&stox_map(), "sip:m&m@xmpp.example", "m\\26m@xmpp.example");
}

#[test]
fn addr_6_vector_tschuess_percent_encoded() {
    both_ways(
        &stox_map(),
        "sip:tsch%C3%BCss@xmpp.example",
        "tschüss@xmpp.example",
    );
}

#[test]
fn addr_6_vector_baz_gr_qux_resource() {
    both_ways(
        &stox_map(),
        "sip:baz@xmpp.example;gr=qux",
        "baz@xmpp.example/qux",
    );
}

#[test]
fn addr_6_vector_impl_a_at_b() {
    both_ways(&stox_map(), "sip:a%40b@x.example", "a\\40b@x.example");
}

#[test]
fn addr_6_vector_impl_a_slash_b_both_spellings() {
    let map = stox_map();
    both_ways(&map, "sip:a/b@x.example", "a\\2fb@x.example");
    assert_eq!(
        s2x(&map, "sip:a%2Fb@x.example").as_deref(),
        Ok("a\\2fb@x.example")
    );
    assert_eq!(
        s2x(&map, "sip:a%2fb@x.example").as_deref(),
        Ok("a\\2fb@x.example")
    );
}

#[test]
fn addr_6_vectors_under_component_plan() {
    // The same local parts through the ADDR-11 default-SIP-domain mapping.
    let map = component_map();
    both_ways(&map, "sip:f%C3%BC@example.net", "fü@sip.example.com");
    both_ways(
        &map,
        "sip:o'malley@example.net",
        "o\\27malley@sip.example.com",
    );
    both_ways(
        &map,
        "sip:foo@example.net;gr=bar",
        "foo@sip.example.com/bar",
    );
    both_ways(&map, "sip:m&m@example.com", "m\\26m@example.com");
    both_ways(&map, "sip:baz@example.com;gr=qux", "baz@example.com/qux");
    both_ways(&map, "sip:a/b@example.net", "a\\2fb@sip.example.com");
}

#[test]
fn addr_11_default_sip_domain() {
    both_ways(
        &component_map(),
        "sip:romeo@example.net",
        "romeo@sip.example.com",
    );
}

#[test]
fn addr_11_foreign_aor_escaped() {
    both_ways(
        &component_map(),
        "sip:bob@other.org",
        "bob\\40other.org@sip.example.com",
    );
}

#[test]
fn addr_11_foreign_aor_percent_alias() {
    let map = component_map();
    assert_eq!(
        x2s(&map, "bob%other.org@sip.example.com").as_deref(),
        Ok("sip:bob@other.org")
    );
    // The alias only applies without '@' and when a valid host follows the last '%'.
    assert_eq!(
        x2s(&map, "a%b\\40c.org@sip.example.com").as_deref(),
        Ok("sip:a%25b@c.org")
    );
    assert_eq!(
        x2s(&map, "100%@sip.example.com").as_deref(),
        Ok("sip:100%25@example.net")
    );
    assert_eq!(
        x2s(&map, "%other.org@sip.example.com").as_deref(),
        Ok("sip:%25other.org@example.net")
    );
}

#[test]
fn addr_11_foreign_aor_with_port_and_ip_literals() {
    let map = component_map();
    both_ways(
        &map,
        "sip:bob@10.0.0.1:5080",
        "bob\\4010.0.0.1\\3a5080@sip.example.com",
    );
    both_ways(
        &map,
        "sip:bob@[2001:db8::1]:5060",
        "bob\\40[2001\\3adb8\\3a\\3a1]\\3a5060@sip.example.com",
    );
}

#[test]
fn addr_11_default_domain_user_with_at_or_percent_uses_aor_form() {
    let map = component_map();
    both_ways(
        &map,
        "sip:a%40b@example.net",
        "a\\40b\\40example.net@sip.example.com",
    );
    both_ways(
        &map,
        "sip:100%25@example.net",
        "100%\\40example.net@sip.example.com",
    );
}

#[test]
fn addr_11_served_xmpp_user_with_resource_gr() {
    let map = component_map();
    assert_eq!(
        x2s(&map, "juliet@example.com/balcony").as_deref(),
        Ok("sip:juliet@example.com;gr=balcony")
    );
    assert_eq!(
        s2x(&map, "sip:juliet@example.com;gr=balcony").as_deref(),
        Ok("juliet@example.com/balcony")
    );
}

#[test]
fn addr_11_xmpp_user_through_component_host() {
    let map = component_map();
    assert_eq!(
        s2x(&map, "sip:juliet@sip.example.com").as_deref(),
        Ok("juliet@example.com")
    );
    assert_eq!(
        s2x(&map, "sip:juliet%40other.org@sip.example.com").as_deref(),
        Ok("juliet@other.org")
    );
    assert_eq!(
        s2x(&map, "sip:o'malley%40Other.ORG@sip.example.com;gr=x").as_deref(),
        Ok("o\\27malley@other.org/x")
    );
    let no_domains = AddressMap::new("sip.example.com", &[], "example.net");
    assert_eq!(
        s2x(&no_domains, "sip:juliet@sip.example.com"),
        Err(AddrError::NotServed("sip.example.com".into()))
    );
}

#[test]
fn addr_example_a1_apostrophe_from_sip() {
    assert_eq!(
        s2x(&component_map(), "<sip:o'malley@example.net>;tag=a1").as_deref(),
        Ok("o\\27malley@sip.example.com")
    );
}

#[test]
fn addr_example_a2_non_ascii_localpart_and_resource() {
    let map = component_map();
    let jid = Jid::new("tschüss@example.com/Küche").unwrap();
    let addr = map.jid_to_sip(&jid).unwrap();
    assert_eq!(addr.to_uri(), "sip:tsch%C3%BCss@example.com;gr=K%C3%BCche");
    assert_eq!(addr.aor(), "sip:tsch%C3%BCss@example.com");
}

#[test]
fn addr_example_a4_foreign_contact() {
    let map = component_map();
    assert_eq!(
        s2x(&map, "<sip:romeo@verona.example>").as_deref(),
        Ok("romeo\\40verona.example@sip.example.com")
    );
    assert_eq!(
        map.translate("xmpp:romeo%5C40verona.example@sip.example.com")
            .as_deref(),
        Ok("sip:romeo@verona.example")
    );
}

#[test]
fn addr_8_gr_to_resource_and_back() {
    let map = component_map();
    both_ways(
        &map,
        "sip:romeo@example.net;gr=urn:uuid:f81d",
        "romeo@sip.example.com/urn:uuid:f81d",
    );
    both_ways(
        &map,
        "sip:bob@other.org;gr=a%20b",
        "bob\\40other.org@sip.example.com/a b",
    );
    assert_eq!(
        s2x(&map, "sip:romeo@example.net;gr").as_deref(),
        Ok("romeo@sip.example.com")
    );
}

#[test]
fn addr_4_port_of_default_and_served_domains_dropped() {
    let map = component_map();
    assert_eq!(
        s2x(&map, "sip:romeo@example.net:5080").as_deref(),
        Ok("romeo@sip.example.com")
    );
    assert_eq!(
        s2x(&map, "sip:juliet@example.com:5060").as_deref(),
        Ok("juliet@example.com")
    );
}

#[test]
fn addr_4_step_6_nodeprep_case_folding() {
    // Nodeprep (ADDR-4 step 6) is applied by the JID library; case is not preserved.
    let map = component_map();
    assert_eq!(
        s2x(&map, "sip:Romeo@EXAMPLE.NET").as_deref(),
        Ok("romeo@sip.example.com")
    );
    assert_eq!(
        s2x(&map, "sip:Bob@Other.org").as_deref(),
        Ok("bob\\40other.org@sip.example.com")
    );
}

#[test]
fn addr_4_nodeprep_must_not_change_escaping() {
    let map = component_map();
    // U+FF3C FULLWIDTH REVERSE SOLIDUS would become a live `\20` after NFKC.
    assert!(matches!(
        s2x(&map, "sip:%EF%BC%BC20x@example.net"),
        Err(AddrError::InvalidJid(_))
    ));
    // Literal backslash, then U+00AD SOFT HYPHEN (mapped to nothing), then "20".
    assert!(matches!(
        s2x(&map, "sip:%5C%C2%AD20x@example.net"),
        Err(AddrError::InvalidJid(_))
    ));
    // '>' + U+0301: `\3e` + combining acute composes to `\3é`.
    assert!(matches!(
        s2x(&map, "sip:a%3E%CC%81@example.net"),
        Err(AddrError::InvalidJid(_))
    ));
}

#[test]
fn comp_11_leading_or_trailing_space_rejected() {
    let map = component_map();
    assert!(matches!(
        s2x(&map, "sip:%20bob@example.net"),
        Err(AddrError::InvalidJid(_))
    ));
    assert!(matches!(
        s2x(&map, "sip:bob%20@example.com"),
        Err(AddrError::InvalidJid(_))
    ));
    assert!(matches!(
        x2s(&map, "\\20bob@sip.example.com"),
        Err(AddrError::InvalidJid(_))
    ));
    assert_eq!(
        s2x(&map, "sip:a%20b@example.net").as_deref(),
        Ok("a\\20b@sip.example.com")
    );
}

#[test]
fn addr_4_error_cases() {
    let map = component_map();
    assert_eq!(
        s2x(&map, "tel:+123"),
        Err(AddrError::UnsupportedScheme("tel".into()))
    );
    assert_eq!(
        s2x(&map, "http://x"),
        Err(AddrError::UnsupportedScheme("http".into()))
    );
    assert!(matches!(
        s2x(&map, "sip:%ZZ@x"),
        Err(AddrError::Malformed(_))
    ));
    assert_eq!(s2x(&map, "sip:%FF@x"), Err(AddrError::InvalidUtf8));
    assert!(matches!(s2x(&map, "sip:@x"), Err(AddrError::Malformed(_))));
    assert!(matches!(s2x(&map, "sip:"), Err(AddrError::Malformed(_))));
    assert!(matches!(s2x(&map, "garbage"), Err(AddrError::Malformed(_))));
    assert_eq!(s2x(&map, "sip:example.net"), Err(AddrError::NoUser));
    // NUL survives URI decoding but not Nodeprep.
    assert!(matches!(
        s2x(&map, "sip:a%00b@example.net"),
        Err(AddrError::InvalidJid(_))
    ));
    assert!(matches!(
        s2x(&map, "sip:%40x@sip.example.com"),
        Err(AddrError::InvalidJid(_))
    ));
}

#[test]
fn addr_5_error_cases() {
    let map = component_map();
    assert_eq!(
        x2s(&map, "juliet@jabber.org"),
        Err(AddrError::NotServed("jabber.org".into()))
    );
    assert_eq!(x2s(&map, "sip.example.com"), Err(AddrError::NoUser));
    assert_eq!(x2s(&map, "sip.example.com/res"), Err(AddrError::NoUser));
    assert_eq!(x2s(&map, "example.com"), Err(AddrError::NoUser));
    assert_eq!(
        x2s(&map, "\\40other.org@sip.example.com"),
        Err(AddrError::NoUser)
    );
    assert!(matches!(
        x2s(&map, "bob\\40@sip.example.com"),
        Err(AddrError::Malformed(_))
    ));
    assert!(matches!(
        x2s(&map, "bob\\40a\\3a99999@sip.example.com"),
        Err(AddrError::Malformed(_))
    ));
    assert!(matches!(
        x2s(&map, "bob\\40a_b@sip.example.com"),
        Err(AddrError::Malformed(_))
    ));
}

#[test]
fn addr_11_map_domains_normalised() {
    let map = AddressMap::new(" SIP.Example.COM. ", &["Example.Com".into()], "EXAMPLE.net");
    assert_eq!(map.component(), "sip.example.com");
    assert_eq!(map.xmpp_domains(), ["example.com".to_owned()]);
    assert_eq!(map.sip_domain(), "example.net");
    assert!(map.is_component_jid(&Jid::new("romeo@SIP.example.com/x").unwrap()));
    assert!(!map.is_component_jid(&Jid::new("juliet@example.com").unwrap()));
    assert_eq!(
        x2s(&map, "romeo@sip.example.com").as_deref(),
        Ok("sip:romeo@example.net")
    );
}

#[test]
fn addr_translate_both_directions() {
    let map = component_map();
    for (input, want) in [
        ("sip:romeo@example.net", "romeo@sip.example.com"),
        ("  <sip:romeo@example.net>  ", "romeo@sip.example.com"),
        (
            "\"Romeo\" <sip:romeo@example.net>;tag=1",
            "romeo@sip.example.com",
        ),
        ("Romeo <SIP:romeo@example.net>", "romeo@sip.example.com"),
        ("pres:juliet@example.com", "juliet@example.com"),
        ("romeo@sip.example.com", "sip:romeo@example.net"),
        ("<romeo@sip.example.com>", "sip:romeo@example.net"),
        (
            "romeo@sip.example.com/a<b>",
            "sip:romeo@example.net;gr=a%3Cb%3E",
        ),
        (
            "xmpp:romeo@sip.example.com?message;subject=hi",
            "sip:romeo@example.net",
        ),
        (
            "xmpp://me@example.com/romeo@sip.example.com",
            "sip:romeo@example.net",
        ),
        (
            "<xmpp:juliet@example.com/balcony>",
            "sip:juliet@example.com;gr=balcony",
        ),
        ("bob%other.org@sip.example.com", "sip:bob@other.org"),
    ] {
        assert_eq!(map.translate(input).as_deref(), Ok(want), "{input}");
    }
}

#[test]
fn addr_translate_errors_explain() {
    let map = component_map();
    assert_eq!(
        map.translate("tel:+123"),
        Err(AddrError::UnsupportedScheme("tel".into()))
    );
    assert_eq!(
        map.translate("http://x"),
        Err(AddrError::UnsupportedScheme("http".into()))
    );
    assert_eq!(
        map.translate("<tel:+1>"),
        Err(AddrError::UnsupportedScheme("tel".into()))
    );
    assert_eq!(map.translate("sip:%FF@x"), Err(AddrError::InvalidUtf8));
    assert_eq!(map.translate("xmpp:%FF@x"), Err(AddrError::InvalidUtf8));
    assert!(matches!(
        map.translate("xmpp:%ZZ"),
        Err(AddrError::Malformed(_))
    ));
    assert!(matches!(
        map.translate("sip:"),
        Err(AddrError::Malformed(_))
    ));
    assert!(matches!(map.translate(""), Err(AddrError::Malformed(_))));
    assert!(matches!(
        map.translate("a@b@c"),
        Err(AddrError::InvalidJid(_))
    ));
    assert_eq!(
        map.translate("juliet@jabber.org"),
        Err(AddrError::NotServed("jabber.org".into()))
    );
    assert_eq!(map.translate("sip.example.com"), Err(AddrError::NoUser));
    let msg = map.translate("tel:+123").unwrap_err().to_string();
    assert!(msg.contains("tel"), "{msg}");
}

/// User parts whose Nodeprep form equals their escaped form: printable, heavy on punctuation
/// (ASCII space..'@', '['..'~'), no uppercase (case folding is lossy by design, see
/// `addr_4_step_6_nodeprep_case_folding`), some Latin-1, Greek and CJK letters.
fn user_part() -> impl Strategy<Value = String> {
    "[ -@\\[-~à-öø-ÿα-ρσ-ω一-丿]{1,16}"
}

/// Checks `to_uri → parse → sip_to_jid → text → Jid → jid_to_sip` returns the original address.
fn sip_round_trip(map: &AddressMap, addr: &SipAddr, raw_node: &str) -> Result<(), TestCaseError> {
    let parsed = SipAddr::parse(&addr.to_uri()).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&parsed, addr);
    let jid = map.sip_to_jid(&parsed);
    prop_assume!(jid.is_ok(), "rejected by the JID rules: {:?}", jid);
    let jid = jid.map_err(|e| TestCaseError::fail(e.to_string()))?;
    // Only strings Nodeprep leaves alone can round-trip exactly.
    prop_assume!(jid.node().map(|n| n.as_str()) == Some(escape_localpart(raw_node).as_str()));
    let reparsed = Jid::new(jid.as_str()).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&reparsed, &jid);
    let back = map
        .jid_to_sip(&reparsed)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&back, addr);
    Ok(())
}

fn gr_value() -> impl Strategy<Value = Option<String>> {
    prop::option::of("[!-~]{1,8}")
}

proptest! {
    #[test]
    fn addr_11_prop_default_domain_round_trip(user in user_part(), gr in gr_value()) {
        let map = component_map();
        let addr = SipAddr { scheme: Scheme::Sip, user: Some(user.clone()), host: "example.net".into(), port: None, gr };
        let raw_node = if user.contains(['@', '%']) { format!("{user}@example.net") } else { user };
        sip_round_trip(&map, &addr, &raw_node)?;
    }

    #[test]
    fn addr_11_prop_foreign_domain_round_trip(
        user in user_part(),
        host in prop::sample::select(vec!["other.org", "10.0.0.1", "[2001:db8::1]", "a-b.example", "verona.example"]),
        port in prop::option::of(any::<u16>()),
        gr in gr_value(),
    ) {
        let map = component_map();
        let addr = SipAddr { scheme: Scheme::Sip, user: Some(user.clone()), host: host.into(), port, gr };
        let raw_node = match port {
            Some(p) => format!("{user}@{host}:{p}"),
            None => format!("{user}@{host}"),
        };
        sip_round_trip(&map, &addr, &raw_node)?;
    }

    #[test]
    fn addr_6_prop_served_domain_round_trip(user in user_part(), gr in gr_value()) {
        let map = component_map();
        let addr = SipAddr { scheme: Scheme::Sip, user: Some(user.clone()), host: "example.com".into(), port: None, gr };
        sip_round_trip(&map, &addr, &user)?;
    }

    #[test]
    fn addr_prop_translate_never_panics(s in any::<String>()) {
        let _ = component_map().translate(&s);
    }

    #[test]
    fn addr_prop_translate_never_panics_bytes(b in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = component_map().translate(&String::from_utf8_lossy(&b));
    }

    #[test]
    fn addr_prop_translate_never_panics_structured(
        pre in prop::sample::select(vec!["sip:", "xmpp:", "xmpp://", "<", "\"a\" <sip:", "", "tel:"]),
        body in "[a-z0-9@:;?=%<>/\\\\. \\[\\]-]{0,24}",
        post in prop::sample::select(vec!["", "@sip.example.com", "@example.com/r", "@example.net", ">"]),
    ) {
        let _ = component_map().translate(&format!("{pre}{body}{post}"));
    }
}

#[test]
fn addr_5_non_canonical_backslash_localpart_is_refused() {
    // fuzz/regressions/address/jid-backslash-5c: `a\5cb` and `a\b` would share sip:a%5Cb@...
    let map = AddressMap::new("sip.example.com", &["example.com".into()], "example.net");
    let jid = Jid::new("a\\5cb@example.com/r").unwrap();
    assert!(matches!(
        map.jid_to_sip(&jid),
        Err(AddrError::InvalidJid(_))
    ));
    let ok = Jid::new("a\\b@example.com").unwrap();
    assert_eq!(
        map.jid_to_sip(&ok).unwrap().to_uri(),
        "sip:a%5Cb@example.com"
    );
}

#[test]
fn addr_8_f1_gr_of_im_and_pres_uri_is_ignored() {
    // fuzz/regressions/address/im-gr-dropped-by-to_uri: `gr` exists only for sip:/sips:
    // (RFC 7247 §6.3); kept for im: it became a resource that mapped back as a sip: GRUU.
    let map = component_map();
    for uri in ["im:romeo@example.net;gr=x", "pres:romeo@example.net;gr=x"] {
        let a = SipAddr::parse(uri).unwrap();
        assert_eq!(a.gr, None, "{uri}");
        assert_eq!(SipAddr::parse(&a.to_uri()).as_ref(), Ok(&a), "{uri}");
        assert_eq!(s2x(&map, uri).as_deref(), Ok("romeo@sip.example.com"));
    }
    assert_eq!(
        s2x(&map, "sip:romeo@example.net;gr=x").as_deref(),
        Ok("romeo@sip.example.com/x")
    );
}

#[test]
fn addr_5_f5_port_with_leading_zero_is_refused() {
    // fuzz/regressions/address/jid-port-leading-zero: `\3a05060` and `\3a5060` would both be
    // sip:bob@other.org:5060, and the SIP user's reply comes from the second JID only.
    let map = component_map();
    assert!(matches!(
        x2s(&map, "bob\\40other.org\\3a05060@sip.example.com"),
        Err(AddrError::InvalidJid(_))
    ));
    both_ways(
        &map,
        "sip:bob@other.org:5060",
        "bob\\40other.org\\3a5060@sip.example.com",
    );
}

#[test]
fn addr_5_non_canonical_component_jids_are_refused() {
    // Same rule as F5: the default SIP domain written as a foreign AOR is a second JID for
    // sip:bob@example.net, whose replies come from bob@sip.example.com.
    let map = component_map();
    assert!(matches!(
        x2s(&map, "bob\\40example.net@sip.example.com"),
        Err(AddrError::InvalidJid(_))
    ));
    // Addresses that point back into the gateway are refused by the caller (GEN-5).
    assert_eq!(
        x2s(&map, "juliet\\40example.com@sip.example.com").as_deref(),
        Ok("sip:juliet@example.com")
    );
    // The XEP-0100 `%` alias stays an accepted input spelling.
    assert_eq!(
        x2s(&map, "bob%other.org@sip.example.com").as_deref(),
        Ok("sip:bob@other.org")
    );
}

#[test]
fn addr_5_f7_jid_whose_sip_address_has_no_jid_is_refused() {
    // fuzz/regressions/address/jid-percent-localpart-too-long-to-map-back: the SIP address is
    // a default-domain user with `%`, whose escaped-AOR JID is over the 1023-byte limit.
    let map = component_map();
    let long = format!("{}%@sip.example.com", "a".repeat(1010));
    assert!(matches!(x2s(&map, &long), Err(AddrError::InvalidJid(_))));
    let short = format!("{}%@sip.example.com", "a".repeat(900));
    let uri = x2s(&map, &short).unwrap();
    assert_eq!(
        s2x(&map, &uri),
        Ok(format!(
            "{}%\\40example.net@sip.example.com",
            "a".repeat(900)
        ))
    );
}

#[test]
fn addr_4_f8_nodeprep_result_not_canonical_is_refused() {
    // fuzz/regressions/address/nodeprep-not-idempotent-u3250: U+3250 is unassigned in
    // Unicode 3.2; the jid crate's Nodeprep gives `PTE`, which prepares again to `pte`.
    let map = component_map();
    assert!(matches!(
        s2x(&map, "sip:%E3%89%90@other.org"),
        Err(AddrError::InvalidJid(_))
    ));
    assert!(matches!(
        s2x(&map, "sip:%E3%89%90@example.net"),
        Err(AddrError::InvalidJid(_))
    ));
    // The same JID text given on the XMPP side is refused too: it is not the JID that its SIP
    // address maps to.
    let jid = Jid::new("\u{3250}@example.com").unwrap();
    assert!(matches!(
        map.jid_to_sip(&jid),
        Err(AddrError::InvalidJid(_))
    ));
}

#[test]
fn addr_5_f9_jid_with_trailing_dot_domain_is_refused() {
    // fuzz/regressions/address/jid-domain-trailing-dot-resource: jid 0.12.3 reads the
    // resource of `romeo@sip.example.com./phone` as `/phone`.
    let map = component_map();
    for text in [
        "romeo@sip.example.com./phone",
        "juliet@example.com./balcony",
    ] {
        let jid = Jid::new(text).unwrap();
        assert!(
            matches!(map.jid_to_sip(&jid), Err(AddrError::InvalidJid(_))),
            "{text}"
        );
    }
    // A root dot in an XMPP domain written on the SIP side is dropped.
    assert_eq!(
        s2x(&map, "sip:juliet%40other.org.@sip.example.com;gr=x").as_deref(),
        Ok("juliet@other.org/x")
    );
}

#[test]
fn addr_4_f11_nodeprep_deleting_the_user_is_refused() {
    // fuzz/regressions/address/nodeprep-deletes-whole-user-soft-hyphen: Nodeprep maps U+00AD
    // to nothing, so `\u{AD}@s-` became the user-less localpart `\40s-`.
    let map = component_map();
    for uri in ["im:%C2%AD@s-", "sip:%C2%AD@other.org"] {
        assert!(
            matches!(s2x(&map, uri), Err(AddrError::InvalidJid(_))),
            "{uri}"
        );
    }
    // A soft hyphen inside a user is only dropped, as Nodeprep wants.
    assert_eq!(
        s2x(&map, "sip:bo%C2%ADb@other.org").as_deref(),
        Ok("bob\\40other.org@sip.example.com")
    );
}
