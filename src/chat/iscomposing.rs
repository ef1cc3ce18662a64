//! isComposing documents, RFC 3994 §3 and §4, and their XEP-0085 mapping (RFC 7573 §6,
//! CHAT-13, Tables C1 and C2).

use xmpp_parsers::chatstates::ChatState;

/// Content-Type of an isComposing document.
pub const CONTENT_TYPE: &str = "application/im-iscomposing+xml";
const NS: &str = "urn:ietf:params:xml:ns:im-iscomposing";

/// A parsed isComposing document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsComposing {
    /// `active` (true) or `idle`.
    pub active: bool,
    /// `<refresh>` seconds for an active state (RFC 3994 §3.2).
    pub refresh: Option<u32>,
}

/// Our document for a state; `refresh` only for `active` (RFC 3994 §4).
pub fn build(active: bool, refresh: u32) -> String {
    if active {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<isComposing xmlns=\"{NS}\"><state>active</state><contenttype>text/plain</contenttype><refresh>{refresh}</refresh></isComposing>"
        )
    } else {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<isComposing xmlns=\"{NS}\"><state>idle</state><contenttype>text/plain</contenttype></isComposing>"
        )
    }
}

/// Parse a document; `None` when it is not a valid isComposing document.
pub fn parse(body: &[u8]) -> Option<IsComposing> {
    let el = crate::presence::pidf::read_xml(body).ok()?;
    if el.name() != "isComposing" || el.ns() != NS {
        return None;
    }
    let child = |n: &str| el.get_child(n, NS).map(|c| c.text().trim().to_string());
    let active = match child("state")?.as_str() {
        "active" => true,
        "idle" => false,
        _ => return None,
    };
    let refresh = child("refresh").and_then(|r| r.parse().ok());
    Some(IsComposing { active, refresh })
}

/// Table C1: isComposing -> chat state.
pub fn to_chat_state(c: &IsComposing) -> ChatState {
    if c.active {
        ChatState::Composing
    } else {
        ChatState::Active
    }
}

/// Table C2: chat state -> isComposing `active`; `None` for `<gone/>` (it ends the
/// session instead, CHAT-14).
pub fn from_chat_state(s: &ChatState) -> Option<bool> {
    match s {
        ChatState::Composing => Some(true),
        ChatState::Active | ChatState::Inactive | ChatState::Paused => Some(false),
        ChatState::Gone => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_3994_example_parses() {
        // RFC 3994 §6 example (active, with refresh).
        let doc = br#"<?xml version="1.0" encoding="UTF-8"?>
   <isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing"
     xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
     <state>active</state>
     <contenttype>text/html</contenttype>
     <refresh>90</refresh>
   </isComposing>"#;
        assert_eq!(
            parse(doc),
            Some(IsComposing {
                active: true,
                refresh: Some(90)
            })
        );
    }

    #[test]
    fn our_documents_round_trip() {
        assert_eq!(
            parse(build(true, 90).as_bytes()),
            Some(IsComposing {
                active: true,
                refresh: Some(90)
            })
        );
        assert_eq!(
            parse(build(false, 90).as_bytes()),
            Some(IsComposing {
                active: false,
                refresh: None
            })
        );
    }

    #[test]
    fn not_iscomposing_is_none() {
        assert_eq!(parse(b"hello"), None);
        assert_eq!(
            parse(b"<isComposing xmlns='other'><state>active</state></isComposing>"),
            None
        );
        assert_eq!(parse(b"<isComposing xmlns='urn:ietf:params:xml:ns:im-iscomposing'><state>busy</state></isComposing>"), None);
    }

    /// Tables C1 and C2.
    #[test]
    fn chat_state_tables() {
        assert_eq!(
            to_chat_state(&IsComposing {
                active: true,
                refresh: None
            }),
            ChatState::Composing
        );
        assert_eq!(
            to_chat_state(&IsComposing {
                active: false,
                refresh: None
            }),
            ChatState::Active
        );
        assert_eq!(from_chat_state(&ChatState::Composing), Some(true));
        for s in [ChatState::Active, ChatState::Inactive, ChatState::Paused] {
            assert_eq!(from_chat_state(&s), Some(false));
        }
        assert_eq!(from_chat_state(&ChatState::Gone), None);
    }
}
