//! Address mapping between SIP-side URIs and XMPP addresses: RFC 7247 §6 (§6.2 local parts,
//! §6.3 GRUU `gr` ⇄ resourcepart per RFC 5627, §6.4 SIP→XMPP, §6.5 XMPP→SIP), with the component
//! domain plan of checklist ADDR-11 and the errata of checklist §8.
//!
//! RFC 7247 assumes the SIP domain and the XMPP domain are the same. This gateway is a XEP-0114
//! component on its own subdomain, so [`AddressMap`] also maps domains:
//!
//! | SIP side | XMPP side |
//! |---|---|
//! | `sip:juliet@example.com` (XMPP user, served domain) | `juliet@example.com` |
//! | `sip:romeo@example.net` (default SIP domain) | `romeo@sip.example.com` |
//! | `sip:bob@other.org` (any other SIP domain) | `bob\40other.org@sip.example.com` |
//!
//! Local parts are converted per ADDR-2: percent-decoding ([`percent`]) on the SIP side and
//! XEP-0106 escaping ([`escape`]) on the XMPP side; the private `uri` module handles URI syntax.

pub mod escape;
pub mod percent;
mod uri;

#[cfg(test)]
mod tests;

pub use escape::{escape_localpart, unescape_localpart};
pub use xmpp_parsers::jid::{BareJid, FullJid, Jid};

/// URI schemes accepted on the SIP side (ADDR-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `sip:` (RFC 3261).
    Sip,
    /// `sips:` (RFC 3261); the caller must refuse to gateway these into XMPP (GEN-4).
    Sips,
    /// `im:` (RFC 3860).
    Im,
    /// `pres:` (RFC 3859).
    Pres,
}

/// A parsed SIP-side address.
///
/// The user part is already percent-decoded (raw UTF-8) and the host is lowercased, so two
/// spellings of the same URI compare equal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipAddr {
    /// The URI scheme.
    pub scheme: Scheme,
    /// Decoded user part; `None` for host-only URIs such as `sip:example.net`.
    pub user: Option<String>,
    /// Domain name or IP literal (IPv6 kept in brackets), lowercase.
    pub host: String,
    /// Explicit port, if the URI had one.
    pub port: Option<u16>,
    /// Decoded value of the `gr` URI parameter (RFC 5627), which maps to the JID resourcepart.
    pub gr: Option<String>,
}

/// Why an address could not be parsed or mapped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddrError {
    /// A URI scheme other than sip, sips, im, pres (e.g. `tel`, `http`); holds the lowercased scheme.
    #[error(
        "unsupported URI scheme `{0}:` (only sip:, sips:, im: and pres: addresses can be mapped)"
    )]
    UnsupportedScheme(String),
    /// The text is not a well-formed address; the string says what is wrong.
    #[error("malformed address: {0}")]
    Malformed(String),
    /// A percent-decoded user part or `gr` value is not valid UTF-8 (RFC 7247 §6.4 step 4).
    #[error("user part is not valid UTF-8 after percent-decoding")]
    InvalidUtf8,
    /// The address names a host or domain but no user (`sip:example.net`, a bare domain JID).
    #[error("address has no user part")]
    NoUser,
    /// The mapped or given JID is not acceptable to the JID rules (Nodeprep, lengths, XEP-0106).
    #[error("invalid JID: {0}")]
    InvalidJid(String),
    /// The JID's domain is neither the component domain nor an XMPP domain this gateway serves.
    #[error("domain `{0}` is not served by this gateway")]
    NotServed(String),
}

fn jid_error(e: impl std::fmt::Display) -> AddrError {
    AddrError::InvalidJid(e.to_string())
}

/// The gateway's address plan (RFC 7247 §6 plus ADDR-11), built from configuration.
#[derive(Debug, Clone)]
pub struct AddressMap {
    component: String,
    xmpp_domains: Vec<String>,
    sip_domain: String,
}

impl AddressMap {
    /// Builds the plan.
    ///
    /// `component` is the component domain (`sip.example.com`), `xmpp_domains` the XMPP domains
    /// whose users the gateway serves (`example.com`), `sip_domain` the default SIP domain
    /// (`example.net`). Domains are normalised the way JID domains are (lowercase, IDNs to
    /// A-labels, no trailing dot) so that comparisons are case-insensitive.
    pub fn new(component: &str, xmpp_domains: &[String], sip_domain: &str) -> AddressMap {
        AddressMap {
            component: normalize_domain(component),
            xmpp_domains: xmpp_domains.iter().map(|d| normalize_domain(d)).collect(),
            sip_domain: normalize_domain(sip_domain),
        }
    }

    /// The component domain, normalised.
    pub fn component(&self) -> &str {
        &self.component
    }

    /// The default SIP domain, normalised.
    pub fn sip_domain(&self) -> &str {
        &self.sip_domain
    }

    /// The served XMPP domains, normalised, in configuration order.
    pub fn xmpp_domains(&self) -> &[String] {
        &self.xmpp_domains
    }

    /// Whether the JID's domain is the component domain, i.e. it stands for a SIP user.
    pub fn is_component_jid(&self, jid: &Jid) -> bool {
        jid.domain().as_str().eq_ignore_ascii_case(&self.component)
    }

    fn served_xmpp_domain(&self, domain: &str) -> Option<&str> {
        self.xmpp_domains
            .iter()
            .find(|d| d.eq_ignore_ascii_case(domain))
            .map(String::as_str)
    }

    /// Maps a SIP-side address to a JID (RFC 7247 §6.4, ADDR-4, ADDR-11).
    ///
    /// By host: a served XMPP domain gives that XMPP user (`sip:juliet@example.com` →
    /// `juliet@example.com`); the component domain addresses an XMPP user through the gateway
    /// (`sip:juliet@sip.example.com` → `juliet@<first XMPP domain>`, and a decoded user containing
    /// `@` names any XMPP address: `sip:juliet%40other.org@sip.example.com` → `juliet@other.org`);
    /// the default SIP domain gives `romeo@sip.example.com`; any other host escapes the whole AOR
    /// (`host:port` if a port is given) into the localpart: `bob\40other.org@sip.example.com`.
    /// Local parts are fully XEP-0106-escaped (errata §8). A `gr` becomes the resource (ADDR-8).
    ///
    /// A default-domain user that contains `@` or `%` also takes the escaped-AOR form, because
    /// [`AddressMap::jid_to_sip`] would read the short form as a foreign AOR; this keeps the mapping
    /// reversible. The port of a served or default-domain address is not part of the identity and is
    /// dropped.
    ///
    /// Errors: [`AddrError::NoUser`] without a user part, [`AddrError::NotServed`] for the
    /// component host when no XMPP domain is configured, [`AddrError::InvalidJid`] when the result
    /// violates the JID rules (including a localpart that Nodeprep would change the escaping of, or
    /// one beginning or ending with a space, XEP-0106 §4.2), is not in canonical form (preparing
    /// it again changes it) or does not map back to a SIP address (Nodeprep deleted the user).
    pub fn sip_to_jid(&self, addr: &SipAddr) -> Result<Jid, AddrError> {
        let user = addr.user.as_deref().ok_or(AddrError::NoUser)?;
        let host = addr.host.to_ascii_lowercase();
        let bare = if let Some(domain) = self.served_xmpp_domain(&host) {
            local_jid(user, domain)?
        } else if host == self.component {
            match user.rsplit_once('@') {
                // A root dot names the same domain; the jid crate mis-reads a full JID whose
                // domain keeps it (F9 in FUZZING.md).
                Some((node, domain)) => {
                    local_jid(node, domain.strip_suffix('.').unwrap_or(domain))?
                }
                None => {
                    let domain = self
                        .xmpp_domains
                        .first()
                        .ok_or_else(|| AddrError::NotServed(self.component.clone()))?;
                    local_jid(user, domain)?
                }
            }
        } else if host == self.sip_domain {
            if user.contains(['@', '%']) {
                local_jid(&format!("{user}@{host}"), &self.component)?
            } else {
                local_jid(user, &self.component)?
            }
        } else {
            let aor = match addr.port {
                Some(port) => format!("{user}@{host}:{port}"),
                None => format!("{user}@{host}"),
            };
            local_jid(&aor, &self.component)?
        };
        let jid = match &addr.gr {
            Some(gr) => Jid::from(bare.with_resource_str(gr).map_err(jid_error)?),
            None => Jid::from(bare),
        };
        // The jid crate's Nodeprep case-folds before NFKC, so a code point unassigned in
        // Unicode 3.2 can come out in a form that preparing again changes (U+3250 gives `PTE`,
        // which preps to `pte`). Such a JID is not canonical: the XMPP side would answer from
        // the other spelling, which maps to a different SIP user.
        if Jid::new(jid.as_str()).as_ref() != Ok(&jid) {
            return Err(AddrError::InvalidJid(format!(
                "`{jid}` is not in canonical form (stringprep changes it again)"
            )));
        }
        // Nodeprep also maps some characters to nothing (U+00AD SOFT HYPHEN): the foreign AOR
        // `\u{AD}@other.org` becomes the localpart `\40other.org`, which has no user, so the
        // XMPP side could never answer. The JID must map back to some SIP address (the checked
        // `jid_to_sip` would come back here), unless it is an XMPP address outside the
        // gateway's domains, named through the component host.
        match self.jid_to_sip_unchecked(&jid) {
            Ok(_) | Err(AddrError::NotServed(_)) => {}
            Err(e) => {
                return Err(AddrError::InvalidJid(format!(
                    "`{jid}` does not map back to a SIP address ({e})"
                )))
            }
        }
        Ok(jid)
    }

    /// Maps a JID to a SIP-side address (RFC 7247 §6.5, ADDR-5, ADDR-11); the scheme is always
    /// `sip:` (ADDR-5 step 7 IMPL default) and the resource becomes `gr` (ADDR-8).
    ///
    /// A served XMPP domain keeps its domain (`juliet@example.com/balcony` →
    /// `sip:juliet@example.com;gr=balcony`). For the component domain the localpart is
    /// XEP-0106-unescaped; if it then contains `@`, the text after the last `@` is the foreign
    /// `host[:port]` (`bob\40other.org@sip.example.com` → `sip:bob@other.org`), otherwise the user
    /// belongs to the default SIP domain (`romeo@sip.example.com` → `sip:romeo@example.net`). As an
    /// input alias for XEP-0100-style clients, when there is no `@` the last `%` plays its role if
    /// a valid host follows (`bob%other.org@sip.example.com` → `sip:bob@other.org`).
    ///
    /// The mapping is kept reversible, so that a SIP user's reply reaches the JID that wrote:
    /// the result must map back with [`AddressMap::sip_to_jid`], to this same JID unless the `%`
    /// alias was used. A foreign AOR that points back into the gateway's own domains is left to
    /// the caller, which refuses it (GEN-5).
    ///
    /// Errors: [`AddrError::NoUser`] for a JID without localpart (or an empty user before the
    /// `@`), [`AddrError::NotServed`] for any other domain, [`AddrError::Malformed`] for an invalid
    /// foreign host or port, [`AddrError::InvalidJid`] for a localpart that unescapes to text
    /// beginning or ending with a space (XEP-0106 §4.2), and for a JID that is not the canonical
    /// spelling of its SIP address (`\3a05060` for port 5060, a non-canonical escape, a domain
    /// with a trailing dot) or whose SIP address has no JID at all (over the length limits).
    pub fn jid_to_sip(&self, jid: &Jid) -> Result<SipAddr, AddrError> {
        // jid 0.12.3 strips a trailing dot from the domain when computing its offsets but keeps
        // it in the text, so `romeo@sip.example.com./phone` has the resource `/phone` (F9 in
        // FUZZING.md). A JID whose text is not rebuilt from its own parts is refused.
        if Jid::from_parts(jid.node(), jid.domain(), jid.resource()) != *jid {
            return Err(AddrError::InvalidJid(format!(
                "`{jid}` does not read back as the same JID"
            )));
        }
        let (addr, alias) = self.jid_to_sip_unchecked(jid)?;
        let own_host = addr.host == self.component || self.served_xmpp_domain(&addr.host).is_some();
        if own_host && self.is_component_jid(jid) {
            return Ok(addr);
        }
        // Two JIDs for one SIP address (a port written `\3a05060`) would split a conversation
        // in two, and a SIP address without a JID (the escaped-AOR form over 1023 bytes) could
        // not answer at all.
        let back = self.sip_to_jid(&addr).map_err(|e| {
            AddrError::InvalidJid(format!(
                "`{jid}` maps to {addr}, which does not map back to a JID ({e})"
            ))
        })?;
        if !alias && back != *jid {
            return Err(AddrError::InvalidJid(format!(
                "`{jid}` is not in canonical form: it maps to {addr}, whose JID is `{back}`"
            )));
        }
        Ok(addr)
    }

    /// [`AddressMap::jid_to_sip`] without the reversibility check; the flag says whether the
    /// localpart is one of the `%` aliases, which map back to another (the canonical) JID.
    fn jid_to_sip_unchecked(&self, jid: &Jid) -> Result<(SipAddr, bool), AddrError> {
        let domain = jid.domain().as_str();
        let gr = jid.resource().map(|r| r.as_str().to_owned());
        let local = || -> Result<String, AddrError> {
            let node = jid.node().ok_or(AddrError::NoUser)?;
            let user = unescape_localpart(node.as_str());
            if !escape_localpart(&user).eq_ignore_ascii_case(node.as_str()) {
                // A backslash that starts no escape (`a\5cb` unescapes to `a\b`, which is
                // also the JID `a\b`): two JIDs would share one SIP address and a SIP reply
                // could reach the wrong account.
                return Err(AddrError::InvalidJid(format!(
                    "localpart `{node}` is not in canonical XEP-0106 form"
                )));
            }
            if user.starts_with(' ') || user.ends_with(' ') {
                return Err(AddrError::InvalidJid(format!(
                    "localpart `{node}` unescapes to text with a leading or trailing space"
                )));
            }
            Ok(user)
        };
        if let Some(served) = self.served_xmpp_domain(domain) {
            let addr = SipAddr {
                scheme: Scheme::Sip,
                user: Some(local()?),
                host: served.to_owned(),
                port: None,
                gr,
            };
            return Ok((addr, false));
        }
        if !self.is_component_jid(jid) {
            return Err(AddrError::NotServed(domain.to_owned()));
        }
        let local = local()?;
        // A default-domain user with `%` is written `100%\40example.net` by `sip_to_jid`;
        // `100%` is accepted as an alias of it, like `bob%other.org` for `bob\40other.org`.
        let alias = !local.contains('@') && local.contains('%');
        let (user, host, port) = if let Some((user, hostport)) = local.rsplit_once('@') {
            let (host, port) = uri::parse_hostport(hostport)?;
            (user.to_owned(), host, port)
        } else if let Some((user, (host, port))) = percent_alias(&local) {
            (user.to_owned(), host, port)
        } else {
            (local, self.sip_domain.clone(), None)
        };
        if user.is_empty() {
            return Err(AddrError::NoUser);
        }
        let addr = SipAddr {
            scheme: Scheme::Sip,
            user: Some(user),
            host,
            port,
            gr,
        };
        Ok((addr, alias))
    }

    /// Translates an address in whichever direction applies, for the CLI `stox map ADDRESS`.
    ///
    /// `sip:`/`sips:`/`im:`/`pres:` URIs (also `<...>` and name-addr forms) are mapped to a JID
    /// string; anything else is parsed as a JID (an `xmpp:` URI prefix, RFC 5122, is stripped and
    /// the rest percent-decoded) and mapped to a SIP URI string. Other URI schemes give
    /// [`AddrError::UnsupportedScheme`]; every other error says why the mapping failed.
    pub fn translate(&self, input: &str) -> Result<String, AddrError> {
        let text = input.trim();
        if text.is_empty() {
            return Err(AddrError::Malformed("empty address".into()));
        }
        let unwrapped = text
            .strip_prefix('<')
            .and_then(|t| t.strip_suffix('>'))
            .map_or(text, str::trim);
        let sip_to_jid = |s: &str| -> Result<String, AddrError> {
            Ok(self.sip_to_jid(&SipAddr::parse(s)?)?.to_string())
        };
        if is_name_addr(unwrapped) {
            return sip_to_jid(text);
        }
        if let Some((scheme, rest)) = unwrapped.split_once(':') {
            if scheme.eq_ignore_ascii_case("xmpp") {
                return self.translate_xmpp_uri(rest);
            }
            if Scheme::from_name(scheme).is_some() {
                return sip_to_jid(unwrapped);
            }
            // `tel:+1` or `http://x` are not JIDs, but report the scheme rather than a JID error.
            if uri::is_scheme_token(scheme) && Jid::new(unwrapped).is_err() {
                return Err(AddrError::UnsupportedScheme(scheme.to_ascii_lowercase()));
            }
        }
        let jid = Jid::new(unwrapped).map_err(jid_error)?;
        Ok(self.jid_to_sip(&jid)?.to_uri())
    }

    /// The part after `xmpp:`: `[//authority/]jid[?query][#fragment]`, percent-encoded (RFC 5122).
    fn translate_xmpp_uri(&self, rest: &str) -> Result<String, AddrError> {
        let path = match rest.strip_prefix("//") {
            Some(with_authority) => with_authority.split_once('/').map_or("", |(_, p)| p),
            None => rest,
        };
        let path = path.split(['?', '#']).next().unwrap_or_default();
        let text = String::from_utf8(percent::percent_decode(path)?)
            .map_err(|_| AddrError::InvalidUtf8)?;
        let jid = Jid::new(&text).map_err(jid_error)?;
        Ok(self.jid_to_sip(&jid)?.to_uri())
    }
}

/// A name-addr (`"Bob" <sip:..>`, `Bob <sip:..>`): a `<` before any character that would make
/// the text a JID (`@` or `/`; a resourcepart may contain `<`).
fn is_name_addr(text: &str) -> bool {
    text.starts_with('"')
        || text
            .find('<')
            .is_some_and(|i| !text[..i].contains(['@', '/']))
}

/// The XEP-0100 `user%host` convention: split at the last `%` when a valid `host[:port]` follows.
fn percent_alias(local: &str) -> Option<(&str, (String, Option<u16>))> {
    let (user, hostport) = local.rsplit_once('%')?;
    let hostport = uri::parse_hostport(hostport).ok()?;
    (!user.is_empty()).then_some((user, hostport))
}

/// Builds `escape(raw)@domain`, refusing localparts whose meaning Nodeprep would change.
fn local_jid(raw: &str, domain: &str) -> Result<BareJid, AddrError> {
    if raw.starts_with(' ') || raw.ends_with(' ') {
        // XEP-0106 §4.2: an escaped localpart must not begin or end with \20.
        return Err(AddrError::InvalidJid(format!(
            "localpart `{raw}` begins or ends with a space"
        )));
    }
    let escaped = escape_localpart(raw);
    let jid = BareJid::new(&format!("{escaped}@{domain}")).map_err(jid_error)?;
    let node = jid.node().ok_or(AddrError::NoUser)?;
    // Nodeprep may legitimately fold case or normalise characters, but it must not create or
    // destroy escape sequences, or the JID would stand for a different SIP user.
    if escape::escape_skeleton(node.as_str()) != escape::escape_skeleton(&escaped) {
        return Err(AddrError::InvalidJid(format!(
            "localpart `{raw}` changes its escaping under Nodeprep"
        )));
    }
    Ok(jid)
}

/// Normalises a configured domain like a JID domainpart; falls back to ASCII lowercase when the
/// text is not a valid domain, so a bad configuration still compares predictably.
fn normalize_domain(domain: &str) -> String {
    let domain = domain.trim();
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    match BareJid::new(domain) {
        Ok(jid) if jid.node().is_none() => jid.domain().as_str().to_owned(),
        _ => domain.to_ascii_lowercase(),
    }
}
