//! The bounded XML reader for small SIP XML bodies (PIDF, isComposing, IMDN): size, depth,
//! element and attribute limits enforced while streaming, so a hostile document is refused
//! before it is built; prolog and comment handling rxml alone would refuse.

use super::{PidfError, MAX_ATTRIBUTES, MAX_BODY_BYTES, MAX_DEPTH, MAX_ELEMENTS, MAX_TOKEN_BYTES};
use xmpp_parsers::minidom::rxml::{self, parser::CommentMode, RawEvent, RawReader};
use xmpp_parsers::minidom::tree_builder::TreeBuilder;
use xmpp_parsers::minidom::Element;

/// Read one document. A leading BOM, whitespace and an XML declaration with any `standalone`
/// value are accepted (Java serializers write `standalone='no'`, which rxml alone would
/// refuse); a declared encoding other than UTF-8 is [`PidfError::NotUtf8`].
pub fn read_xml(body: &[u8]) -> Result<Element, PidfError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(PidfError::TooLarge {
            size: body.len(),
            limit: MAX_BODY_BYTES,
        });
    }
    let text = std::str::from_utf8(body).map_err(|_| PidfError::NotUtf8)?;
    read_tree(strip_trailing_comments(strip_prolog(text)?))
}

/// Drops the BOM, leading whitespace and the XML declaration after checking its encoding.
fn strip_prolog(text: &str) -> Result<&str, PidfError> {
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text).trim_start();
    let Some(rest) = text.strip_prefix("<?xml") else {
        return skip_comments(text);
    };
    if !rest.starts_with(|c: char| c.is_ascii_whitespace()) {
        // `<?xml-stylesheet ...?>` and friends: a PI, which rxml refuses with a clear error.
        return Ok(text);
    }
    let (decl, after) = rest
        .split_once("?>")
        .ok_or_else(|| PidfError::Xml("unterminated XML declaration".into()))?;
    if let Some(encoding) = pseudo_attr(decl, "encoding") {
        if !encoding.eq_ignore_ascii_case("utf-8") && !encoding.eq_ignore_ascii_case("utf8") {
            return Err(PidfError::NotUtf8);
        }
    }
    match pseudo_attr(decl, "version") {
        Some("1.0") => skip_comments(after),
        _ => Err(PidfError::Xml("XML declaration without version 1.0".into())),
    }
}

/// Drops comments after the root element, which rxml refuses. A comment cannot contain
/// `--`, so the last `<!--` starts the last comment; cutting there leaves a prefix of the
/// body, which still has to parse as a whole document on its own.
fn strip_trailing_comments(mut text: &str) -> &str {
    loop {
        text = text.trim_end();
        match text.strip_suffix("-->").and_then(|t| t.rfind("<!--")) {
            Some(start) => text = &text[..start],
            None => return text,
        }
    }
}

/// Skips comments and whitespace before the root element: rxml's raw parser stumbles over
/// whitespace after a comment at document level.
fn skip_comments(mut text: &str) -> Result<&str, PidfError> {
    loop {
        text = text.trim_start();
        let Some(comment) = text.strip_prefix("<!--") else {
            return Ok(text);
        };
        let (_, after) = comment
            .split_once("-->")
            .ok_or_else(|| PidfError::Xml("unterminated comment".into()))?;
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

/// Streams the XML through rxml into minidom's tree builder, enforcing the limits on each
/// event so that a hostile document is refused before it is materialised (and before a deep
/// tree could overflow the stack when dropped).
fn read_tree(text: &str) -> Result<Element, PidfError> {
    let options = rxml::Options {
        max_token_length: MAX_TOKEN_BYTES,
        // Comments are legal XML and harmless; refusing them would refuse valid PIDF.
        comments: CommentMode::Discard,
        ..rxml::Options::default()
    };
    let mut reader = RawReader::with_options(text.as_bytes(), options);
    let mut builder = TreeBuilder::new();
    let (mut depth, mut elements) = (0usize, 0usize);
    // Attribute names of the element head being read, to refuse duplicates (rxml's raw
    // parser leaves that well-formedness check to its user).
    let mut head_attrs: Vec<(Option<String>, String)> = Vec::new();
    loop {
        let event = match reader.read() {
            Ok(Some(event)) => event,
            Ok(None) => break,
            Err(e) => return Err(PidfError::Xml(e.to_string())),
        };
        match &event {
            RawEvent::ElementHeadOpen(..) => {
                depth += 1;
                elements += 1;
                if depth > MAX_DEPTH {
                    return Err(PidfError::TooDeep(MAX_DEPTH));
                }
                if elements > MAX_ELEMENTS {
                    return Err(PidfError::TooManyElements(MAX_ELEMENTS));
                }
                head_attrs.clear();
            }
            RawEvent::Attribute(_, (prefix, name), _) => {
                let key = (prefix.as_ref().map(|p| p.to_string()), name.to_string());
                if head_attrs.contains(&key) {
                    return Err(PidfError::Xml(format!("duplicate attribute `{}`", key.1)));
                }
                if head_attrs.len() == MAX_ATTRIBUTES {
                    return Err(PidfError::TooManyAttributes(MAX_ATTRIBUTES));
                }
                head_attrs.push(key);
            }
            RawEvent::ElementFoot(_) => depth = depth.saturating_sub(1),
            _ => {}
        }
        builder
            .process_event(event)
            .map_err(|e| PidfError::Xml(e.to_string()))?;
    }
    builder
        .root
        .take()
        .ok_or_else(|| PidfError::Xml("no root element".into()))
}
