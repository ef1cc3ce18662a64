//! `a=fmtp` (an opaque string in SDP) <-> XEP-0167 `<parameter name value/>` lists, after
//! draft-ietf-stox-media §10 (MEDIA-19, 20, 21):
//! - formats whose payload-format RFC defines `name=value` pairs separated by `;` (Opus
//!   RFC 7587, H.264 RFC 6184, VP8 RFC 7741, rtx RFC 4588, ...) are parsed on `;` only, since
//!   their values may hold commas (H.264 `sprop-parameter-sets`), and written back with `;`;
//! - `telephone-event` (RFC 4733 §2.4.1): the event list becomes `<parameter name='events'>`,
//!   and a missing fmtp means events 0-15, made explicit toward Jingle;
//! - `red` (RFC 2198, SDP form of RFC 3555 §4.1.21): `0/103` <-> `pt='0,103'`;
//! - anything else: split on `;` (or `,` when there is no `;`), trimmed; a token that is not
//!   `name=value` becomes `<parameter name='' value='token'/>`; written back as
//!   `name=value` pairs joined by `"; "`, as the draft recommends.

use super::{limits, MediaError};

/// Formats whose fmtp is `name=value` pairs separated by `;` (lower case).
const KEY_VALUE_FORMATS: &[&str] = &[
    "opus",
    "h264",
    "h265",
    "vp8",
    "vp9",
    "av1",
    "rtx",
    "g729",
    "g729d",
    "g729e",
    "ilbc",
    "amr",
    "amr-wb",
    "speex",
    "g7221",
    "isac",
    "ulpfec",
    "flexfec-03",
    "evs",
];

/// The `events` default of RFC 4733 §2.4.1 when a telephone-event has no fmtp.
pub const DEFAULT_EVENTS: &str = "0-15";

fn is_key_value(encoding: &str) -> bool {
    KEY_VALUE_FORMATS
        .iter()
        .any(|f| f.eq_ignore_ascii_case(encoding))
}

/// A value is safe to copy into either protocol: no whitespace or control characters (an
/// SDP line ends at CR/LF, so one would let a Jingle peer add lines of its own).
fn clean(s: &str, what: &'static str) -> Result<String, MediaError> {
    if s.len() > limits::VALUE {
        return Err(MediaError::TooLarge(what));
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(MediaError::Malformed(format!(
            "{what} holds white space: {s:?}"
        )));
    }
    Ok(s.to_owned())
}

/// SDP -> Jingle: the parameters of an `a=fmtp:<pt> <raw>` line for `encoding`; `raw` is
/// `None` when the payload type has no fmtp line.
pub fn sdp_to_params(
    encoding: &str,
    raw: Option<&str>,
) -> Result<Vec<(String, String)>, MediaError> {
    let raw = raw.map(str::trim).unwrap_or("");
    if encoding.eq_ignore_ascii_case("telephone-event") {
        let events = if raw.is_empty() { DEFAULT_EVENTS } else { raw };
        if !events
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'-' || b == b',')
        {
            return Err(MediaError::Malformed(format!(
                "telephone-event list {events:?}"
            )));
        }
        return Ok(vec![("events".into(), clean(events, "fmtp value")?)]);
    }
    if encoding.eq_ignore_ascii_case("red") && !raw.is_empty() && !raw.contains('=') {
        if !raw.bytes().all(|b| b.is_ascii_digit() || b == b'/') {
            return Err(MediaError::Malformed(format!("red payload list {raw:?}")));
        }
        return Ok(vec![("pt".into(), raw.replace('/', ","))]);
    }
    let sep = if is_key_value(encoding) || raw.contains(';') {
        ';'
    } else {
        ','
    };
    let mut out = Vec::new();
    for token in raw.split(sep).map(str::trim).filter(|t| !t.is_empty()) {
        if out.len() == limits::ITEMS {
            return Err(MediaError::TooLarge("fmtp parameters"));
        }
        let (name, value) = match token.split_once('=') {
            Some((n, v)) if !n.trim().is_empty() => (n.trim(), v.trim()),
            _ => ("", token),
        };
        out.push((clean(name, "fmtp name")?, clean(value, "fmtp value")?));
    }
    Ok(out)
}

/// Jingle -> SDP: the text after `a=fmtp:<pt> `, or `None` when no fmtp line is due.
pub fn params_to_sdp(
    encoding: &str,
    params: &[(String, String)],
) -> Result<Option<String>, MediaError> {
    if params.len() > limits::ITEMS {
        return Err(MediaError::TooLarge("fmtp parameters"));
    }
    for (n, v) in params {
        clean(n, "parameter name")?;
        clean(v, "parameter value")?;
        if n.contains(['=', ';']) {
            return Err(MediaError::Malformed(format!("parameter name {n:?}")));
        }
    }
    if encoding.eq_ignore_ascii_case("telephone-event") {
        if let Some((_, events)) = params.iter().find(|(n, _)| n == "events") {
            return Ok(Some(events.clone()));
        }
    }
    if encoding.eq_ignore_ascii_case("red") {
        if let [(n, v)] = params {
            if n == "pt" {
                return Ok(Some(v.replace(',', "/")));
            }
        }
    }
    if params.is_empty() {
        return Ok(None);
    }
    let joiner = if is_key_value(encoding) { ";" } else { "; " };
    let parts: Vec<String> = params
        .iter()
        .map(|(n, v)| {
            if n.is_empty() {
                v.clone()
            } else {
                format!("{n}={v}")
            }
        })
        .collect();
    Ok(Some(parts.join(joiner)))
}
