//! How one user's document merges into what the roster holds (RFC 4575 §4.6: partial
//! user and endpoint state), and what of a user the XMPP side sees (RFC 7702 Tables 2 and 3).

use super::*;

/// RFC 4575 §4.6 step 3 for a partial `<user>`: atomic children present in the update replace
/// the local ones; endpoints are merged by key (full replaces, deleted removes, partial merges).
pub(super) fn merge_user(mut local: User, update: User) -> User {
    local.state = State::Full;
    if update.nickname.is_some() {
        local.nickname = update.nickname;
    }
    if update.display_text.is_some() {
        local.display_text = update.display_text;
    }
    if !update.associated_aors.is_empty() {
        local.associated_aors = update.associated_aors;
    }
    if !update.roles.is_empty() {
        local.roles = update.roles;
    }
    for endpoint in update.endpoints {
        let existing = local
            .endpoints
            .iter()
            .position(|e| e.entity == endpoint.entity);
        match (endpoint.state, existing) {
            (State::Deleted, Some(i)) => {
                local.endpoints.remove(i);
            }
            (State::Deleted, None) => {}
            (State::Partial, Some(i)) => merge_endpoint(&mut local.endpoints[i], endpoint),
            (_, Some(i)) => local.endpoints[i] = endpoint,
            (_, None) => {
                if local.endpoints.len() < confinfo::MAX_CHILDREN {
                    local.endpoints.push(endpoint);
                }
            }
        }
    }
    local
}

pub(super) fn merge_endpoint(local: &mut Endpoint, update: Endpoint) {
    if update.display_text.is_some() {
        local.display_text = update.display_text;
    }
    if update.status.is_some() {
        local.status = update.status;
    }
    if update.joining_info.is_some() {
        local.joining_info = update.joining_info;
    }
    if update.disconnection_info.is_some() {
        local.disconnection_info = update.disconnection_info;
    }
    for media in update.media {
        match local.media.iter().position(|m| m.id == media.id) {
            Some(i) => local.media[i] = media,
            None if local.media.len() < confinfo::MAX_CHILDREN => local.media.push(media),
            None => {}
        }
    }
}

/// Whether the user is in the room (see the module doc).
pub(super) fn in_room(user: &User) -> bool {
    user.endpoints.is_empty()
        || user
            .endpoints
            .iter()
            .any(|e| e.status.is_none_or(|s| s.in_room()))
}

/// MUC-30: the XCON nickname, else the display text (RFC 7702 §7, Table 2), else the `gr` of
/// the entity (RFC 7702 rooms name users `sip:room@host;gr=Nick`), else the entity's user
/// part; the first that is a valid resourcepart.
pub(super) fn base_nick(user: &User) -> Option<String> {
    let uri = SipAddr::parse(&user.entity).ok();
    let from_uri = uri
        .as_ref()
        .map(|a| (a.gr.clone(), a.user.clone()))
        .unwrap_or_default();
    [
        user.nickname.clone(),
        user.display_text.clone(),
        from_uri.0,
        from_uri.1,
    ]
    .into_iter()
    .flatten()
    .find_map(|candidate| prep_nick(&candidate))
}

/// The resourceprep'd nickname, or `None` when it cannot be a resourcepart.
pub(super) fn prep_nick(nick: &str) -> Option<String> {
    let nick = nick.trim();
    if nick.is_empty() {
        return None;
    }
    ResourcePart::new(nick).ok().map(|r| r.as_str().to_owned())
}

/// Table 3 maps `participant`; the other role names are an IMPL reading of the free-text
/// roles (RFC 4575 §5.6.3): `moderator`/`chair`/`administrator` -> moderator,
/// `visitor`/`observer`/`listener` -> visitor, the strongest one wins.
pub(super) fn role_of(roles: &[String]) -> Role {
    let has = |names: &[&str]| {
        roles
            .iter()
            .any(|r| names.iter().any(|n| r.eq_ignore_ascii_case(n)))
    };
    if has(&["moderator", "chair", "administrator"]) {
        Role::Moderator
    } else if has(&["participant"]) || !has(&["visitor", "observer", "listener"]) {
        Role::Participant
    } else {
        Role::Visitor
    }
}

/// The first `xmpp:` associated AOR, without the scheme (Table 2: "user full JID").
pub(super) fn real_jid(aors: &[String]) -> Option<String> {
    aors.iter().find_map(|uri| {
        let (scheme, rest) = uri.split_once(':')?;
        scheme
            .eq_ignore_ascii_case("xmpp")
            .then(|| rest.trim_start_matches("//").to_owned())
    })
}
