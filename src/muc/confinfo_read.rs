//! The conference-info reader (RFC 4575 §4.4 states, §4.5 keys, §5 elements, §6 schema):
//! the bounded tree from `xml_reader.rs` walked into the model of [`super::confinfo`].
//! Re-exported as [`super::confinfo::parse`].

use std::collections::HashSet;

use xmpp_parsers::minidom::Element;

use super::confinfo::{
    ConfInfoError, ConferenceInfo, Description, Endpoint, EndpointStatus, Execution, Media, State,
    User, Users, CONFINFO_NS, MAX_CHILDREN, MAX_TEXT_BYTES, MAX_USERS, XCON_NS,
};
use super::xml_reader::read_xml;

/// Parses an `application/conference-info+xml` body.
///
/// Lenient where it costs nothing: texts and attributes are trimmed, unknown elements are
/// skipped. The RFC 4575 namespace is required (RFC 7702 Examples 9 and 32 print the body
/// without it; a namespace-less body is refused as malformed XML).
///
/// A `<users>` without `state` inside a partial document is read as partial: the schema
/// default `full` would flush the roster and make every occupant not listed leave, while a
/// focus that sends a partial document means "these users changed" (RFC 4575 §7.2's own
/// partial example does exactly this: it lists one user of 32). Reading it as partial at
/// worst keeps a stale user until the next full state; reading it as full would send a
/// departure for everyone else.
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
    let r = Reader;
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
    for child in root.children().filter(|c| c.has_ns(CONFINFO_NS)) {
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
struct Reader;

impl Reader {
    fn children<'e>(
        &self,
        el: &'e Element,
        name: &'static str,
    ) -> impl Iterator<Item = &'e Element> {
        el.children().filter(move |c| c.is(name, CONFINFO_NS))
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
