//! The conference information document of RFC 4575 (§4 document, §5 data, §6 schema),
//! reduced to what a groupchat gateway maps (RFC 7702 §5.4 Tables 2 and 3, §6.2), plus the
//! XCON `nickname` attribute of RFC 6501 that RFC 7702 §7 names as the SIP nickname (MUC-30).
//!
//! [`parse`] treats the body as hostile: it arrives in a NOTIFY from any focus. Size, depth,
//! element and attribute limits are checked while the XML streams in; the model limits (users,
//! endpoints, text lengths) while it is read. Every refusal is a [`ConfInfoError`] that says
//! what was wrong and knows its renderings ([`ConfInfoError::rejection`]).
//!
//! Elements the gateway does not map (`<host-info>`, `<conference-state>`, `<conf-uris>`,
//! sidebars, `<call-info>`, extensions in other namespaces) are skipped with their content, as
//! the schema's `xs:any` allows; they still count against the streaming limits.
//!
//! The reader ([`parse`]) lives in `confinfo_read.rs`, the writer ([`to_xml`]) in
//! `confinfo_write.rs`. The writer emits every `state` explicitly, so for every
//! model within the limits whose strings are trimmed XML text, `parse(to_xml(doc)) == doc`.

pub use super::confinfo_read::parse;
pub use super::confinfo_write::to_xml;
use crate::errmap::{DefinedCondition, Rejection, SipStatus, XmppError};

/// Namespace of RFC 4575 documents (§4.2).
pub const CONFINFO_NS: &str = "urn:ietf:params:xml:ns:conference-info";
/// Namespace of the RFC 6501 XCON extensions, home of the `nickname` attribute.
pub const XCON_NS: &str = "urn:ietf:params:xml:ns:xcon-conference-info";
/// `Content-Type` of the NOTIFY body (RFC 4575 §3.4).
pub const CONTENT_TYPE: &str = "application/conference-info+xml";

/// Largest body accepted, in bytes (about 2,000 users in the RFC 7702 §5.4 layout).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Deepest element nesting accepted. The deepest mapped path is 6
/// (`conference-info/users/user/endpoint/media/type`); sidebars-by-val add 2.
pub const MAX_DEPTH: usize = 16;
/// Most elements in one document, counted while parsing.
pub const MAX_ELEMENTS: usize = 32 * 1024;
/// Most attributes (namespace declarations included) on one element.
pub const MAX_ATTRIBUTES: usize = 32;
/// Most `<user>` elements: each becomes an XMPP presence, so this bounds the amplification of
/// one NOTIFY.
pub const MAX_USERS: usize = 1000;
/// Most endpoints, media, roles or associated AORs under one parent.
pub const MAX_CHILDREN: usize = 32;
/// Longest attribute value or mapped text, in bytes (also rxml's token limit).
pub const MAX_TEXT_BYTES: usize = 4096;

/// The `state` attribute (RFC 4575 §4.4); the schema default is `full`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum State {
    /// The element carries its whole content.
    #[default]
    Full,
    /// Only what changed since the previous document.
    Partial,
    /// The element was removed.
    Deleted,
}

impl State {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Full => "full",
            State::Partial => "partial",
            State::Deleted => "deleted",
        }
    }

    pub(super) fn parse(value: &str) -> Option<State> {
        match value.trim() {
            "full" => Some(State::Full),
            "partial" => Some(State::Partial),
            "deleted" => Some(State::Deleted),
            _ => None,
        }
    }
}

macro_rules! endpoint_status {
    ($($variant:ident => $name:literal,)*) => {
        /// `<endpoint><status>` (RFC 4575 §5.7.3).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum EndpointStatus {
            $(#[doc = concat!("`", $name, "`")] $variant,)*
        }

        impl EndpointStatus {
            /// Every value, in schema order.
            pub const ALL: &'static [EndpointStatus] = &[$(EndpointStatus::$variant,)*];

            /// The element text.
            pub fn as_str(self) -> &'static str {
                match self { $(EndpointStatus::$variant => $name,)* }
            }

            /// Reads the element text (surrounding whitespace ignored).
            pub fn parse(text: &str) -> Option<EndpointStatus> {
                match text.trim() { $($name => Some(EndpointStatus::$variant),)* _ => None }
            }
        }
    };
}

endpoint_status! {
    Pending => "pending", DialingOut => "dialing-out", DialingIn => "dialing-in",
    Alerting => "alerting", OnHold => "on-hold", Connected => "connected",
    MutedViaFocus => "muted-via-focus", Disconnecting => "disconnecting",
    Disconnected => "disconnected",
}

impl EndpointStatus {
    /// Whether an endpoint in this status is in the room. `on-hold` and `muted-via-focus` keep
    /// an active dialog with the focus (§5.7.3), so the user stays an occupant; the transient
    /// statuses before joining (`pending`, `alerting`, `dialing-*`) are "not yet in the
    /// roster", and `disconnecting`/`disconnected` are on the way out.
    pub fn in_room(self) -> bool {
        matches!(
            self,
            EndpointStatus::Connected | EndpointStatus::OnHold | EndpointStatus::MutedViaFocus
        )
    }
}

/// A conference information document (RFC 4575 §5.2).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConferenceInfo {
    /// The conference URI (`entity`, required): the room (RFC 7702 Table 2).
    pub entity: String,
    /// Whole state, changes only, or the conference ended.
    pub state: State,
    /// The document version (§4.3: required, 32-bit, +1 per partial notification).
    pub version: u32,
    /// `<conference-description>`, replaced as a whole when present (§4.4: not partial).
    pub description: Option<Description>,
    /// `<users>`.
    pub users: Option<Users>,
}

/// `<conference-description>` (§5.3): what the gateway maps of it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Description {
    /// `<display-text>`.
    pub display_text: Option<String>,
    /// `<subject>`: the room subject (MUC-10). `Some("")` is an empty subject.
    pub subject: Option<String>,
}

/// `<users>` (§5.6).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Users {
    /// `state` of the container. A `<users>` without `state` inside a partial document is
    /// read as partial (see [`parse`]).
    pub state: State,
    /// The users, in document order; entities are unique (§4.5).
    pub users: Vec<User>,
}

/// `<user>` (§5.6): one participant.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct User {
    /// The key (§4.5): the participant's URI, e.g. `sip:room@host;gr=Romeo` (RFC 7702).
    pub entity: String,
    /// `state` of this user.
    pub state: State,
    /// The XCON `nickname` attribute (RFC 6501, RFC 7702 §7).
    pub nickname: Option<String>,
    /// `<display-text>`: the nickname when there is no XCON one (RFC 7702 Table 2).
    pub display_text: Option<String>,
    /// `<associated-aors>` URIs; an `xmpp:` one is the real JID (Table 2).
    pub associated_aors: Vec<String>,
    /// `<roles>` entries (free text, §5.6.3).
    pub roles: Vec<String>,
    /// `<endpoint>`s; entities unique within the user.
    pub endpoints: Vec<Endpoint>,
}

/// `<endpoint>` (§5.7).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Endpoint {
    /// The key within its user.
    pub entity: String,
    /// `state` of this endpoint.
    pub state: State,
    /// `<display-text>`.
    pub display_text: Option<String>,
    /// `<status>`.
    pub status: Option<EndpointStatus>,
    /// `<joining-info>`.
    pub joining_info: Option<Execution>,
    /// `<disconnection-info>`.
    pub disconnection_info: Option<Execution>,
    /// `<media>` streams; ids unique within the endpoint.
    pub media: Vec<Media>,
}

/// The `execution-type` of `<joining-info>` and `<disconnection-info>` (§5.7.5, §5.7.7).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Execution {
    /// `<when>` (xs:dateTime, kept as text).
    pub when: Option<String>,
    /// `<reason>`.
    pub reason: Option<String>,
    /// `<by>` URI.
    pub by: Option<String>,
}

/// `<media>` (§5.8).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Media {
    /// The key within its endpoint.
    pub id: String,
    /// `<type>`: `message` for an MSRP chat (RFC 7702 §6.2).
    pub media_type: Option<String>,
}

/// Why a body is not an acceptable conference-info document.
///
/// Towards the focus that sent the NOTIFY: 413 for the size and count limits, 400 for the rest
/// (RFC 6665 §4.1.3: a NOTIFY body the subscriber cannot process). Towards XMPP there is no
/// stanza to answer; when the wiring has to give up on a join because the first (full) roster
/// never arrived in a usable form, [`ConfInfoError::rejection`] carries the XMPP error to put
/// in the join's `<presence type='error'>`: `<service-unavailable/>` (cancel), the room as
/// seen through the gateway cannot be joined; the text says why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfInfoError {
    /// The body is larger than [`MAX_BODY_BYTES`].
    #[error("conference-info body of {size} bytes exceeds the {limit}-byte limit")]
    TooLarge {
        /// Body size in bytes.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The body is not UTF-8 or declares another encoding (§4.1 requires UTF-8).
    #[error("conference-info body is not UTF-8")]
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
    /// More than [`MAX_USERS`] users, or more than [`MAX_CHILDREN`] children of one kind.
    #[error("more than {limit} <{element}> elements")]
    TooMany {
        /// The repeated element.
        element: &'static str,
        /// The limit.
        limit: usize,
    },
    /// A mapped text or attribute is longer than [`MAX_TEXT_BYTES`].
    #[error("<{0}> is longer than {MAX_TEXT_BYTES} bytes")]
    TextTooLong(&'static str),
    /// The root is not `<conference-info>` in the RFC 4575 namespace; holds `{ns}name`.
    #[error("root element {0} is not an RFC 4575 <conference-info>")]
    NotConferenceInfo(String),
    /// A required attribute is missing or empty.
    #[error("<{element}> has no {attribute}")]
    Missing {
        /// The element.
        element: &'static str,
        /// The attribute.
        attribute: &'static str,
    },
    /// `version` is not an `xs:unsignedInt` (§4.3, §5.2).
    #[error("version `{0}` is not a 32-bit unsigned integer")]
    BadVersion(String),
    /// A `state` attribute or `<status>` value outside the schema's enumeration.
    #[error("<{element}> has the invalid value `{value}`")]
    BadValue {
        /// The element.
        element: &'static str,
        /// The value, cut to 64 characters.
        value: String,
    },
    /// A child's `state` contradicts its parent's (§4.4: a full parent has full children).
    #[error("<{0}> is not full inside a full parent")]
    InconsistentState(&'static str),
    /// Two siblings with the same key (§4.5: keys MUST be unique).
    #[error("duplicate <{element}> key `{key}`")]
    Duplicate {
        /// The element.
        element: &'static str,
        /// The repeated key, cut to 64 characters.
        key: String,
    },
}

impl ConfInfoError {
    /// The renderings: SIP 413 for the limits and 400 otherwise (answer to the NOTIFY), XMPP
    /// `<service-unavailable/>` with the reason as text (for a join that cannot complete).
    pub fn rejection(&self) -> Rejection {
        let sip = match self {
            ConfInfoError::TooLarge { .. }
            | ConfInfoError::TooManyElements(_)
            | ConfInfoError::TooManyAttributes(_)
            | ConfInfoError::TooMany { .. } => {
                SipStatus::with_reason(413, format!("Request Entity Too Large ({self})"))
            }
            _ => SipStatus::with_reason(400, format!("Bad conference-info ({self})")),
        };
        let xmpp = XmppError::new(DefinedCondition::ServiceUnavailable).with_text(format!(
            "the SIP conference sent a roster the gateway cannot read: {self}"
        ));
        Rejection::explicit(sip, xmpp)
    }
}

impl From<ConfInfoError> for Rejection {
    fn from(e: ConfInfoError) -> Rejection {
        e.rejection()
    }
}
