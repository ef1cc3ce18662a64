//! PIDF, the Presence Information Data Format of RFC 3863 (§4.1 elements, §4.2.3 unknown
//! elements, §4.4 schema), with the two extensions the gateway understands:
//!
//! * the XMPP `<show xmlns='jabber:client'>` inside `<status>` (RFC 8048 §6.2 note 7), and
//! * RPID activities (RFC 4480 §3.2) inside an RFC 4479 `<dm:person>`.
//!
//! [`parse`] treats the body as hostile (it comes from any SIP peer in a NOTIFY or PUBLISH):
//! size, depth, element, attribute and tuple limits are checked while the XML streams in,
//! before a tree exists; DTDs, entity declarations and processing instructions are refused by
//! rxml itself (it implements "restricted XML", so a billion-laughs body fails at `<!DOCTYPE`).
//! [`to_xml`] writes the document shape of RFC 8048 Example 19. For every model whose strings
//! are XML characters, `parse(to_xml(doc)) == doc`.

use std::collections::HashSet;

use xmpp_parsers::minidom::Element;

#[path = "xml_reader.rs"]
mod xml_reader;
pub use xml_reader::read_xml;
pub use xmpp_parsers::presence::Show;

pub use super::write::to_xml;
use crate::errmap::Rejection;

/// PIDF namespace (RFC 3863 §4.2.2).
pub const PIDF_NS: &str = "urn:ietf:params:xml:ns:pidf";
/// Presence data model namespace, home of `<person>` (RFC 4479 §4).
pub const DATA_MODEL_NS: &str = "urn:ietf:params:xml:ns:pidf:data-model";
/// RPID namespace (RFC 4480 §3.1).
pub const RPID_NS: &str = "urn:ietf:params:xml:ns:pidf:rpid";
/// Namespace of the XMPP `<show/>` carried inside `<status>` (RFC 8048 §6.2 note 7).
pub const JABBER_CLIENT_NS: &str = "jabber:client";

/// Largest body accepted, in bytes; larger bodies are refused with SIP 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Deepest element nesting accepted (PIDF + RPID needs 4; geopriv-style extensions about 8).
pub const MAX_DEPTH: usize = 32;
/// Most elements accepted in one document (counted while parsing, before any tree is built).
pub const MAX_ELEMENTS: usize = 1024;
/// Most attributes (namespace declarations included) on one element.
pub const MAX_ATTRIBUTES: usize = 64;
/// Most tuples accepted: each becomes one XMPP stanza, so this bounds the amplification of
/// one NOTIFY (RFC 8048 §8.1).
pub const MAX_TUPLES: usize = 64;
/// Longest name or attribute value, in bytes (rxml's token limit; text is not limited by it).
pub const MAX_TOKEN_BYTES: usize = 4096;

/// A PIDF document (RFC 3863 §4.1.1) reduced to what the gateway maps.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PresenceDoc {
    /// The presentity's URI (`entity` attribute, normally `pres:user@host`).
    pub entity: String,
    /// The tuples, in document order.
    pub tuples: Vec<Tuple>,
    /// Notes about the presentity as a whole (`<note>` children of `<presence>`).
    pub notes: Vec<Note>,
    /// RFC 4479 `<dm:person>` elements, in document order.
    pub persons: Vec<Person>,
}

/// One presence tuple (RFC 3863 §4.1.2): one XMPP resource in this gateway.
#[derive(Debug, Clone, PartialEq)]
pub struct Tuple {
    /// The `id` attribute (unique in the document).
    pub id: String,
    /// `<basic>` status; `None` when absent or not `open`/`closed` (RFC 3863 §4.1.3 allows a
    /// status without `<basic>`, which then says nothing about availability).
    pub basic: Option<Basic>,
    /// The XMPP `<show xmlns='jabber:client'>` from `<status>` (RFC 8048 §6.2 note 7); unknown
    /// values are dropped.
    pub show: Option<Show>,
    /// `<contact>` with its optional priority.
    pub contact: Option<Contact>,
    /// `<note>`s about this tuple.
    pub notes: Vec<Note>,
    /// `<timestamp>` text (RFC 3339), carried verbatim.
    pub timestamp: Option<String>,
}

impl Tuple {
    /// A tuple with only an id and a basic status.
    pub fn new(id: impl Into<String>, basic: Option<Basic>) -> Tuple {
        Tuple {
            id: id.into(),
            basic,
            show: None,
            contact: None,
            notes: Vec::new(),
            timestamp: None,
        }
    }
}

/// The `<basic>` status value (RFC 3863 §4.1.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basic {
    /// Available to receive messages.
    Open,
    /// Unable to receive messages.
    Closed,
}

impl Basic {
    /// The element text.
    pub fn as_str(self) -> &'static str {
        match self {
            Basic::Open => "open",
            Basic::Closed => "closed",
        }
    }

    /// Reads `open`/`closed`, surrounding whitespace and ASCII case ignored (the schema is
    /// stricter; accepting `Open` costs nothing and loses nobody's presence).
    pub fn parse(text: &str) -> Option<Basic> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("open") {
            Some(Basic::Open)
        } else if text.eq_ignore_ascii_case("closed") {
            Some(Basic::Closed)
        } else {
            None
        }
    }
}

/// `<contact>` (RFC 3863 §4.1.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// The contact URI, whitespace-trimmed.
    pub uri: String,
    /// The `priority` attribute; `None` when absent or invalid (RFC 3863 §4.1.5: an
    /// out-of-range value is processed as if absent).
    pub priority: Option<ContactPriority>,
}

/// A PIDF `qvalue` priority, 0 to 1 with at most three decimals, held exactly as thousandths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContactPriority(u16);

impl ContactPriority {
    /// From thousandths; `None` above 1000.
    pub fn from_thousandths(thousandths: u16) -> Option<ContactPriority> {
        (thousandths <= 1000).then_some(ContactPriority(thousandths))
    }

    /// The value in thousandths (0..=1000).
    pub fn thousandths(self) -> u16 {
        self.0
    }

    /// Parses the RFC 3863 §4.4 `qvalue` grammar: `0(.[0-9]{0,3})?` or `1(.0{0,3})?`.
    pub fn parse(text: &str) -> Option<ContactPriority> {
        let text = text.trim();
        let (int, frac) = text.split_once('.').unwrap_or((text, ""));
        if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // Pad to exactly three digits: "5" is 500 thousandths, "05" is 50.
        let frac_value = frac
            .bytes()
            .chain(std::iter::repeat(b'0'))
            .take(3)
            .fold(0u16, |acc, b| acc * 10 + u16::from(b - b'0'));
        match int {
            "0" => Some(ContactPriority(frac_value)),
            "1" if frac_value == 0 => Some(ContactPriority(1000)),
            _ => None,
        }
    }
}

impl std::fmt::Display for ContactPriority {
    /// Shortest form: `0`, `1`, `0.5`, `0.039`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            0 => f.write_str("0"),
            1000 => f.write_str("1"),
            t => {
                let digits = format!("{t:03}");
                write!(f, "0.{}", digits.trim_end_matches('0'))
            }
        }
    }
}

/// A `<note>` with its language (RFC 3863 §4.1.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The text, exactly as in the document.
    pub text: String,
    /// `xml:lang`, own or inherited from an enclosing element; `None` when unknown.
    pub lang: Option<String>,
}

impl Note {
    /// A note with an optional language.
    pub fn new(text: impl Into<String>, lang: Option<&str>) -> Note {
        Note {
            text: text.into(),
            lang: lang.map(str::to_owned),
        }
    }
}

/// An RFC 4479 `<dm:person>`: what the gateway reads from it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Person {
    /// The `id` attribute.
    pub id: Option<String>,
    /// RPID `<rpid:activities>` values (RFC 4480 §3.2), in document order.
    pub activities: Vec<Activity>,
    /// `<dm:note>`s about the person.
    pub notes: Vec<Note>,
}

macro_rules! activities {
    ($($variant:ident => $name:literal,)*) => {
        /// An RPID activity (RFC 4480 §3.2). Extension values from other namespaces are ignored.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum Activity {
            $(
                #[doc = concat!("`<rpid:", $name, "/>`")]
                $variant,
            )*
            /// `<rpid:other>` with its free text.
            Other(String),
        }

        impl Activity {
            /// The element name; `"other"` for [`Activity::Other`].
            pub fn name(&self) -> &'static str {
                match self {
                    $(Activity::$variant => $name,)*
                    Activity::Other(_) => "other",
                }
            }

            /// The enumerated activity with this element name (not `other`).
            pub fn from_name(name: &str) -> Option<Activity> {
                match name {
                    $($name => Some(Activity::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

activities! {
    Appointment => "appointment", Away => "away", Breakfast => "breakfast", Busy => "busy",
    Dinner => "dinner", Holiday => "holiday", InTransit => "in-transit",
    LookingForWork => "looking-for-work", Lunch => "lunch", Meal => "meal",
    Meeting => "meeting", OnThePhone => "on-the-phone", Performance => "performance",
    PermanentAbsence => "permanent-absence", Playing => "playing",
    Presentation => "presentation", Shopping => "shopping", Sleeping => "sleeping",
    Spectator => "spectator", Steering => "steering", Travel => "travel", Tv => "tv",
    Unknown => "unknown", Vacation => "vacation", Working => "working", Worship => "worship",
}

/// Why a body is not an acceptable PIDF document. Each variant knows its SIP answer
/// ([`PidfError::rejection`]): the limits are 413, everything else 400 toward the NOTIFY or
/// PUBLISH sender. (A wrong `Content-Type` is the caller's 415.)
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PidfError {
    /// The body is larger than [`MAX_BODY_BYTES`].
    #[error("PIDF body of {size} bytes exceeds the {limit}-byte limit")]
    TooLarge {
        /// Body size in bytes.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The body is not UTF-8, or declares another encoding.
    #[error("PIDF body is not UTF-8")]
    NotUtf8,
    /// Not well-formed restricted XML (truncated, DTD, entity, PI, duplicate attribute, ...).
    #[error("malformed XML: {0}")]
    Xml(String),
    /// Elements nested deeper than [`MAX_DEPTH`].
    #[error("elements nested deeper than {0}")]
    TooDeep(usize),
    /// More than [`MAX_ELEMENTS`] elements.
    #[error("more than {0} elements")]
    TooManyElements(usize),
    /// More than [`MAX_ATTRIBUTES`] attributes on one element.
    #[error("more than {0} attributes on one element")]
    TooManyAttributes(usize),
    /// More than [`MAX_TUPLES`] tuples.
    #[error("more than {0} tuples")]
    TooManyTuples(usize),
    /// The root is not `<presence>` in the PIDF namespace; holds `{namespace}name`.
    #[error("root element {0} is not a PIDF <presence>")]
    NotPidf(String),
    /// `<presence>` without the mandatory `entity` (RFC 3863 §4.1.1).
    #[error("<presence> has no entity")]
    MissingEntity,
    /// A `<tuple>` without the mandatory `id` (RFC 3863 §4.1.2).
    #[error("<tuple> has no id")]
    MissingTupleId,
    /// Two tuples with the same `id` (RFC 3863 §4.1.2: ids MUST be unique).
    #[error("duplicate tuple id `{0}`")]
    DuplicateTupleId(String),
}

impl PidfError {
    /// The answer to the SIP sender: 413 for the size and count limits, 400 otherwise.
    pub fn rejection(&self) -> Rejection {
        match self {
            PidfError::TooLarge { .. }
            | PidfError::TooManyElements(_)
            | PidfError::TooManyAttributes(_)
            | PidfError::TooManyTuples(_) => {
                Rejection::from_sip(413, format!("Request Entity Too Large ({self})"))
            }
            _ => Rejection::from_sip(400, format!("Bad PIDF ({self})")),
        }
    }
}

impl From<PidfError> for Rejection {
    fn from(e: PidfError) -> Rejection {
        e.rejection()
    }
}

/// Parses an `application/pidf+xml` body. An empty body is an error here: a body-less NOTIFY
/// means "state unknown" and is the caller's case (RFC 8048 §5.2.1).
///
/// Unknown elements and namespaces are ignored with all their content (RFC 3863 §4.2.3; a
/// `mustUnderstand` extension is therefore also ignored, as §4.2.3 asks). Notes inherit
/// `xml:lang` from enclosing elements. A leading BOM, whitespace and an XML declaration with
/// any `standalone` value are accepted (Java serializers write `standalone='no'`, which rxml
/// alone would refuse); a declared encoding other than UTF-8 is [`PidfError::NotUtf8`].
pub fn parse(body: &[u8]) -> Result<PresenceDoc, PidfError> {
    let root = read_xml(body)?;
    read_document(&root)
}

fn read_document(root: &Element) -> Result<PresenceDoc, PidfError> {
    if !root.is("presence", PIDF_NS) {
        return Err(PidfError::NotPidf(format!(
            "{{{}}}{}",
            root.ns(),
            root.name()
        )));
    }
    let entity = root
        .attr("entity")
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .ok_or(PidfError::MissingEntity)?;
    let lang = xml_lang(root, None);
    let mut doc = PresenceDoc {
        entity: entity.to_owned(),
        ..PresenceDoc::default()
    };
    let mut ids = HashSet::new();
    for child in root.children() {
        if child.is("tuple", PIDF_NS) {
            if doc.tuples.len() == MAX_TUPLES {
                return Err(PidfError::TooManyTuples(MAX_TUPLES));
            }
            let tuple = read_tuple(child, lang.as_deref())?;
            if !ids.insert(tuple.id.clone()) {
                return Err(PidfError::DuplicateTupleId(tuple.id));
            }
            doc.tuples.push(tuple);
        } else if child.is("note", PIDF_NS) {
            doc.notes.push(read_note(child, lang.as_deref()));
        } else if child.is("person", DATA_MODEL_NS) {
            doc.persons.push(read_person(child, lang.as_deref()));
        }
        // Anything else (devices, other extensions): ignored with its content, §4.2.3.
    }
    Ok(doc)
}

fn read_tuple(el: &Element, inherited: Option<&str>) -> Result<Tuple, PidfError> {
    let id = el
        .attr("id")
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .ok_or(PidfError::MissingTupleId)?;
    let lang = xml_lang(el, inherited);
    let mut tuple = Tuple::new(id, None);
    let mut seen_status = false;
    for child in el.children() {
        if child.is("status", PIDF_NS) && !seen_status {
            seen_status = true;
            for value in child.children() {
                if value.is("basic", PIDF_NS) && tuple.basic.is_none() {
                    tuple.basic = Basic::parse(&value.text());
                } else if value.is("show", JABBER_CLIENT_NS) && tuple.show.is_none() {
                    tuple.show = parse_show(&value.text());
                }
            }
        } else if child.is("show", JABBER_CLIENT_NS) && tuple.show.is_none() {
            // RFC 8048 puts <show/> in <status>; accept it as a tuple extension as well.
            tuple.show = parse_show(&child.text());
        } else if child.is("contact", PIDF_NS) && tuple.contact.is_none() {
            tuple.contact = Some(Contact {
                uri: child.text().trim().to_owned(),
                priority: child.attr("priority").and_then(ContactPriority::parse),
            });
        } else if child.is("note", PIDF_NS) {
            tuple.notes.push(read_note(child, lang.as_deref()));
        } else if child.is("timestamp", PIDF_NS) && tuple.timestamp.is_none() {
            tuple.timestamp = Some(child.text().trim().to_owned());
        }
    }
    Ok(tuple)
}

fn read_person(el: &Element, inherited: Option<&str>) -> Person {
    let lang = xml_lang(el, inherited);
    let mut person = Person {
        id: el
            .attr("id")
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .map(str::to_owned),
        ..Person::default()
    };
    for child in el.children() {
        if child.is("activities", RPID_NS) {
            for value in child.children().filter(|v| v.has_ns(RPID_NS)) {
                if value.name() == "other" {
                    person.activities.push(Activity::Other(value.text()));
                } else if let Some(activity) = Activity::from_name(value.name()) {
                    person.activities.push(activity);
                }
            }
        } else if child.is("note", DATA_MODEL_NS) {
            person.notes.push(read_note(child, lang.as_deref()));
        }
    }
    person
}

fn read_note(el: &Element, inherited: Option<&str>) -> Note {
    Note {
        text: el.text(),
        lang: xml_lang(el, inherited),
    }
}

/// The element's own `xml:lang`, else the inherited one; `xml:lang=''` means "no language"
/// (XML 1.0 §2.12).
fn xml_lang(el: &Element, inherited: Option<&str>) -> Option<String> {
    match el.attr_ns(&xmpp_parsers::minidom::rxml::Namespace::XML, "lang") {
        Some(own) => Some(own.trim())
            .filter(|l| !l.is_empty())
            .map(str::to_owned),
        None => inherited.map(str::to_owned),
    }
}

fn parse_show(text: &str) -> Option<Show> {
    match text.trim() {
        "away" => Some(Show::Away),
        "chat" => Some(Show::Chat),
        "dnd" => Some(Show::Dnd),
        "xa" => Some(Show::Xa),
        _ => None,
    }
}

/// The `<show/>` text of an XMPP show value.
pub fn show_str(show: &Show) -> &'static str {
    match show {
        Show::Away => "away",
        Show::Chat => "chat",
        Show::Dnd => "dnd",
        Show::Xa => "xa",
    }
}
