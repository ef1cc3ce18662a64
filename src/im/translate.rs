//! RFC 7572 field mappings: §4 (XMPP -> SIP, Table 1, IM-1..IM-4) and §5 (SIP -> XMPP,
//! Table 2, IM-5..IM-11), with the content-type rules of §7 and the size rule of §6.
//!
//! Pure functions: the SIP side is plain data ([`SipMessageIn`], [`SipMessageOut`]) so the
//! table tests and golden fixtures need no socket and no SIP stack.

use crate::addr::{AddrError, AddressMap, Jid, Scheme, SipAddr};
use crate::config::InboundType;
use crate::errmap::{DefinedCondition, Rejection, SipStatus, Target, XmppError};
use xmpp_parsers::message::{Id, Lang, Message, MessageType, Thread};

/// Content types accepted in inbound MESSAGE bodies (sent back in `Accept` with a 415).
pub const ACCEPTED_TYPES: &str = "text/plain, message/cpim";

/// Namespaces of end-to-end encryption payloads that cannot cross to SIP (IM-12).
const E2E_NAMESPACES: [&str; 3] = [
    "eu.siacs.conversations.axolotl",
    "urn:xmpp:omemo:2",
    "urn:xmpp:openpgp:0",
];

/// Policy knobs for the translation.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest body (bytes) sent to SIP; larger messages are refused (IM-4).
    pub max_body_bytes: usize,
}

/// A SIP MESSAGE to send, translated from an XMPP `<message/>` (RFC 7572 §4 Table 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipMessageOut {
    /// Request-URI: the SIP user, with `gr` when the XMPP `to` was a GRUU-derived full JID.
    pub request_uri: SipAddr,
    /// `From` URI: the XMPP sender's address of record (bare JID, ADDR-7).
    pub from: SipAddr,
    /// `To` URI: the recipient's address of record.
    pub to: SipAddr,
    /// Contact URI of the sender, carrying the resource as `gr` (ADDR-7, RFC 5627).
    pub contact: SipAddr,
    /// `Call-ID` from `<thread/>` (hashed into a legal one when needed); `None` = no thread,
    /// generate a fresh one.
    pub call_id: Option<String>,
    /// `Subject` header.
    pub subject: Option<String>,
    /// `Content-Language` from `xml:lang`.
    pub content_language: Option<String>,
    /// The body.
    pub body: String,
    /// Its Content-Type: `text/plain;charset=UTF-8` for text; CPIM, isComposing or IMDN
    /// for page-mode receipts and typing (`crate::chat::page`).
    pub content_type: String,
}

/// What to do with an XMPP message addressed to a SIP user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XmppOutcome {
    /// Send this MESSAGE.
    Send(Box<SipMessageOut>),
    /// Nothing to send (e.g. a bare chat-state notification); the reason is for logs.
    Ignore(&'static str),
}

/// Translate an XMPP message to a SIP MESSAGE (IM-1, IM-2, IM-4, IM-11, IM-12, IM-14).
///
/// `type='error'` stanzas must be handled by the caller (they correlate to pending SIP
/// transactions and are never forwarded).
pub fn xmpp_to_sip(
    msg: &Message,
    map: &AddressMap,
    limits: Limits,
) -> Result<XmppOutcome, Rejection> {
    let to = msg.to.as_ref().ok_or_else(|| {
        Rejection::from_xmpp(DefinedCondition::JidMalformed, Target::Bare, "no recipient")
    })?;
    let target = if to.resource().is_some() {
        Target::Full
    } else {
        Target::Bare
    };
    let from = msg
        .from
        .as_ref()
        .ok_or_else(|| Rejection::from_xmpp(DefinedCondition::JidMalformed, target, "no sender"))?;
    if msg.type_ == MessageType::Groupchat {
        // IM-14: groupchat only exists inside a MUC mapping (RFC 7702).
        return Err(Rejection::from_xmpp(
            DefinedCondition::BadRequest,
            target,
            "groupchat messages cannot be sent to a SIP user",
        ));
    }
    if msg
        .payloads
        .iter()
        .any(|p| E2E_NAMESPACES.iter().any(|ns| p.ns() == *ns))
    {
        return Err(Rejection::from_xmpp(
            DefinedCondition::FeatureNotImplemented,
            target,
            "end-to-end encrypted messages cannot be bridged to SIP",
        ));
    }
    let Some((lang, body)) = msg.get_best_body(vec![]) else {
        if msg.subjects.is_empty() {
            return Ok(XmppOutcome::Ignore("no body"));
        }
        // A subject-only message still carries text worth delivering.
        return build(msg, map, limits, from, to, target, None);
    };
    build(
        msg,
        map,
        limits,
        from,
        to,
        target,
        Some((lang, body.as_str())),
    )
}

/// The SIP addresses of an XMPP message from `from` to the SIP user `to` (RFC 7572 §4 Table
/// 1, ADDR-7, GEN-5): Request-URI (with `gr` from a GRUU-derived resource), the sender's
/// AOR, the sender's Contact (resource as `gr`) and the recipient's AOR. Shared by page
/// mode and MSRP sessions (CHAT-1).
pub fn xmpp_addresses(
    from: &Jid,
    to: &Jid,
    map: &AddressMap,
    target: Target,
) -> Result<(SipAddr, SipAddr, SipAddr, SipAddr), Rejection> {
    if !map.is_component_jid(to) {
        return Err(Rejection::from_xmpp(
            DefinedCondition::ItemNotFound,
            target,
            "not an address of this gateway",
        ));
    }
    let request_uri = map.jid_to_sip(to).map_err(|e| addr_rejection(&e, target))?;
    let host = request_uri.host.as_str();
    if host.eq_ignore_ascii_case(map.component())
        || map
            .xmpp_domains()
            .iter()
            .any(|d| d.eq_ignore_ascii_case(host))
    {
        // The "SIP user" is one of our own XMPP addresses: sending would come straight back
        // through the gateway (GEN-5); the sender should message that JID directly.
        return Err(Rejection::from_xmpp(
            DefinedCondition::NotAcceptable,
            target,
            "that address is an XMPP address: message it directly",
        ));
    }
    let mut sender = map.jid_to_sip(from).map_err(|e| match e {
        AddrError::NotServed(_) => Rejection::from_xmpp(
            DefinedCondition::NotAllowed,
            target,
            "this gateway only serves its own XMPP domains",
        ),
        other => addr_rejection(&other, target),
    })?;
    if map.is_component_jid(from) {
        // A SIP user's JID as sender: only the gateway itself may speak for those (GEN-5).
        return Err(Rejection::from_xmpp(
            DefinedCondition::NotAllowed,
            target,
            "sender is a SIP address",
        ));
    }
    let contact = sender.clone();
    sender.gr = None;
    sender.port = None;
    let mut to_aor = request_uri.clone();
    to_aor.gr = None;
    Ok((request_uri, sender, contact, to_aor))
}

fn build(
    msg: &Message,
    map: &AddressMap,
    limits: Limits,
    from: &Jid,
    to: &Jid,
    target: Target,
    body: Option<(Lang, &str)>,
) -> Result<XmppOutcome, Rejection> {
    let (request_uri, sender, contact, to_aor) = xmpp_addresses(from, to, map, target)?;
    let (body_lang, body_text) = match body {
        Some((l, b)) => (Some(l), b.to_string()),
        None => (None, String::new()),
    };
    if body_text.len() > limits.max_body_bytes {
        return Err(Rejection::from_xmpp(
            DefinedCondition::PolicyViolation,
            target,
            format!(
                "message too large for SIP ({} bytes, limit {})",
                body_text.len(),
                limits.max_body_bytes
            ),
        ));
    }
    let subject = msg
        .get_best_subject(vec![])
        .map(|(_, s)| header_safe(s))
        .filter(|s| !s.is_empty());
    let lang = body_lang
        .filter(|l| !l.is_empty())
        .or_else(|| msg.get_best_subject(vec![]).map(|(l, _)| l))
        .and_then(|l| language_tag(&l));
    let call_id = msg.thread.as_ref().map(|t| {
        let t = t.id.trim();
        if is_call_id(t) {
            t.to_string()
        } else {
            // IM-2: a thread that is no legal Call-ID maps to a stable one, so one thread
            // stays one Call-ID across messages.
            format!("t{:016x}@{}", fnv1a(t.as_bytes()), map.component())
        }
    });
    Ok(XmppOutcome::Send(Box::new(SipMessageOut {
        request_uri,
        from: sender,
        to: to_aor,
        contact,
        call_id,
        subject,
        content_language: lang,
        body: body_text,
        content_type: "text/plain;charset=UTF-8".into(),
    })))
}

fn addr_rejection(e: &AddrError, target: Target) -> Rejection {
    Rejection::from_xmpp(DefinedCondition::JidMalformed, target, e.to_string())
}

/// An inbound SIP MESSAGE as extracted by the SIP adapter (header values as text).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SipMessageIn {
    /// Request-URI.
    pub request_uri: String,
    /// `From` header value (name-addr with parameters).
    pub from: String,
    /// `To` header value.
    pub to: String,
    /// `Contact` header value, if any (may carry the sender's `gr`, ADDR-7).
    pub contact: Option<String>,
    /// `Call-ID`.
    pub call_id: String,
    /// `Subject` header.
    pub subject: Option<String>,
    /// `Content-Type` header.
    pub content_type: Option<String>,
    /// `Content-Language` header.
    pub content_language: Option<String>,
    /// `Max-Forwards`, if present.
    pub max_forwards: Option<u32>,
    /// Body bytes.
    pub body: Vec<u8>,
}

/// Translate an inbound SIP MESSAGE to an XMPP message (IM-5..IM-11, GEN-4, GEN-5).
///
/// `id` is the stanza id the caller allocated (IM-6: derived from the transaction); the
/// caller answers 200 (or the bounce's code) after delivery, and the `Err` side's SIP status
/// right away.
pub fn sip_to_xmpp(
    m: &SipMessageIn,
    map: &AddressMap,
    id: &str,
    inbound: InboundType,
) -> Result<Message, Rejection> {
    let (to, from) = sip_addresses(m, map)?;
    let text = body_text(m)?;
    let lang = m
        .content_language
        .as_deref()
        .and_then(|l| l.split(',').next())
        .and_then(language_tag)
        .map(Lang)
        .unwrap_or_default();
    let msg_type = match inbound {
        InboundType::Chat => MessageType::Chat,
        InboundType::Normal => MessageType::Normal,
    };
    let mut msg = Message::new_with_type(msg_type, Some(to));
    msg.from = Some(from);
    msg.id = Some(Id(id.to_string()));
    if !m.call_id.is_empty() {
        msg.thread = Some(Thread {
            parent: None,
            id: xml_safe(&m.call_id),
        });
    }
    if let Some(s) = m.subject.as_deref().map(xml_safe).filter(|s| !s.is_empty()) {
        msg.subjects.insert(lang.clone(), s);
    }
    msg.bodies.insert(lang, text);
    Ok(msg)
}

/// The XMPP addresses of a SIP request (RFC 7572 §5 Table 2, ADDR-7, GEN-4, GEN-5): the
/// XMPP user it is for and the SIP sender's JID (GRUU from From or Contact as resource).
/// Only the request's address fields of `m` are read, so INVITEs use it too (CHAT-8).
pub fn sip_addresses(m: &SipMessageIn, map: &AddressMap) -> Result<(Jid, Jid), Rejection> {
    let ruri = SipAddr::parse(&m.request_uri).map_err(|e| uri_rejection(&e, "Request-URI"))?;
    let to_hdr = SipAddr::parse(&m.to).ok();
    if ruri.scheme == Scheme::Sips || to_hdr.as_ref().is_some_and(|t| t.scheme == Scheme::Sips) {
        // GEN-4: XMPP cannot guarantee TLS on every hop, so sips: must not cross.
        return Err(Rejection::explicit(
            SipStatus::with_reason(403, "SIPS not supported via XMPP"),
            XmppError::new(DefinedCondition::Forbidden),
        ));
    }
    if m.max_forwards == Some(0) {
        return Err(Rejection::from_sip(483, "Too Many Hops"));
    }
    let to = map
        .sip_to_jid(&ruri)
        .map_err(|e| Rejection::from_sip(404, format!("Not Found ({e})")))?;
    if map.is_component_jid(&to) {
        // The target is itself a SIP user: re-gatewaying it would loop (GEN-5).
        return Err(Rejection::from_sip(404, "Not Found (not an XMPP user)"));
    }
    let mut from_addr = SipAddr::parse(&m.from).map_err(|e| uri_rejection(&e, "From"))?;
    if from_addr.gr.is_none() {
        // ADDR-7: accept the sender's GRUU in Contact as well as in From.
        from_addr.gr = m
            .contact
            .as_deref()
            .and_then(|c| SipAddr::parse(c).ok())
            .and_then(|c| c.gr);
    }
    let from = map
        .sip_to_jid(&from_addr)
        .map_err(|e| Rejection::from_sip(400, format!("Bad From ({e})")))?;
    if !map.is_component_jid(&from) {
        // A SIP request claiming to come from one of our XMPP users: a loop of our own
        // traffic or a spoof; either way it must not be delivered as that user (GEN-5).
        return Err(Rejection::from_sip(
            403,
            "Forbidden (From is an XMPP address served by this gateway)",
        ));
    }
    Ok((to, from))
}

/// The wire element of a translated message: the language the body carries is also put on
/// the stanza (`xml:lang`, IM-6/IM-11, example I1), which xmpp-parsers' `Message` has no field
/// for.
pub fn to_element(msg: Message) -> xmpp_parsers::minidom::Element {
    let lang = msg
        .bodies
        .keys()
        .next()
        .filter(|l| !l.is_empty())
        .map(|l| l.0.clone());
    let mut el: xmpp_parsers::minidom::Element = msg.into();
    if let (Some(lang), Ok(name)) = (lang, xmpp_parsers::minidom::rxml::NcName::try_from("lang")) {
        el.set_attr(xmpp_parsers::minidom::rxml::Namespace::XML, name, lang);
    }
    el
}

fn uri_rejection(e: &AddrError, what: &str) -> Rejection {
    match e {
        AddrError::UnsupportedScheme(_) => {
            Rejection::from_sip(416, format!("Unsupported URI Scheme in {what}"))
        }
        other => Rejection::from_sip(400, format!("Bad {what} ({other})")),
    }
}

/// Extract the text of the body per RFC 7572 §7 (IM-8, IM-10).
fn body_text(m: &SipMessageIn) -> Result<String, Rejection> {
    let unsupported = || Rejection::from_sip(415, "Unsupported Media Type");
    let ct = m
        .content_type
        .as_deref()
        .unwrap_or("text/plain")
        .trim()
        .to_string();
    let (bytes, ct) = if media_type(&ct) == "message/cpim" {
        let inner = super::cpim::unwrap(&m.body)
            .ok_or_else(|| Rejection::from_sip(400, "Bad Request (malformed message/cpim)"))?;
        (inner.body.to_vec(), inner.content_type)
    } else {
        (m.body.clone(), ct)
    };
    if media_type(&ct) != "text/plain" {
        return Err(unsupported());
    }
    if let Some(cs) = param(&ct, "charset") {
        let cs = cs.to_ascii_lowercase();
        if cs != "utf-8" && cs != "us-ascii" && cs != "utf8" {
            return Err(unsupported());
        }
    }
    if bytes.is_empty() {
        return Err(Rejection::from_sip(400, "Bad Request (empty message)"));
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| Rejection::from_sip(400, "Bad Request (body is not UTF-8)"))?;
    let text = xml_safe(&text);
    if text.is_empty() {
        // Only characters XML cannot carry: nothing is left to deliver.
        return Err(Rejection::from_sip(400, "Bad Request (no text in body)"));
    }
    Ok(text)
}

/// The media type of a Content-Type value, lower-cased, without parameters.
pub fn media_type(ct: &str) -> String {
    ct.split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

fn param<'a>(ct: &'a str, name: &str) -> Option<&'a str> {
    ct.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"'))
    })
}

/// Drop characters XML 1.0 cannot carry (controls other than TAB/LF/CR, U+FFFE/U+FFFF):
/// one such character in a stanza would make the XMPP server close the component stream.
pub fn xml_safe(s: &str) -> String {
    s.chars()
        .filter(|&c| {
            matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')
        })
        .collect()
}

/// A header value must be one line: fold CR/LF and controls into spaces.
fn header_safe(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_string()
}

/// A language tag (RFC 5646 shape: ALPHA/DIGIT/'-'), or None when it is not one.
fn language_tag(l: &str) -> Option<String> {
    let l = l.trim();
    (!l.is_empty() && l.len() <= 35 && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        .then(|| l.to_string())
}

/// FNV-1a: a tiny stable hash (the std hasher may change between releases, and Call-IDs
/// derived from threads should not).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// RFC 3261 §25.1 `callid = word [ "@" word ]`.
pub fn is_call_id(s: &str) -> bool {
    fn word(w: &str) -> bool {
        !w.is_empty()
            && w.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-.!%*_+`'~()<>:\\\"/[]?{}".contains(c))
    }
    match s.split_once('@') {
        Some((a, b)) => word(a) && word(b) && s.len() <= 256,
        None => word(s) && s.len() <= 256,
    }
}

#[cfg(test)]
#[path = "translate_tests.rs"]
mod tests;
