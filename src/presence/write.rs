//! PIDF writer (RFC 3863 §4.1, §4.2.2): the document layout of RFC 8048 Example 19, with the
//! RFC 4479 `dm:` and RFC 4480 `rpid:` prefixes of the RFC 4480 §4 example. Re-exported as
//! [`super::pidf::to_xml`].

use super::pidf::{
    show_str, Activity, Note, Person, PresenceDoc, Tuple, DATA_MODEL_NS, PIDF_NS, RPID_NS,
};

/// Writes a complete PIDF document with the XML declaration RFC 3863 §4.1 requires, the
/// default PIDF namespace, and `dm:`/`rpid:` prefixes declared on the root only when used
/// (the layout of RFC 8048 Example 19 and RFC 4480 §4).
///
/// Characters XML cannot carry (most C0 controls, U+FFFE, U+FFFF) are dropped; CR, LF and TAB
/// are written as character references where parsing would otherwise normalise them, so the
/// round trip is exact.
pub fn to_xml(doc: &PresenceDoc) -> String {
    let mut out = String::from("<?xml version='1.0' encoding='UTF-8'?>\n");
    out.push_str("<presence xmlns='");
    out.push_str(PIDF_NS);
    out.push('\'');
    if !doc.persons.is_empty() {
        out.push_str(" xmlns:dm='");
        out.push_str(DATA_MODEL_NS);
        out.push('\'');
    }
    if doc.persons.iter().any(|p| !p.activities.is_empty()) {
        out.push_str(" xmlns:rpid='");
        out.push_str(RPID_NS);
        out.push('\'');
    }
    push_attr(&mut out, "entity", &doc.entity);
    out.push_str(">\n");
    for tuple in &doc.tuples {
        write_tuple(&mut out, tuple);
    }
    for note in &doc.notes {
        write_note(&mut out, "note", note);
    }
    for person in &doc.persons {
        write_person(&mut out, person);
    }
    out.push_str("</presence>\n");
    out
}

fn write_tuple(out: &mut String, tuple: &Tuple) {
    out.push_str("  <tuple");
    push_attr(out, "id", &tuple.id);
    out.push_str(">\n    <status>");
    if let Some(basic) = tuple.basic {
        out.push_str("<basic>");
        out.push_str(basic.as_str());
        out.push_str("</basic>");
    }
    if let Some(show) = &tuple.show {
        out.push_str("<show xmlns='jabber:client'>");
        out.push_str(show_str(show));
        out.push_str("</show>");
    }
    out.push_str("</status>\n");
    if let Some(contact) = &tuple.contact {
        out.push_str("    <contact");
        if let Some(priority) = contact.priority {
            push_attr(out, "priority", &priority.to_string());
        }
        out.push('>');
        push_text(out, &contact.uri);
        out.push_str("</contact>\n");
    }
    for note in &tuple.notes {
        out.push_str("  ");
        write_note(out, "note", note);
    }
    if let Some(timestamp) = &tuple.timestamp {
        out.push_str("    <timestamp>");
        push_text(out, timestamp);
        out.push_str("</timestamp>\n");
    }
    out.push_str("  </tuple>\n");
}

fn write_person(out: &mut String, person: &Person) {
    out.push_str("  <dm:person");
    if let Some(id) = &person.id {
        push_attr(out, "id", id);
    }
    out.push_str(">\n");
    if !person.activities.is_empty() {
        out.push_str("    <rpid:activities>");
        for activity in &person.activities {
            match activity {
                Activity::Other(text) => {
                    out.push_str("<rpid:other>");
                    push_text(out, text);
                    out.push_str("</rpid:other>");
                }
                known => {
                    out.push_str("<rpid:");
                    out.push_str(known.name());
                    out.push_str("/>");
                }
            }
        }
        out.push_str("</rpid:activities>\n");
    }
    for note in &person.notes {
        out.push_str("  ");
        write_note(out, "dm:note", note);
    }
    out.push_str("  </dm:person>\n");
}

fn write_note(out: &mut String, name: &str, note: &Note) {
    out.push_str("  <");
    out.push_str(name);
    // No enclosing element of our output carries xml:lang, so a note without one parses back
    // as having no language.
    if let Some(lang) = &note.lang {
        push_attr(out, "xml:lang", lang);
    }
    out.push('>');
    push_text(out, &note.text);
    out.push_str("</");
    out.push_str(name);
    out.push_str(">\n");
}

/// ` name='value'` with the value escaped for a single-quoted attribute.
fn push_attr(out: &mut String, name: &str, value: &str) {
    out.push(' ');
    out.push_str(name);
    out.push_str("='");
    for c in value.chars().filter(|c| is_xml_char(*c)) {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '\'' => out.push_str("&apos;"),
            // Attribute-value normalisation would turn these into spaces.
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    out.push('\'');
}

/// Character data, escaped.
fn push_text(out: &mut String, text: &str) {
    for c in text.chars().filter(|c| is_xml_char(*c)) {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            // `]]>` must not appear in text; escaping every `>` is the simple way.
            '>' => out.push_str("&gt;"),
            // End-of-line handling would turn a literal CR into LF.
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
}

/// XML 1.0 `Char` production (§2.2).
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}')
        || c >= '\u{10000}'
}
