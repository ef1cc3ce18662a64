//! The bounded XML reader for conference-info bodies (RFC 4575 §4.1: XML 1.0, UTF-8).
//!
//! The same streaming checks as the PIDF reader in `presence/xml_reader.rs` (size, depth,
//! element and attribute counts enforced on each rxml event, before a tree exists), with the
//! larger limits a room roster needs: a PIDF body describes one presentity, a conference-info
//! body describes hundreds of users. Kept separate rather than parameterising the presence
//! reader so the two features can tune their limits independently.

use super::confinfo::{
    ConfInfoError, MAX_ATTRIBUTES, MAX_BODY_BYTES, MAX_DEPTH, MAX_ELEMENTS, MAX_TEXT_BYTES,
};
use xmpp_parsers::minidom::rxml::{self, parser::CommentMode, RawEvent, RawReader};
use xmpp_parsers::minidom::tree_builder::TreeBuilder;
use xmpp_parsers::minidom::Element;

/// Reads one document. A leading BOM, whitespace, comments and an XML declaration are
/// accepted; a declared encoding other than UTF-8 is [`ConfInfoError::NotUtf8`].
pub(super) fn read_xml(body: &[u8]) -> Result<Element, ConfInfoError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(ConfInfoError::TooLarge {
            size: body.len(),
            limit: MAX_BODY_BYTES,
        });
    }
    let text = std::str::from_utf8(body).map_err(|_| ConfInfoError::NotUtf8)?;
    read_tree(strip_trailing_comments(strip_prolog(text)?))
}

/// Drops the BOM, leading whitespace and the XML declaration after checking its encoding;
/// rxml's raw reader refuses `standalone` values some serializers write.
fn strip_prolog(text: &str) -> Result<&str, ConfInfoError> {
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text).trim_start();
    let Some(rest) = text.strip_prefix("<?xml") else {
        return skip_comments(text);
    };
    if !rest.starts_with(|c: char| c.is_ascii_whitespace()) {
        // Another processing instruction: rxml refuses it with a clear error.
        return Ok(text);
    }
    let (decl, after) = rest
        .split_once("?>")
        .ok_or_else(|| ConfInfoError::Xml("unterminated XML declaration".into()))?;
    if let Some(encoding) = pseudo_attr(decl, "encoding") {
        if !encoding.eq_ignore_ascii_case("utf-8") && !encoding.eq_ignore_ascii_case("utf8") {
            return Err(ConfInfoError::NotUtf8);
        }
    }
    match pseudo_attr(decl, "version") {
        Some("1.0") => skip_comments(after),
        _ => Err(ConfInfoError::Xml(
            "XML declaration without version 1.0".into(),
        )),
    }
}

/// Drops comments after the root element (rxml refuses them). A comment cannot contain `--`,
/// so the last `<!--` starts the last comment; what is left must still parse on its own.
fn strip_trailing_comments(mut text: &str) -> &str {
    loop {
        text = text.trim_end();
        match text.strip_suffix("-->").and_then(|t| t.rfind("<!--")) {
            Some(start) => text = &text[..start],
            None => return text,
        }
    }
}

/// Skips comments and whitespace before the root element (RFC 4575 §7 examples start with
/// comments inside the root only, but serializers put licence banners before it).
fn skip_comments(mut text: &str) -> Result<&str, ConfInfoError> {
    loop {
        text = text.trim_start();
        let Some(comment) = text.strip_prefix("<!--") else {
            return Ok(text);
        };
        let (_, after) = comment
            .split_once("-->")
            .ok_or_else(|| ConfInfoError::Xml("unterminated comment".into()))?;
        text = after;
    }
}

/// The value of `name='v'` / `name="v"` in an XML declaration.
fn pseudo_attr<'a>(decl: &'a str, name: &str) -> Option<&'a str> {
    let start = decl.find(name)? + name.len();
    let rest = decl[start..].trim_start().strip_prefix('=')?.trim_start();
    let quote = rest.chars().next().filter(|q| *q == '\'' || *q == '"')?;
    rest[1..].split(quote).next()
}

/// Streams the text through rxml into minidom's tree builder, enforcing the limits on each
/// event so that a hostile document is refused before it is built (and before a deep tree
/// could overflow the stack when dropped).
fn read_tree(text: &str) -> Result<Element, ConfInfoError> {
    let options = rxml::Options {
        max_token_length: MAX_TEXT_BYTES,
        comments: CommentMode::Discard,
        ..rxml::Options::default()
    };
    let mut reader = RawReader::with_options(text.as_bytes(), options);
    let mut builder = TreeBuilder::new();
    let (mut depth, mut elements) = (0usize, 0usize);
    // rxml's raw parser leaves the duplicate-attribute check to its user.
    let mut head_attrs: Vec<(Option<String>, String)> = Vec::new();
    loop {
        let event = match reader.read() {
            Ok(Some(event)) => event,
            Ok(None) => break,
            Err(e) => return Err(ConfInfoError::Xml(e.to_string())),
        };
        match &event {
            RawEvent::ElementHeadOpen(..) => {
                depth += 1;
                elements += 1;
                if depth > MAX_DEPTH {
                    return Err(ConfInfoError::TooDeep(MAX_DEPTH));
                }
                if elements > MAX_ELEMENTS {
                    return Err(ConfInfoError::TooManyElements(MAX_ELEMENTS));
                }
                head_attrs.clear();
            }
            RawEvent::Attribute(_, (prefix, name), _) => {
                let key = (prefix.as_ref().map(|p| p.to_string()), name.to_string());
                if head_attrs.contains(&key) {
                    return Err(ConfInfoError::Xml(format!(
                        "duplicate attribute `{}`",
                        key.1
                    )));
                }
                if head_attrs.len() == MAX_ATTRIBUTES {
                    return Err(ConfInfoError::TooManyAttributes(MAX_ATTRIBUTES));
                }
                head_attrs.push(key);
            }
            RawEvent::ElementFoot(_) => depth = depth.saturating_sub(1),
            _ => {}
        }
        builder
            .process_event(event)
            .map_err(|e| ConfInfoError::Xml(e.to_string()))?;
    }
    builder
        .root
        .take()
        .ok_or_else(|| ConfInfoError::Xml("no root element".into()))
}
