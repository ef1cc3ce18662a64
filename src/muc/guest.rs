//! An XMPP user in a SIP/MSRP chat room, the messages (RFC 7702 §5.5, Table 4; RFC 7701 §6):
//! the gateway is a participant of the room's MSRP switch, so every SEND is CPIM-wrapped.
//!
//! | XMPP from the user | MSRP SEND (MUC-11, MUC-13) |
//! |---|---|
//! | `type='groupchat'` to the room | CPIM `From: <user's SIP URI>`, `To: <room URI>` |
//! | `type='chat'` to `room/Nick` | CPIM `To:` Nick's `<user entity>` from the roster; unknown Nick: `<item-not-found/>` |
//! | `<body>` | inner `text/plain` |
//!
//! | MSRP SEND from the switch (CPIM) | XMPP to the user (MUC-14) |
//! |---|---|
//! | `To:` the room URI | `type='groupchat'` from `room/Nick` |
//! | `To:` anything else (the user) | `type='chat'` from `room/Nick` with `<x xmlns='…muc#user'/>` |
//! | `From:` a roster entity | Nick = that occupant's nickname |
//! | `From:` with `;gr=Nick` not in the roster | Nick = the `gr` value |
//! | `From:` otherwise | Nick = the display name, else the URI's user part |
//!
//! MUC-12: the switch does not echo, so the user's own groupchat message is reflected to it by
//! the gateway ([`reflection`]) once the switch accepted it.

use xmpp_parsers::message::{Message, MessageType};
use xmpp_parsers::minidom::Element;

use crate::addr::{BareJid, Jid, SipAddr};
use crate::errmap::{DefinedCondition, XmppError};

/// The parties of one XMPP user's presence in one SIP room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guest {
    /// The room's JID under the component.
    pub room: BareJid,
    /// The room's SIP URI (the INVITE's target).
    pub room_uri: SipAddr,
    /// The XMPP user (full JID).
    pub user: Jid,
    /// The XMPP user's SIP URI (CPIM `From`).
    pub user_uri: String,
    /// The user's nickname in the room.
    pub nick: String,
}

/// MUC-11, MUC-13: the CPIM body of a message from the user; `Ok(None)` for a message without
/// a body (a chat state: nothing to send). `entity_of` finds a nickname's `<user entity>`.
pub fn to_cpim(
    g: &Guest,
    msg: &Message,
    entity_of: impl Fn(&str) -> Option<String>,
) -> Result<Option<Vec<u8>>, XmppError> {
    let Some((_, body)) = msg.get_best_body(vec![]) else {
        return Ok(None);
    };
    let to = match (&msg.type_, msg.to.as_ref().and_then(|t| t.resource())) {
        (MessageType::Groupchat, None) => g.room_uri.to_uri(),
        (MessageType::Groupchat, Some(_)) => {
            // XEP-0045 §7.5: a groupchat message goes to the room, never to one occupant.
            return Err(XmppError::new(DefinedCondition::BadRequest)
                .with_text("groupchat messages go to the room's bare JID"));
        }
        (_, Some(nick)) => entity_of(nick.as_str()).ok_or_else(|| {
            XmppError::new(DefinedCondition::ItemNotFound).with_text("no such occupant")
        })?,
        (_, None) => {
            return Err(XmppError::new(DefinedCondition::BadRequest)
                .with_text("send type='groupchat' to the room"))
        }
    };
    let mut out = String::with_capacity(body.len() + 160);
    out.push_str(&format!(
        "From: <{}>\r\nTo: <{to}>\r\n\r\nContent-Type: text/plain;charset=UTF-8\r\n\r\n",
        g.user_uri
    ));
    out.push_str(body);
    Ok(Some(out.into_bytes()))
}

/// MUC-14: a SEND from the switch as a message to the user. `nick_of` finds the nickname of a
/// `<user entity>`. Errors: the MSRP code (400 broken CPIM, 415 content we cannot carry).
pub fn from_cpim(
    g: &Guest,
    content_type: &str,
    body: &[u8],
    nick_of: impl Fn(&str) -> Option<String>,
) -> Result<Message, u16> {
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if media != super::bridge::CPIM {
        return Err(415);
    }
    let c = crate::im::cpim::unwrap(body).ok_or(400u16)?;
    let header = |name: &str| {
        c.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    if c.content_type.split(';').next().unwrap_or("").trim() != "text/plain" {
        return Err(415);
    }
    let text = String::from_utf8(c.body.to_vec()).map_err(|_| 415u16)?;
    let text = crate::im::translate::xml_safe(&text);
    if text.trim().is_empty() {
        return Err(400);
    }
    let from_value = header("From").ok_or(400u16)?;
    let from = SipAddr::parse(&from_value).map_err(|_| 400u16)?;
    let nick = nick_of(&from.to_uri())
        .or_else(|| from.gr.clone())
        .or_else(|| display_name(&from_value))
        .or_else(|| from.user.clone())
        .ok_or(400u16)?;
    let from_jid = g.room.with_resource_str(&nick).map_err(|_| 400u16)?;
    let to_room = header("To")
        .and_then(|t| SipAddr::parse(&t).ok())
        .is_some_and(|t| {
            t.gr.is_none()
                && t.user == g.room_uri.user
                && t.host.eq_ignore_ascii_case(&g.room_uri.host)
        });
    let type_ = if to_room {
        MessageType::Groupchat
    } else {
        MessageType::Chat
    };
    let mut msg = Message::new_with_type(type_, Some(g.user.clone()));
    msg.from = Some(Jid::from(from_jid));
    msg.bodies.insert(Default::default(), text);
    if !to_room {
        msg.payloads
            .push(Element::builder("x", xmpp_parsers::ns::MUC_USER).build());
    }
    Ok(msg)
}

/// MUC-12: the user's own groupchat message as the room shows it to the user.
pub fn reflection(g: &Guest, msg: &Message) -> Option<Message> {
    let from = g.room.with_resource_str(&g.nick).ok()?;
    let mut echo = Message::new_with_type(MessageType::Groupchat, Some(g.user.clone()));
    echo.from = Some(Jid::from(from));
    echo.id = msg.id.clone();
    echo.bodies = msg.bodies.clone();
    Some(echo)
}

/// A `"Name" <uri>` display name.
fn display_name(v: &str) -> Option<String> {
    let rest = v.trim().strip_prefix('"')?;
    let name: String = rest
        .split('"')
        .next()?
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    (!name.trim().is_empty()).then(|| name.trim().to_owned())
}

#[cfg(test)]
#[path = "guest_tests.rs"]
mod tests;
