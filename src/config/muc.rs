//! `[muc]`: SIP users in XMPP multi-user chat rooms (RFC 7702 §6).

use serde::Deserialize;

/// `[muc]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MucConfig {
    /// XMPP MUC services whose rooms SIP users may join: an MSRP INVITE to
    /// `sip:room@<service>` (or `sip:room%40<service>@<component>`) joins `room@<service>`.
    /// Empty: SIP users cannot join XMPP rooms.
    #[serde(default)]
    pub services: Vec<String>,
    /// SIP domains whose users are chat rooms (conference servers): their JIDs answer
    /// disco#info as XEP-0045 rooms (`conference/text`), so XMPP clients offer to join them.
    /// Any SIP room can be joined whether listed or not.
    #[serde(default)]
    pub sip_room_domains: Vec<String>,
    /// Most SIP users in XMPP rooms at once (one membership per room and SIP user); more get
    /// 503.
    #[serde(default = "default_max_members")]
    pub max_members: usize,
    /// How long the MUC may take to let a SIP user in (its self-presence) before the INVITE
    /// gets 408.
    #[serde(default = "default_join_timeout")]
    pub join_timeout_secs: u64,
}

fn default_max_members() -> usize {
    1000
}

fn default_join_timeout() -> u64 {
    10
}

impl Default for MucConfig {
    fn default() -> Self {
        MucConfig {
            services: Vec::new(),
            sip_room_domains: Vec::new(),
            max_members: default_max_members(),
            join_timeout_secs: default_join_timeout(),
        }
    }
}

impl MucConfig {
    /// Problems in this section.
    pub fn validate(&self, component: &str, problems: &mut Vec<String>) {
        for s in &self.services {
            if crate::addr::BareJid::new(s).map_or(true, |j| j.node().is_some()) {
                problems.push(format!("muc.services entry {s:?}: not a domain"));
            } else if s.eq_ignore_ascii_case(component) {
                problems.push(format!(
                    "muc.services entry {s:?}: must differ from component.jid"
                ));
            }
        }
        for d in &self.sip_room_domains {
            if crate::addr::BareJid::new(d).map_or(true, |j| j.node().is_some()) {
                problems.push(format!("muc.sip_room_domains entry {d:?}: not a domain"));
            }
        }
        if self.max_members == 0 {
            problems.push("muc.max_members = 0: expected at least 1".into());
        }
        if !(1..=120).contains(&self.join_timeout_secs) {
            problems.push(format!(
                "muc.join_timeout_secs = {}: expected 1..=120 (SIP callers give up long before)",
                self.join_timeout_secs
            ));
        }
    }

    /// Whether `domain` is one of the services.
    pub fn is_service(&self, domain: &str) -> bool {
        self.services.iter().any(|s| s.eq_ignore_ascii_case(domain))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_bounds() {
        let c: MucConfig = toml::from_str("").unwrap();
        assert!(c.services.is_empty());
        assert_eq!((c.max_members, c.join_timeout_secs), (1000, 10));
        let mut problems = Vec::new();
        c.validate("sip.example.com", &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        let bad: MucConfig = toml::from_str(
            "services = [\"room@x\", \"sip.example.com\", \"conference.example.com\"]\n\
             sip_room_domains = [\"a@b\"]\nmax_members = 0\njoin_timeout_secs = 0",
        )
        .unwrap();
        bad.validate("sip.example.com", &mut problems);
        assert_eq!(problems.len(), 5, "{problems:?}");
        assert!(bad.is_service("Conference.Example.com"));
        assert!(toml::from_str::<MucConfig>("rooms = []").is_err());
    }
}
