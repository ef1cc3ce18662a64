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
//! The writer ([`to_xml`], in `confinfo_write.rs`) emits every `state` explicitly, so for every
//! model within the limits whose strings are trimmed XML text, `parse(to_xml(doc)) == doc`.

use std::collections::HashSet;

use xmpp_parsers::minidom::Element;

pub use super::confinfo_write::to_xml;
use super::xml_reader::read_xml;
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

    fn parse(value: &str) -> Option<State> {
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

/// Parses an `application/conference-info+xml` body.
///
/// Lenient where it costs nothing: texts and attributes are trimmed, unknown elements are
/// skipped. The RFC 4575 namespace is required (RFC 7702 Examples 9 and 32 print the body
/// without it; a namespace-less body is refused as malformed XML). A `<users>` without `state` inside a partial
/// document is read as partial: the schema default `full` would flush the roster and make
/// every occupant leave, while every focus seen (and RFC 4575 §7.2's own partial example,
/// which lists one user of 32) means "these users changed".
///
/// Strict where the roster depends on it: `entity` and `version` are required, `state`
/// values and endpoint `<status>` must be in the schema's enumeration, keys must be unique,
/// and a full parent cannot hold partial or deleted children.
pub fn parse(body: &[u8]) -> Result<ConferenceInfo, ConfInfoError> {
    let root = read_xml(body)?;
    read_document(&root)
}

fn read_document(root: &Element) -> Result<ConferenceInfo, ConfInfoError> {
    let ns = root.ns();
    if root.name() != "conference-info" || ns != CONFINFO_NS {
        return Err(ConfInfoError::NotConferenceInfo(format!(
            "{{{ns}}}{}",
            root.name()
        )));
    }
    let r = Reader { ns: &ns };
    let entity = r.required_attr(root, "conference-info", "entity")?;
    let state = r.state(root, "conference-info", None)?;
    let version = match root.attr("version") {
        Some(v) => parse_version(v)?,
        None => {
            return Err(ConfInfoError::Missing {
                element: "conference-info",
                attribute: "version",
            })
        }
    };
    let mut doc = ConferenceInfo {
        entity,
        state,
        version,
        ..ConferenceInfo::default()
    };
    if state == State::Deleted {
        // The conference ended (§4.6); §4.4: content of a deleted element MUST be ignored.
        return Ok(doc);
    }
    for child in root.children().filter(|c| c.ns() == ns) {
        match child.name() {
            "conference-description" if doc.description.is_none() => {
                doc.description = Some(r.description(child)?);
            }
            "users" if doc.users.is_none() => doc.users = Some(r.users(child, state)?),
            _ => {}
        }
    }
    Ok(doc)
}

/// `xs:unsignedInt`: optional surrounding whitespace, an optional `+`, digits.
fn parse_version(value: &str) -> Result<u32, ConfInfoError> {
    let digits = value.trim();
    let digits = digits.strip_prefix('+').unwrap_or(digits);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ConfInfoError::BadVersion(cut(value)));
    }
    digits
        .parse()
        .map_err(|_| ConfInfoError::BadVersion(cut(value)))
}

/// Cuts a peer's value for an error message.
fn cut(value: &str) -> String {
    value.chars().take(64).collect()
}

/// Reads the mapped elements, all in the RFC 4575 namespace.
struct Reader<'a> {
    ns: &'a str,
}

impl Reader<'_> {
    fn children<'e>(
        &self,
        el: &'e Element,
        name: &'static str,
    ) -> impl Iterator<Item = &'e Element> {
        let ns = self.ns.to_owned();
        el.children()
            .filter(move |c| c.name() == name && c.ns() == ns)
    }

    fn first<'e>(&self, el: &'e Element, name: &'static str) -> Option<&'e Element> {
        self.children(el, name).next()
    }

    /// The trimmed text of the first `name` child.
    fn text(&self, el: &Element, name: &'static str) -> Result<Option<String>, ConfInfoError> {
        self.first(el, name).map(|c| text_of(c, name)).transpose()
    }

    fn required_attr(
        &self,
        el: &Element,
        element: &'static str,
        attribute: &'static str,
    ) -> Result<String, ConfInfoError> {
        el.attr(attribute)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .ok_or(ConfInfoError::Missing { element, attribute })
    }

    /// The element's `state`; `parent` is the enclosing element's state (None for the root).
    fn state(
        &self,
        el: &Element,
        element: &'static str,
        parent: Option<State>,
    ) -> Result<State, ConfInfoError> {
        let state = match el.attr("state") {
            None => State::Full,
            Some(value) => State::parse(value).ok_or_else(|| ConfInfoError::BadValue {
                element,
                value: cut(value),
            })?,
        };
        if parent == Some(State::Full) && state != State::Full {
            return Err(ConfInfoError::InconsistentState(element));
        }
        Ok(state)
    }

    fn description(&self, el: &Element) -> Result<Description, ConfInfoError> {
        Ok(Description {
            display_text: self.text(el, "display-text")?,
            subject: self.text(el, "subject")?,
        })
    }

    fn users(&self, el: &Element, doc_state: State) -> Result<Users, ConfInfoError> {
        let state = match (el.attr("state"), doc_state) {
            (None, State::Partial) => State::Partial,
            _ => self.state(el, "users", Some(doc_state))?,
        };
        let mut users = Users {
            state,
            users: Vec::new(),
        };
        if state == State::Deleted {
            return Ok(users);
        }
        let mut keys = HashSet::new();
        for child in self.children(el, "user") {
            if users.users.len() == MAX_USERS {
                return Err(ConfInfoError::TooMany {
                    element: "user",
                    limit: MAX_USERS,
                });
            }
            let user = self.user(child, state)?;
            if !keys.insert(user.entity.clone()) {
                return Err(ConfInfoError::Duplicate {
                    element: "user",
                    key: cut(&user.entity),
                });
            }
            users.users.push(user);
        }
        Ok(users)
    }

    fn user(&self, el: &Element, parent: State) -> Result<User, ConfInfoError> {
        let entity = self.required_attr(el, "user", "entity")?;
        check_len(&entity, "user")?;
        let state = self.state(el, "user", Some(parent))?;
        let mut user = User {
            entity,
            state,
            nickname: xcon_nickname(el)?,
            ..User::default()
        };
        if state == State::Deleted {
            // §4.4: content of a deleted element MUST be ignored.
            return Ok(user);
        }
        user.display_text = self.text(el, "display-text")?;
        if let Some(aors) = self.first(el, "associated-aors") {
            for entry in self.children(aors, "entry") {
                if let Some(uri) = self.text(entry, "uri")? {
                    push_bounded(&mut user.associated_aors, uri, "associated-aors entry")?;
                }
            }
        }
        if let Some(roles) = self.first(el, "roles") {
            for entry in self.children(roles, "entry") {
                push_bounded(
                    &mut user.roles,
                    text_of(entry, "roles entry")?,
                    "roles entry",
                )?;
            }
        }
        let mut keys = HashSet::new();
        for child in self.children(el, "endpoint") {
            let endpoint = self.endpoint(child, state)?;
            if !keys.insert(endpoint.entity.clone()) {
                return Err(ConfInfoError::Duplicate {
                    element: "endpoint",
                    key: cut(&endpoint.entity),
                });
            }
            push_bounded(&mut user.endpoints, endpoint, "endpoint")?;
        }
        Ok(user)
    }

    fn endpoint(&self, el: &Element, parent: State) -> Result<Endpoint, ConfInfoError> {
        let entity = self.required_attr(el, "endpoint", "entity")?;
        check_len(&entity, "endpoint")?;
        let state = self.state(el, "endpoint", Some(parent))?;
        let mut endpoint = Endpoint {
            entity,
            state,
            ..Endpoint::default()
        };
        if state == State::Deleted {
            return Ok(endpoint);
        }
        endpoint.display_text = self.text(el, "display-text")?;
        if let Some(status) = self.text(el, "status")? {
            endpoint.status =
                Some(
                    EndpointStatus::parse(&status).ok_or_else(|| ConfInfoError::BadValue {
                        element: "status",
                        value: cut(&status),
                    })?,
                );
        }
        endpoint.joining_info = self
            .first(el, "joining-info")
            .map(|e| self.execution(e))
            .transpose()?;
        endpoint.disconnection_info = self
            .first(el, "disconnection-info")
            .map(|e| self.execution(e))
            .transpose()?;
        let mut keys = HashSet::new();
        for child in self.children(el, "media") {
            let media = Media {
                id: self.required_attr(child, "media", "id")?,
                media_type: self.text(child, "type")?,
            };
            check_len(&media.id, "media")?;
            if !keys.insert(media.id.clone()) {
                return Err(ConfInfoError::Duplicate {
                    element: "media",
                    key: cut(&media.id),
                });
            }
            push_bounded(&mut endpoint.media, media, "media")?;
        }
        Ok(endpoint)
    }

    fn execution(&self, el: &Element) -> Result<Execution, ConfInfoError> {
        Ok(Execution {
            when: self.text(el, "when")?,
            reason: self.text(el, "reason")?,
            by: self.text(el, "by")?,
        })
    }
}

/// The RFC 6501 `nickname` attribute, in the XCON namespace or (as some foci write it)
/// unqualified.
fn xcon_nickname(el: &Element) -> Result<Option<String>, ConfInfoError> {
    let value = el
        .attr_ns(XCON_NS, "nickname")
        .or_else(|| el.attr("nickname"));
    match value.map(str::trim) {
        Some(nick) if !nick.is_empty() => {
            check_len(nick, "user nickname")?;
            Ok(Some(nick.to_owned()))
        }
        _ => Ok(None),
    }
}

/// The trimmed text of an element, within [`MAX_TEXT_BYTES`].
fn text_of(el: &Element, name: &'static str) -> Result<String, ConfInfoError> {
    let text = el.text();
    let text = text.trim();
    check_len(text, name)?;
    Ok(text.to_owned())
}

fn check_len(value: &str, name: &'static str) -> Result<(), ConfInfoError> {
    if value.len() > MAX_TEXT_BYTES {
        return Err(ConfInfoError::TextTooLong(name));
    }
    Ok(())
}

fn push_bounded<T>(list: &mut Vec<T>, item: T, element: &'static str) -> Result<(), ConfInfoError> {
    if list.len() == MAX_CHILDREN {
        return Err(ConfInfoError::TooMany {
            element,
            limit: MAX_CHILDREN,
        });
    }
    list.push(item);
    Ok(())
}
