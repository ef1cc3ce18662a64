//! conference-info writer (RFC 4575 §5, §6 schema order), re-exported as
//! [`super::confinfo::to_xml`]. The layout follows RFC 7702 Example 32 (the gateway as focus,
//! §6.2): `<conference-description>` then `<users>`, one `<user>` with `<display-text>`,
//! `<roles>` and an `<endpoint>` per occupant.

use super::confinfo::{
    ConferenceInfo, Description, Endpoint, Execution, State, User, CONFINFO_NS, XCON_NS,
};

/// Writes a complete document: XML declaration (§4.1: UTF-8), the RFC 4575 default namespace,
/// `xcon:` declared on the root only when a user carries an XCON nickname. Every `state` is
/// written explicitly (also the default `full`), so a reader never has to guess what a missing
/// one meant. The children of deleted elements are not written (§4.4).
///
/// Characters XML cannot carry are dropped; CR, LF and TAB in attributes and CR in text are
/// written as character references, so the round trip through [`super::confinfo::parse`] is
/// exact.
pub fn to_xml(doc: &ConferenceInfo) -> String {
    let mut out = String::from("<?xml version='1.0' encoding='UTF-8'?>\n<conference-info");
    push_attr(&mut out, "xmlns", CONFINFO_NS);
    let has_nick = doc
        .users
        .iter()
        .flat_map(|u| &u.users)
        .any(|u| u.state != State::Deleted && u.nickname.is_some());
    if has_nick && doc.state != State::Deleted {
        push_attr(&mut out, "xmlns:xcon", XCON_NS);
    }
    push_attr(&mut out, "entity", &doc.entity);
    push_attr(&mut out, "state", doc.state.as_str());
    push_attr(&mut out, "version", &doc.version.to_string());
    if doc.state == State::Deleted {
        out.push_str("/>\n");
        return out;
    }
    out.push_str(">\n");
    if let Some(description) = &doc.description {
        write_description(&mut out, description);
    }
    if let Some(users) = &doc.users {
        out.push_str("  <users");
        push_attr(&mut out, "state", users.state.as_str());
        if users.state == State::Deleted || users.users.is_empty() {
            out.push_str("/>\n");
        } else {
            out.push_str(">\n");
            for user in &users.users {
                write_user(&mut out, user);
            }
            out.push_str("  </users>\n");
        }
    }
    out.push_str("</conference-info>\n");
    out
}

fn write_description(out: &mut String, d: &Description) {
    out.push_str("  <conference-description>\n");
    push_element(out, "    ", "display-text", d.display_text.as_deref());
    push_element(out, "    ", "subject", d.subject.as_deref());
    out.push_str("  </conference-description>\n");
}

fn write_user(out: &mut String, user: &User) {
    out.push_str("    <user");
    push_attr(out, "entity", &user.entity);
    push_attr(out, "state", user.state.as_str());
    if user.state == State::Deleted {
        out.push_str("/>\n");
        return;
    }
    if let Some(nick) = &user.nickname {
        push_attr(out, "xcon:nickname", nick);
    }
    out.push_str(">\n");
    push_element(out, "      ", "display-text", user.display_text.as_deref());
    if !user.associated_aors.is_empty() {
        out.push_str("      <associated-aors>\n");
        for uri in &user.associated_aors {
            out.push_str("        <entry>");
            push_element(out, "", "uri", Some(uri));
            out.pop();
            out.push_str("</entry>\n");
        }
        out.push_str("      </associated-aors>\n");
    }
    if !user.roles.is_empty() {
        out.push_str("      <roles>\n");
        for role in &user.roles {
            push_element(out, "        ", "entry", Some(role));
        }
        out.push_str("      </roles>\n");
    }
    for endpoint in &user.endpoints {
        write_endpoint(out, endpoint);
    }
    out.push_str("    </user>\n");
}

fn write_endpoint(out: &mut String, endpoint: &Endpoint) {
    out.push_str("      <endpoint");
    push_attr(out, "entity", &endpoint.entity);
    push_attr(out, "state", endpoint.state.as_str());
    if endpoint.state == State::Deleted {
        out.push_str("/>\n");
        return;
    }
    out.push_str(">\n");
    const IN: &str = "        ";
    push_element(out, IN, "display-text", endpoint.display_text.as_deref());
    push_element(out, IN, "status", endpoint.status.map(|s| s.as_str()));
    if let Some(info) = &endpoint.joining_info {
        write_execution(out, "joining-info", info);
    }
    if let Some(info) = &endpoint.disconnection_info {
        write_execution(out, "disconnection-info", info);
    }
    for media in &endpoint.media {
        out.push_str(IN);
        out.push_str("<media");
        push_attr(out, "id", &media.id);
        match &media.media_type {
            Some(t) => {
                out.push('>');
                push_element(out, "", "type", Some(t));
                out.pop();
                out.push_str("</media>\n");
            }
            None => out.push_str("/>\n"),
        }
    }
    out.push_str("      </endpoint>\n");
}

fn write_execution(out: &mut String, name: &str, info: &Execution) {
    out.push_str("        <");
    out.push_str(name);
    out.push_str(">\n");
    const IN: &str = "          ";
    push_element(out, IN, "when", info.when.as_deref());
    push_element(out, IN, "reason", info.reason.as_deref());
    push_element(out, IN, "by", info.by.as_deref());
    out.push_str("        </");
    out.push_str(name);
    out.push_str(">\n");
}

/// `indent<name>text</name>\n` when there is a text.
fn push_element(out: &mut String, indent: &str, name: &str, text: Option<&str>) {
    let Some(text) = text else { return };
    out.push_str(indent);
    out.push('<');
    out.push_str(name);
    out.push('>');
    push_text(out, text);
    out.push_str("</");
    out.push_str(name);
    out.push_str(">\n");
}

/// ` name='value'`, escaped for a single-quoted attribute.
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
pub(super) fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}')
        || c >= '\u{10000}'
}
