//! A SIP user in an XMPP MUC room, the messages (RFC 7702 §6.3, Table 5; RFC 7701 §6): the
//! gateway is the SIP user's MSRP switch, so every message is CPIM-wrapped and the CPIM `To`
//! says whether it is for the room or for one occupant.
//!
//! | MSRP SEND from the SIP user (CPIM) | XMPP (MUC-23) |
//! |---|---|
//! | `To: <sip:room@host>` | `<message type='groupchat' to='room@service'>` |
//! | `To: <sip:room@host;gr=Nick>` | `<message type='chat' to='room@service/Nick'>` (private, §6.3.2) |
//! | inner `text/plain` body | `<body>` |
//! | anything else in `To` | MSRP 404 (RFC 7701 §6.2: not a participant of the room) |
//!
//! | XMPP from the room | MSRP SEND to the SIP user (MUC-25) |
//! |---|---|
//! | `type='groupchat'` from `room/Nick` | CPIM `From: "Nick" <sip:room@host;gr=Nick>`, `To: <sip:room@host>` |
//! | `type='chat'` from `room/Nick` | the same `From`, `To:` the SIP user's URI |
//! | XEP-0203 `<delay stamp>` (history) | CPIM `DateTime:` |
//! | our own occupant's groupchat (the MUC's reflection) | not sent: a switch never echoes (MUC-24) |
//!
//! The sender's own room nickname is not a valid CPIM `To` for a private message: the MUC
//! would bounce it to the sender anyway, so it is refused here with 403 as well.

use xmpp_parsers::message::{Message, MessageType};
use xmpp_parsers::minidom::Element;

use crate::addr::{BareJid, FullJid, Jid, SipAddr};

/// CPIM `Content-Type` of every SEND in a chat room (RFC 7701 §6).
pub const CPIM: &str = "message/cpim";

/// The parties of one SIP user's membership in one room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// The room's JID on the MUC service.
    pub room: BareJid,
    /// The room's SIP URI as the SIP user knows it (`sip:room@host`, the INVITE's target).
    pub room_uri: SipAddr,
    /// The SIP user's occupant identity toward the MUC (`romeo@sip.example.com/<resource>`).
    pub occupant: FullJid,
    /// The SIP user's own URI (CPIM `To` of private messages).
    pub user_uri: String,
    /// The SIP user's current nickname in the room.
    pub nick: String,
}

/// What a SEND from the SIP user becomes.
#[derive(Debug, Clone, PartialEq)]
pub enum Outgoing {
    /// A message for the MUC (groupchat or private), `from` our occupant identity.
    Message(Box<Message>),
}

/// MUC-23: one complete MSRP message from the SIP user, as an XMPP message with the given id.
///
/// Errors: the MSRP status code to answer (400 broken CPIM, 415 content we cannot carry,
/// 403 a `To` outside the room).
pub fn from_sip(
    m: &Membership,
    content_type: &str,
    body: &[u8],
    id: &str,
) -> Result<Outgoing, u16> {
    let (to_header, text) = content(content_type, body)?;
    let (type_, to) = match to_header {
        None => (MessageType::Groupchat, Jid::from(m.room.clone())),
        Some(v) => {
            let addr = SipAddr::parse(&v).map_err(|_| 400u16)?;
            let same_room =
                addr.user == m.room_uri.user && addr.host.eq_ignore_ascii_case(&m.room_uri.host);
            if !same_room {
                // RFC 7701 §6.2: a To that names no participant of the room is 404.
                return Err(404);
            }
            match addr.gr {
                None => (MessageType::Groupchat, Jid::from(m.room.clone())),
                Some(nick) if nick == m.nick => return Err(403),
                Some(nick) => {
                    let full = m.room.with_resource_str(&nick).map_err(|_| 403u16)?;
                    (MessageType::Chat, Jid::from(full))
                }
            }
        }
    };
    let mut msg = Message::new_with_type(type_, Some(to));
    msg.from = Some(Jid::from(m.occupant.clone()));
    msg.id = Some(xmpp_parsers::message::Id(id.to_owned()));
    msg.bodies.insert(Default::default(), text);
    if msg.type_ == MessageType::Chat {
        // XEP-0045 §7.5: a private message carries the MUC user marker.
        msg.payloads
            .push(Element::builder("x", xmpp_parsers::ns::MUC_USER).build());
    }
    Ok(Outgoing::Message(Box::new(msg)))
}

/// The checks of [`from_sip`] that need no membership: what the MSRP machine asks before it
/// answers a SEND's last chunk, so a message we cannot carry gets its error, never a 200.
pub fn check(content_type: &str, body: &[u8]) -> Result<(), u16> {
    content(content_type, body).map(|_| ())
}

/// The CPIM `To` (if the body is CPIM) and the text of a SEND.
fn content(content_type: &str, body: &[u8]) -> Result<(Option<String>, String), u16> {
    let media = media_type(content_type);
    let (to_header, inner_type, inner_body) = if media == CPIM {
        let c = crate::im::cpim::unwrap(body).ok_or(400u16)?;
        let to = c
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("To"))
            .map(|(_, v)| v.clone());
        (to, c.content_type, c.body.to_vec())
    } else {
        // RFC 7701 §6 wants CPIM; a bare text/plain from a lenient client can only be meant
        // for the room.
        (None, content_type.to_owned(), body.to_vec())
    };
    if media_type(&inner_type) != "text/plain" {
        return Err(415);
    }
    let text = String::from_utf8(inner_body).map_err(|_| 415u16)?;
    let text = crate::im::translate::xml_safe(&text);
    if text.trim().is_empty() {
        return Err(400);
    }
    Ok((to_header, text))
}

/// MUC-25: a message from the room for the SIP user, as a CPIM body; `None` when it is not
/// one (no body, a subject change, an error, our own reflection, another room).
pub fn to_sip(m: &Membership, msg: &Message) -> Option<Vec<u8>> {
    let from = msg.from.as_ref()?;
    if from.to_bare() != m.room {
        return None;
    }
    let nick = from.resource()?.as_str();
    let (_, body) = msg.get_best_body(vec![])?;
    let to = match msg.type_ {
        MessageType::Groupchat if nick == m.nick => return None,
        MessageType::Groupchat => m.room_uri.to_uri(),
        MessageType::Chat | MessageType::Normal => m.user_uri.clone(),
        _ => return None,
    };
    let sender = SipAddr {
        gr: Some(nick.to_owned()),
        ..m.room_uri.clone()
    };
    let stamp = msg
        .payloads
        .iter()
        .find(|p| p.is("delay", xmpp_parsers::ns::DELAY))
        .and_then(|d| d.attr("stamp"))
        .filter(|s| s.bytes().all(|b| b.is_ascii_graphic()));
    let mut out = String::with_capacity(body.len() + 200);
    out.push_str(&format!(
        "From: {} <{}>\r\nTo: <{to}>\r\n",
        quoted(nick),
        sender.to_uri()
    ));
    if let Some(s) = stamp {
        out.push_str(&format!("DateTime: {s}\r\n"));
    }
    out.push_str("\r\nContent-Type: text/plain;charset=UTF-8\r\n\r\n");
    out.push_str(body);
    Some(out.into_bytes())
}

/// A display name as an RFC 3862 / RFC 3261 quoted string.
fn quoted(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars().filter(|c| !c.is_control()) {
        if c == '"' || c == '\\' {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('"');
    q
}

fn media_type(ct: &str) -> String {
    ct.split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

#[cfg(test)]
#[path = "bridge_tests.rs"]
mod tests;
