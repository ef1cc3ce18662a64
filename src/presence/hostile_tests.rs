//! Hostile PIDF bodies (a NOTIFY or PUBLISH from any SIP peer): each case with its expected
//! error and SIP status, and the resource-exhaustion cases with a time bound.

use std::time::{Duration, Instant};

use super::pidf::*;

const HEAD: &str = "<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='pres:romeo@example.net'>";
const TUPLE: &str = "<tuple id='t'><status><basic>open</basic></status></tuple>";

fn doc(inner: &str) -> String {
    format!("{HEAD}{inner}</presence>")
}

fn is_xml(e: &PidfError) -> bool {
    matches!(e, PidfError::Xml(_))
}

/// Parses and checks both the error and its SIP rendering, within a generous time bound
/// (debug build on a slow CI machine: every case here takes microseconds).
fn refused(body: &[u8], check: impl Fn(&PidfError) -> bool, sip: u16) {
    let start = Instant::now();
    let result = parse(body);
    let elapsed = start.elapsed();
    let shown = String::from_utf8_lossy(&body[..body.len().min(120)]).into_owned();
    match result {
        Err(e) => {
            assert!(check(&e), "unexpected error {e:?} for {shown}");
            assert_eq!(e.rejection().sip.code, sip, "{e} for {shown}");
        }
        Ok(d) => panic!("accepted {d:?} for {shown}"),
    }
    assert!(elapsed < Duration::from_secs(1), "{elapsed:?} for {shown}");
}

#[test]
fn truncated_bodies_are_refused_at_every_cut() {
    let body = doc(&format!("{TUPLE}<note xml:lang='en'>hi &amp; bye</note>"));
    for cut in 0..body.len() {
        let prefix = &body.as_bytes()[..cut];
        // Every proper prefix lacks the final `>`, so none is a complete document.
        assert!(parse(prefix).is_err(), "accepted prefix {cut}");
    }
    refused(&body.as_bytes()[..body.len() - 5], is_xml, 400);
    assert!(parse(body.as_bytes()).is_ok());
}

#[test]
fn wrong_namespace_and_non_pidf_roots_are_refused() {
    let cases = [
        "<presence xmlns='urn:ietf:params:xml:ns:pidf:wrong' entity='pres:a@b'/>",
        "<presence xmlns='urn:ietf:params:xml:ns:pidf:' entity='pres:a@b'/>",
        // An XMPP presence stanza is not a PIDF document.
        "<presence xmlns='jabber:client' from='a@b'/>",
        "<html xmlns='http://www.w3.org/1999/xhtml'><body/></html>",
        "<tuple xmlns='urn:ietf:params:xml:ns:pidf' id='t'/>",
        "<p:presence xmlns:p='urn:ietf:params:xml:ns:pidf:rpid' entity='pres:a@b'/>",
    ];
    for body in cases {
        refused(body.as_bytes(), |e| matches!(e, PidfError::NotPidf(_)), 400);
    }
    // No namespace at all: minidom cannot resolve the element name.
    refused(b"<presence entity='pres:a@b'/>", is_xml, 400);
    refused(
        b"<p:presence xmlns:q='urn:ietf:params:xml:ns:pidf' entity='x'/>",
        is_xml,
        400,
    );
}

#[test]
fn dtd_with_internal_entity_is_refused() {
    let body = format!(
        "<?xml version='1.0'?><!DOCTYPE presence [<!ENTITY who 'romeo'>]>{}",
        doc("<note>&who;</note>")
    );
    refused(body.as_bytes(), is_xml, 400);
}

#[test]
fn external_entity_xxe_is_refused() {
    let body = format!(
        "<!DOCTYPE presence [<!ENTITY xxe SYSTEM 'file:///etc/passwd'>]>{}",
        doc("<note>&xxe;</note>")
    );
    refused(body.as_bytes(), is_xml, 400);
}

#[test]
fn billion_laughs_is_refused_fast() {
    let mut dtd = String::from("<?xml version='1.0'?>\n<!DOCTYPE lolz [\n <!ENTITY lol 'lol'>\n");
    for i in 1..10 {
        let prev = if i == 1 {
            "lol".to_owned()
        } else {
            format!("lol{}", i - 1)
        };
        let refs = format!("&{prev};").repeat(10);
        dtd.push_str(&format!(" <!ENTITY lol{i} '{refs}'>\n"));
    }
    dtd.push_str("]>\n");
    let body = format!("{dtd}{}", doc("<note>&lol9;</note>"));
    refused(body.as_bytes(), is_xml, 400);
}

#[test]
fn undeclared_entity_reference_is_refused() {
    refused(doc("<note>&lol9;</note>").as_bytes(), is_xml, 400);
    refused(doc("<note>&#0;</note>").as_bytes(), is_xml, 400);
    refused(doc("<note>&#xD800;</note>").as_bytes(), is_xml, 400);
}

#[test]
fn deep_nesting_is_refused_before_a_tree_exists() {
    // 20 000 levels inside an unknown extension: under the size limit, and deep enough to
    // overflow the stack if a tree were built and dropped recursively.
    let depth = 20_000;
    let body = doc(&format!("<x:a xmlns:x='u'>{}", "<a>".repeat(depth)));
    assert!(body.len() <= MAX_BODY_BYTES);
    refused(
        body.as_bytes(),
        |e| *e == PidfError::TooDeep(MAX_DEPTH),
        400,
    );
}

#[test]
fn nesting_limit_is_exact() {
    // presence is level 1, so MAX_DEPTH - 1 extension levels are still fine.
    let ok_depth = MAX_DEPTH - 1;
    let nested = |n: usize| format!("{}{}", "<x:e xmlns:x='u'>".repeat(n), "</x:e>".repeat(n));
    assert!(parse(doc(&nested(ok_depth)).as_bytes()).is_ok());
    refused(
        doc(&nested(ok_depth + 1)).as_bytes(),
        |e| *e == PidfError::TooDeep(MAX_DEPTH),
        400,
    );
}

#[test]
fn huge_attribute_is_refused() {
    for size in [MAX_TOKEN_BYTES + 1, 60_000] {
        let body = format!(
            "<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='pres:{}@example.net'/>",
            "a".repeat(size)
        );
        refused(body.as_bytes(), is_xml, 400);
    }
    let fits = format!(
        "<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='{}'/>",
        "a".repeat(MAX_TOKEN_BYTES)
    );
    assert!(parse(fits.as_bytes()).is_ok());
}

#[test]
fn huge_element_name_is_refused() {
    let name = "n".repeat(MAX_TOKEN_BYTES + 1);
    refused(doc(&format!("<{name}/>")).as_bytes(), is_xml, 400);
}

#[test]
fn invalid_utf8_is_refused() {
    let cases: [&[u8]; 4] = [
        b"<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='pres:\xff@b'/>",
        // Overlong encoding of '<'.
        b"\xc0\xbcpresence/>",
        // UTF-16LE with BOM.
        b"\xff\xfe<\x00p\x00/\x00>\x00",
        // A lone surrogate encoded in UTF-8 (CESU style).
        b"<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='\xed\xa0\x80'/>",
    ];
    for body in cases {
        refused(body, |e| *e == PidfError::NotUtf8, 400);
    }
}

#[test]
fn one_hundred_thousand_tuples_are_refused_by_size_fast() {
    let tuples: String = (0..100_000)
        .map(|i| format!("<tuple id='t{i}'><status><basic>open</basic></status></tuple>"))
        .collect();
    let body = doc(&tuples);
    refused(
        body.as_bytes(),
        |e| {
            matches!(
                e,
                PidfError::TooLarge {
                    limit: MAX_BODY_BYTES,
                    ..
                }
            )
        },
        413,
    );
}

#[test]
fn too_many_tuples_under_the_size_limit_are_refused() {
    let tuples = |n: usize| -> String {
        (0..n)
            .map(|i| format!("<tuple id='t{i}'><status><basic>open</basic></status></tuple>"))
            .collect()
    };
    assert_eq!(
        parse(doc(&tuples(MAX_TUPLES)).as_bytes()).map(|d| d.tuples.len()),
        Ok(MAX_TUPLES)
    );
    refused(
        doc(&tuples(MAX_TUPLES + 1)).as_bytes(),
        |e| *e == PidfError::TooManyTuples(MAX_TUPLES),
        413,
    );
}

#[test]
fn too_many_elements_are_refused_while_streaming() {
    let body = doc(&"<x:e xmlns:x='u'/>".repeat(MAX_ELEMENTS));
    assert!(body.len() <= MAX_BODY_BYTES);
    refused(
        body.as_bytes(),
        |e| *e == PidfError::TooManyElements(MAX_ELEMENTS),
        413,
    );
    // presence + MAX_ELEMENTS - 1 children is exactly the limit.
    assert!(parse(doc(&"<e/>".repeat(MAX_ELEMENTS - 1)).as_bytes()).is_ok());
}

#[test]
fn too_many_attributes_on_one_element_are_refused() {
    let attrs: String = (0..MAX_ATTRIBUTES).map(|i| format!(" a{i}='v'")).collect();
    let body = format!("<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='pres:a@b'{attrs}/>");
    refused(
        body.as_bytes(),
        |e| *e == PidfError::TooManyAttributes(MAX_ATTRIBUTES),
        413,
    );
}

#[test]
fn oversize_body_is_refused_exactly_above_the_limit() {
    let base = doc(TUPLE);
    let padded = format!("{base}{}", " ".repeat(MAX_BODY_BYTES - base.len()));
    assert_eq!(padded.len(), MAX_BODY_BYTES);
    assert!(parse(padded.as_bytes()).is_ok());
    let over = format!("{padded} ");
    refused(
        over.as_bytes(),
        |e| {
            *e == PidfError::TooLarge {
                size: MAX_BODY_BYTES + 1,
                limit: MAX_BODY_BYTES,
            }
        },
        413,
    );
}

#[test]
fn other_malformed_xml_is_refused() {
    let cases = [
        String::new(),
        "   ".to_owned(),
        "<!-- only a comment -->".to_owned(),
        "not xml at all".to_owned(),
        // Duplicate attribute (rxml's raw parser leaves this check to us).
        "<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='a' entity='b'/>".to_owned(),
        doc("<tuple id='a' id='b'/>"),
        // Processing instruction.
        doc("<?evil payload?>"),
        "<?xml-stylesheet href='x'?><presence xmlns='urn:ietf:params:xml:ns:pidf' entity='a'/>"
            .to_owned(),
        // Two roots and trailing garbage.
        format!("{}{}", doc(""), doc("")),
        format!("{}garbage", doc("")),
        // Mismatched tags, CDATA end in text, unterminated declaration.
        doc("<tuple id='t'></note>"),
        doc("<note>]]></note>"),
        "<?xml version='1.0'".to_owned(),
        "<?xml version='2.0'?><presence xmlns='urn:ietf:params:xml:ns:pidf' entity='a'/>"
            .to_owned(),
        // Unbound prefix.
        doc("<q:x/>"),
        "<!-- open".to_owned(),
    ];
    for body in cases {
        refused(body.as_bytes(), is_xml, 400);
    }
}

#[test]
fn recognised_names_in_the_wrong_place_do_not_confuse_the_model() {
    // A tuple inside a note, a basic outside status, status twice: ignored or first wins.
    let body = doc("<note><tuple id='in-note'/></note>\
         <tuple id='t'><basic>open</basic><status><basic>closed</basic></status>\
         <status><basic>open</basic></status></tuple>");
    let d = parse(body.as_bytes()).expect("well-formed");
    assert_eq!(d.tuples, vec![Tuple::new("t", Some(Basic::Closed))]);
    assert_eq!(d.notes.len(), 1);
}

#[test]
fn thousands_of_comments_around_the_root_are_handled_in_linear_time() {
    let many = "<!---->".repeat(4000);
    let body = format!("{many}{}{many}", doc(TUPLE));
    assert!(body.len() <= MAX_BODY_BYTES);
    let start = Instant::now();
    assert_eq!(parse(body.as_bytes()).map(|d| d.tuples.len()), Ok(1));
    // A trailing `-->` without any `<!--` is just malformed.
    refused(format!("{}-->", doc(TUPLE)).as_bytes(), is_xml, 400);
    assert!(start.elapsed() < Duration::from_secs(1));
}
