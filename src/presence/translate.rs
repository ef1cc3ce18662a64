//! Presence notification mappings of RFC 8048 §6: §6.2 Table 1 (XMPP -> SIP) and §6.3 Table 2
//! (SIP -> XMPP), checklist PRES-15..PRES-20, with the optional RPID activities of RFC 4480
//! §3.2 (PRES-18). The mapping tables are documented on the parent module.
//!
//! Pure functions over data: the caller extracts headers, keeps the per-dialog state (which
//! resources were last reported) and puts the results on the wire. Failures are
//! [`Rejection`]s, which know their SIP and XMPP renderings.

use std::collections::HashSet;
use std::fmt::Write as _;

use xmpp_parsers::message::Lang;
use xmpp_parsers::presence::{Presence, Priority, Show, Type};

use super::pidf::{Activity, Basic, Contact, ContactPriority, Note, Person, PresenceDoc, Tuple};
use crate::addr::{AddrError, AddressMap, BareJid, FullJid, Jid, Scheme, SipAddr};
use crate::errmap::{DefinedCondition, Rejection, Target};

/// Prefix put before a resourcepart to make a tuple id (RFC 8048 §6.2 note 2: `xs:ID` cannot
/// start with a digit).
pub const TUPLE_ID_PREFIX: &str = "ID-";
/// Tuple id of the single closed tuple sent when no resource is available. No encoded
/// resource can equal it, because those all start with [`TUPLE_ID_PREFIX`].
pub const OFFLINE_TUPLE_ID: &str = "offline";
/// `id` of the `<dm:person>` carrying the RPID activity (RFC 4479 requires one).
pub const PERSON_ID: &str = "p1";

/// PRES-15 (RFC 8048 §6.2 note 1): only a presence without `type` or with
/// `type='unavailable'` is a notification; subscription types, probes and errors are handled
/// elsewhere.
pub fn is_notification(presence: &Presence) -> bool {
    matches!(presence.type_, Type::None | Type::Unavailable)
}

/// The current presence of one available XMPP resource, as the gateway caches it.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourcePresence {
    /// The resourcepart.
    pub resource: String,
    /// `<show/>`; `None` is plain "available".
    pub show: Option<Show>,
    /// `<status/>` texts with their languages.
    pub statuses: Vec<Note>,
    /// `<priority/>`, -128..=127.
    pub priority: i8,
}

impl ResourcePresence {
    /// Reads an available presence (no `type`) sent from a full JID; `None` for anything else
    /// (an unavailable presence means: drop the resource from the cache).
    ///
    /// `stanza_lang` is the stanza's `xml:lang`, which xmpp-parsers does not keep: statuses
    /// without their own language inherit it (example P3). Values that are not language tags
    /// are dropped rather than copied into a SIP header.
    pub fn from_stanza(presence: &Presence, stanza_lang: Option<&str>) -> Option<ResourcePresence> {
        if presence.type_ != Type::None {
            return None;
        }
        let resource = presence.from.as_ref()?.resource()?.as_str().to_owned();
        let inherited = stanza_lang.and_then(lang_tag);
        let statuses = presence
            .statuses
            .iter()
            .map(|(lang, text)| Note {
                text: text.clone(),
                lang: lang_tag(lang).or_else(|| inherited.clone()),
            })
            .collect();
        Some(ResourcePresence {
            resource,
            show: presence.show.clone(),
            statuses,
            priority: presence.priority.0,
        })
    }
}

/// A PIDF document to send in a NOTIFY (or PUBLISH) body, with its `Content-Language`.
#[derive(Debug, Clone, PartialEq)]
pub struct SipPresence {
    /// The document; serialise with [`super::pidf::to_xml`].
    pub doc: PresenceDoc,
    /// `Content-Language` header value: the distinct note languages in document order
    /// (RFC 8048 Table 1: `xml:lang` -> Content-Language); `None` when no note has one.
    pub content_language: Option<String>,
}

/// XMPP -> SIP (RFC 8048 §6.2, PRES-16, PRES-17, PRES-19): the full state of `user`'s
/// available resources as one PIDF document.
///
/// * entity = `pres:` form of the user's SIP AOR ([`AddressMap::jid_to_sip`]);
/// * one open tuple per resource, in input order (a repeated resource counts once): id
///   [`resource_to_tuple_id`], `<show xmlns='jabber:client'>` in `<status>`, contact = the
///   GRUU (`sip:user@domain;gr=resource`) with priority [`xmpp_priority_to_pidf`], statuses as
///   notes with their `xml:lang`;
/// * no resources: one closed tuple [`OFFLINE_TUPLE_ID`] with the AOR as contact;
/// * the most available resource's show as an RPID activity in a `<dm:person>`
///   ([`show_to_activity`]), for SIP clients that only read RPID.
///
/// No `<timestamp>` (this module has no clock; the caller may set one on each tuple).
///
/// Errors: `user` is not a JID of a served XMPP domain (`<not-allowed/>`), or a resource is
/// not a valid resourcepart (`<jid-malformed/>`).
pub fn xmpp_to_pidf(
    user: &BareJid,
    available: &[ResourcePresence],
    map: &AddressMap,
) -> Result<SipPresence, Rejection> {
    let user_jid = Jid::from(user.clone());
    if map.is_component_jid(&user_jid) {
        // A SIP user's JID: its presence came from SIP and must not go back (GEN-5).
        return Err(Rejection::from_xmpp(
            DefinedCondition::NotAllowed,
            Target::Bare,
            "presence of a SIP user cannot be sent to SIP",
        ));
    }
    let aor = map
        .jid_to_sip(&user_jid)
        .map_err(|e| sender_rejection(&e))?;
    let entity = SipAddr {
        scheme: Scheme::Pres,
        ..aor.clone()
    }
    .aor();
    let mut seen = HashSet::new();
    let mut tuples = Vec::new();
    for resource in available {
        if !seen.insert(resource.resource.as_str()) {
            continue;
        }
        let full = user.with_resource_str(&resource.resource).map_err(|e| {
            Rejection::from_xmpp(
                DefinedCondition::JidMalformed,
                Target::Full,
                format!("invalid resource: {e}"),
            )
        })?;
        let gruu = map
            .jid_to_sip(&Jid::from(full))
            .map_err(|e| sender_rejection(&e))?;
        tuples.push(Tuple {
            show: resource.show.clone(),
            contact: Some(Contact {
                uri: gruu.to_uri(),
                priority: xmpp_priority_to_pidf(resource.priority),
            }),
            notes: resource.statuses.clone(),
            ..Tuple::new(resource_to_tuple_id(&resource.resource), Some(Basic::Open))
        });
    }
    if tuples.is_empty() {
        tuples.push(Tuple {
            contact: Some(Contact {
                uri: aor.aor(),
                priority: None,
            }),
            ..Tuple::new(OFFLINE_TUPLE_ID, Some(Basic::Closed))
        });
    }
    let persons = most_available(available)
        .and_then(show_to_activity)
        .map(|activity| Person {
            id: Some(PERSON_ID.to_owned()),
            activities: vec![activity],
            notes: Vec::new(),
        })
        .into_iter()
        .collect();
    let mut langs: Vec<String> = Vec::new();
    for lang in tuples
        .iter()
        .flat_map(|t| &t.notes)
        .filter_map(|n| n.lang.as_deref().and_then(lang_tag))
    {
        if !langs.contains(&lang) {
            langs.push(lang);
        }
    }
    let content_language = (!langs.is_empty()).then(|| langs.join(", "));
    Ok(SipPresence {
        doc: PresenceDoc {
            entity,
            tuples,
            notes: Vec::new(),
            persons,
        },
        content_language,
    })
}

fn sender_rejection(e: &AddrError) -> Rejection {
    match e {
        AddrError::NotServed(_) => Rejection::from_xmpp(
            DefinedCondition::NotAllowed,
            Target::Bare,
            "this gateway only serves its own XMPP domains",
        ),
        other => Rejection::from_xmpp(
            DefinedCondition::JidMalformed,
            Target::Bare,
            other.to_string(),
        ),
    }
}

/// The resource whose show is "most available" (RFC 8048 §6.2: a UA typically shows that
/// one): chat, then plain available, then away, xa, dnd. `None` when nothing is available;
/// `Some(None)` when the winner has no `<show/>`.
fn most_available(available: &[ResourcePresence]) -> Option<Option<&Show>> {
    let rank = |show: Option<&Show>| match show {
        Some(Show::Chat) => 0,
        None => 1,
        Some(Show::Away) => 2,
        Some(Show::Xa) => 3,
        Some(Show::Dnd) => 4,
    };
    available
        .iter()
        .map(|r| r.show.as_ref())
        .min_by_key(|show| rank(*show))
}

/// PRES-18, XMPP -> RPID: `away`/`xa` -> `<rpid:away/>`, `dnd` -> `<rpid:busy/>`; plain
/// available and `chat` -> no activity (basic `open` already says it).
pub fn show_to_activity(show: Option<&Show>) -> Option<Activity> {
    match show? {
        Show::Away | Show::Xa => Some(Activity::Away),
        Show::Dnd => Some(Activity::Busy),
        Show::Chat => None,
    }
}

/// PRES-18, RPID -> XMPP `<show/>` for one activity (`None`: no availability meaning).
pub fn activity_to_show(activity: &Activity) -> Option<Show> {
    use Activity as A;
    match activity {
        A::OnThePhone
        | A::Meeting
        | A::Busy
        | A::Performance
        | A::Presentation
        | A::Appointment => Some(Show::Dnd),
        A::Vacation | A::Sleeping | A::Holiday | A::PermanentAbsence => Some(Show::Xa),
        A::Away
        | A::Steering
        | A::Travel
        | A::InTransit
        | A::Breakfast
        | A::Lunch
        | A::Dinner
        | A::Meal
        | A::Shopping => Some(Show::Away),
        A::LookingForWork
        | A::Playing
        | A::Spectator
        | A::Tv
        | A::Working
        | A::Worship
        | A::Unknown
        | A::Other(_) => None,
    }
}

/// PRES-18, several activities at once: the least available one wins (dnd over xa over
/// away), since each says what keeps the person from communicating.
pub fn activities_to_show<'a>(activities: impl IntoIterator<Item = &'a Activity>) -> Option<Show> {
    let rank = |show: &Show| match show {
        Show::Dnd => 3,
        Show::Xa => 2,
        Show::Away => 1,
        Show::Chat => 0,
    };
    activities
        .into_iter()
        .filter_map(activity_to_show)
        .max_by_key(rank)
}

/// PRES-17, XMPP -> PIDF priority: negative values MUST NOT be mapped (`None`); 0..=127 maps
/// to `floor(p * 1000 / 127)` thousandths, so 0 -> 0, 1 -> 0.007, 2 -> 0.015, 5 -> 0.039,
/// 126 -> 0.992, 127 -> 1: exactly the RFC 8048 §6.2 note 6 examples, strictly increasing.
pub fn xmpp_priority_to_pidf(priority: i8) -> Option<ContactPriority> {
    let p = u32::try_from(priority).ok()?;
    // p <= 127, so the quotient is at most 1000.
    ContactPriority::from_thousandths(u16::try_from(p * 1000 / 127).ok()?)
}

/// PRES-17 reverse, PIDF -> XMPP priority: `round(q * 127)`, 0..=127. It inverts
/// [`xmpp_priority_to_pidf`] exactly for 0..=127 (the floor loses less than 0.127).
pub fn pidf_priority_to_xmpp(priority: ContactPriority) -> i8 {
    let scaled = (u32::from(priority.thousandths()) * 127 + 500) / 1000;
    i8::try_from(scaled).unwrap_or(i8::MAX)
}

/// Resourcepart -> tuple id: [`TUPLE_ID_PREFIX`], then the resource with every byte other
/// than ASCII letters, digits, `-` and `.` written as `_HH` (uppercase hex of the UTF-8
/// byte), so the id is always a valid `xs:ID` (`Home PC` -> `ID-Home_20PC`).
pub fn resource_to_tuple_id(resource: &str) -> String {
    let mut id = String::from(TUPLE_ID_PREFIX);
    for b in resource.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'.' {
            id.push(char::from(b));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(id, "_{b:02X}");
        }
    }
    id
}

/// Tuple id -> resourcepart: the inverse of [`resource_to_tuple_id`] for ids with the
/// [`TUPLE_ID_PREFIX`] (a `_` not followed by two hex digits stays literal; if the bytes are
/// not UTF-8 the prefix is just stripped); any other id is used as it is.
pub fn tuple_id_to_resource(id: &str) -> String {
    let Some(encoded) = id.strip_prefix(TUPLE_ID_PREFIX) else {
        return id.to_owned();
    };
    let mut out = Vec::with_capacity(encoded.len());
    let mut rest = encoded.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        // from_str_radix alone would also accept a sign (`_+F`), hence the digit check.
        let hex = tail
            .get(..2)
            .filter(|h| b == b'_' && h.iter().all(u8::is_ascii_hexdigit))
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(byte) => {
                out.push(byte);
                rest = tail.get(2..).unwrap_or_default();
            }
            None => {
                out.push(b);
                rest = tail;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| encoded.to_owned())
}

/// What the SIP side told us besides the body.
#[derive(Debug, Clone, Copy, Default)]
pub struct NotifyContext<'a> {
    /// The presentity of the notification dialog (the NOTIFY's `From` AOR, or a PUBLISH's
    /// Request-URI), when known: the document's entity must name the same user, so a SIP peer
    /// cannot speak for someone else.
    pub presentity: Option<&'a SipAddr>,
    /// The `Content-Language` header (RFC 8048 Table 2: -> `xml:lang`); its first tag is the
    /// language of notes that have none.
    pub content_language: Option<&'a str>,
}

/// SIP -> XMPP (RFC 8048 §6.3, PRES-20): one `<presence/>` per tuple, from the SIP user's JID
/// (always in the component domain) with the tuple's resource, to `watcher`.
///
/// * resource: the `gr` of a SIP `<contact>`, else [`tuple_id_to_resource`] (example P4),
///   else the raw id; a candidate that is not a valid resourcepart or was already used by an
///   earlier tuple is skipped, and a tuple with no usable candidate is dropped;
/// * `open` -> no `type`, with `<show/>` from the tuple's jabber:client extension, else from
///   the RPID activities ([`activities_to_show`]), and `<priority/>` from the contact
///   priority ([`pidf_priority_to_xmpp`]; absent -> XMPP default 0);
/// * `closed` -> `type='unavailable'`;
/// * a tuple without `<basic>` carries no availability and yields nothing;
/// * notes -> `<status/>` keyed by language (first one per language wins); a tuple without
///   notes takes the document's notes, else the person's.
///
/// The result may be empty. The caller sends `unavailable` for resources of the previous
/// state that are missing from this full-state document (PRES-19, PRES-20).
///
/// Errors (SIP answers to the NOTIFY/PUBLISH): 400 for an entity that is not a mappable URI
/// or differs from [`NotifyContext::presentity`]; 403 for an entity that maps outside the
/// component domain (one of our own XMPP users: a loop or a spoof, GEN-5).
pub fn pidf_to_xmpp(
    doc: &PresenceDoc,
    watcher: &Jid,
    map: &AddressMap,
    ctx: NotifyContext<'_>,
) -> Result<Vec<Presence>, Rejection> {
    let sender = sip_user_jid(&doc.entity, map)?;
    if let Some(presentity) = ctx.presentity {
        let mut presentity = presentity.clone();
        presentity.gr = None;
        let matches = map
            .sip_to_jid(&presentity)
            .is_ok_and(|jid| jid.to_bare() == sender);
        if !matches {
            return Err(Rejection::from_sip(
                400,
                "Bad PIDF (entity does not match the presentity)",
            ));
        }
    }
    let default_lang = ctx
        .content_language
        .and_then(|l| l.split(',').next())
        .and_then(lang_tag);
    let person_show = activities_to_show(doc.persons.iter().flat_map(|p| &p.activities));
    let fallback_notes: &[Note] = if doc.notes.is_empty() {
        doc.persons
            .iter()
            .find(|p| !p.notes.is_empty())
            .map_or(&[], |p| p.notes.as_slice())
    } else {
        &doc.notes
    };
    let mut used = HashSet::new();
    let mut out = Vec::new();
    for tuple in &doc.tuples {
        let Some(basic) = tuple.basic else {
            continue;
        };
        let Some(from) = tuple_sender(&sender, tuple, &mut used) else {
            continue;
        };
        let mut presence = Presence::new(match basic {
            Basic::Open => Type::None,
            Basic::Closed => Type::Unavailable,
        });
        presence.from = Some(Jid::from(from));
        presence.to = Some(watcher.clone());
        if basic == Basic::Open {
            presence.show = tuple.show.clone().or_else(|| person_show.clone());
            if let Some(priority) = tuple.contact.as_ref().and_then(|c| c.priority) {
                presence.priority = Priority(pidf_priority_to_xmpp(priority));
            }
            presence.payloads.push(crate::xmpp::service::user_caps());
        }
        let notes = if tuple.notes.is_empty() {
            fallback_notes
        } else {
            &tuple.notes
        };
        for note in notes {
            let lang = note
                .lang
                .as_deref()
                .and_then(lang_tag)
                .or_else(|| default_lang.clone())
                .unwrap_or_default();
            presence
                .statuses
                .entry(Lang(lang))
                .or_insert_with(|| note.text.clone());
        }
        out.push(presence);
    }
    Ok(out)
}

/// The SIP user's bare JID from the PIDF entity; it must be in the component domain.
fn sip_user_jid(entity: &str, map: &AddressMap) -> Result<BareJid, Rejection> {
    let mut addr = SipAddr::parse(entity)
        .map_err(|e| Rejection::from_sip(400, format!("Bad PIDF (entity: {e})")))?;
    addr.gr = None;
    let jid = map
        .sip_to_jid(&addr)
        .map_err(|e| Rejection::from_sip(400, format!("Bad PIDF (entity: {e})")))?;
    if !map.is_component_jid(&jid) {
        return Err(Rejection::from_sip(
            403,
            "Forbidden (entity is an XMPP address served by this gateway)",
        ));
    }
    Ok(jid.to_bare())
}

/// The full JID a tuple speaks from (see [`pidf_to_xmpp`] for the candidate order).
fn tuple_sender(user: &BareJid, tuple: &Tuple, used: &mut HashSet<String>) -> Option<FullJid> {
    let gr = tuple
        .contact
        .as_ref()
        .and_then(|c| SipAddr::parse(&c.uri).ok())
        .and_then(|a| a.gr);
    let stripped = tuple.id.strip_prefix(TUPLE_ID_PREFIX).map(str::to_owned);
    gr.into_iter()
        .chain([tuple_id_to_resource(&tuple.id)])
        .chain(stripped)
        .chain([tuple.id.clone()])
        .filter_map(|candidate| user.with_resource_str(&candidate).ok())
        .find(|full| used.insert(full.resource().as_str().to_owned()))
}

/// A language tag (RFC 5646 shape: ALPHA/DIGIT/'-', at most 35 characters), or `None`; what is
/// not one would be unsafe in a `Content-Language` header.
fn lang_tag(lang: &str) -> Option<String> {
    let lang = lang.trim();
    (!lang.is_empty()
        && lang.len() <= 35
        && lang.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
    .then(|| lang.to_owned())
}
