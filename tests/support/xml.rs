//! An incremental splitter for an XMPP stream: bytes in (in whatever pieces TCP delivers
//! them), whole top-level items out. It only tracks tag nesting, so it works on bytes and a
//! multi-byte UTF-8 character split across two reads is never cut.

use tokio_xmpp::minidom::Element;

/// Namespaces in scope for top-level stanzas of a component stream.
pub const NS_COMPONENT: &str = "jabber:component:accept";
/// The streams namespace (prefix `stream`).
pub const NS_STREAM: &str = "http://etherx.jabber.org/streams";
/// RFC 6120 stanza error conditions.
pub const NS_STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";

/// One item of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// The opening `<stream:stream ...>` tag, as text.
    Header(String),
    /// A complete top-level element, as text.
    Element(String),
    /// `</stream:stream>`.
    Footer,
}

/// Accumulates bytes and yields [`Token`]s.
#[derive(Debug, Default)]
pub struct Splitter {
    buf: Vec<u8>,
    in_stream: bool,
}

enum Tag {
    Open,
    Close,
    Empty,
    Skip,
}

impl Splitter {
    /// A splitter expecting the stream header first.
    pub fn new() -> Self {
        Splitter::default()
    }

    /// Add bytes as they came off the socket.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes not yet consumed (whitespace, or an incomplete item).
    pub fn pending(&self) -> &[u8] {
        &self.buf
    }

    /// The next complete item, or `None` if more bytes are needed.
    pub fn next_token(&mut self) -> Option<Token> {
        loop {
            let start = self.buf.iter().position(|&b| b == b'<')?;
            let (kind, end) = scan_tag(&self.buf, start)?;
            let tag_text = String::from_utf8_lossy(&self.buf[start..end]).into_owned();
            match kind {
                Tag::Skip => {
                    self.buf.drain(..end);
                    continue;
                }
                Tag::Open if tag_text.starts_with("<stream:stream") => {
                    self.buf.drain(..end);
                    self.in_stream = true;
                    return Some(Token::Header(tag_text));
                }
                Tag::Close if tag_text.starts_with("</stream:stream") => {
                    self.buf.drain(..end);
                    self.in_stream = false;
                    return Some(Token::Footer);
                }
                Tag::Empty => {
                    self.buf.drain(..end);
                    return Some(Token::Element(tag_text));
                }
                Tag::Close => {
                    // Stray closing tag at top level: drop it (should not happen).
                    self.buf.drain(..end);
                    continue;
                }
                Tag::Open => {
                    let mut depth = 1usize;
                    let mut pos = end;
                    while depth > 0 {
                        let next = pos + self.buf[pos..].iter().position(|&b| b == b'<')?;
                        let (k, e) = scan_tag(&self.buf, next)?;
                        match k {
                            Tag::Open => depth += 1,
                            Tag::Close => depth -= 1,
                            Tag::Empty | Tag::Skip => {}
                        }
                        pos = e;
                    }
                    let text = String::from_utf8_lossy(&self.buf[start..pos]).into_owned();
                    self.buf.drain(..pos);
                    return Some(Token::Element(text));
                }
            }
        }
    }
}

/// Scan the markup starting at `buf[start] == b'<'`; `None` if incomplete.
fn scan_tag(buf: &[u8], start: usize) -> Option<(Tag, usize)> {
    let rest = &buf[start..];
    let find = |pat: &[u8]| {
        rest.windows(pat.len())
            .position(|w| w == pat)
            .map(|p| start + p + pat.len())
    };
    if rest.len() < 2 {
        return None;
    }
    if rest.starts_with(b"<?") {
        return find(b"?>").map(|e| (Tag::Skip, e));
    }
    if rest.starts_with(b"<!--") {
        return find(b"-->").map(|e| (Tag::Skip, e));
    }
    if rest.starts_with(b"<![CDATA[") {
        return find(b"]]>").map(|e| (Tag::Skip, e));
    }
    if rest.len() < 9 && (b"<![CDATA[".starts_with(rest) || b"<!--".starts_with(rest)) {
        return None;
    }
    let mut quote: Option<u8> = None;
    for (i, &b) in rest.iter().enumerate().skip(1) {
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if b == b'"' || b == b'\'' => quote = Some(b),
            None if b == b'>' => {
                let kind = if rest[1] == b'/' {
                    Tag::Close
                } else if rest[i - 1] == b'/' {
                    Tag::Empty
                } else {
                    Tag::Open
                };
                return Some((kind, start + i + 1));
            }
            None => {}
        }
    }
    None
}

/// Parse one top-level element of a component stream (the stream's default namespace and
/// the `stream` prefix are in scope, as they are on the wire).
pub fn parse_stanza(text: &str) -> Result<Element, String> {
    let wrapped = format!(
        "<stream:stream xmlns='{NS_COMPONENT}' xmlns:stream='{NS_STREAM}'>{text}</stream:stream>"
    );
    let root: Element = wrapped.parse().map_err(|e| format!("{e:?} in {text}"))?;
    root.children()
        .next()
        .cloned()
        .ok_or_else(|| format!("no element in {text}"))
}

/// Value of the `xml:lang` attribute.
pub fn xml_lang(el: &Element) -> Option<String> {
    el.attrs().iter().find_map(|((ns, name), v)| {
        (ns.as_str() == "http://www.w3.org/XML/1998/namespace" && name.as_str() == "lang")
            .then(|| v.clone())
    })
}

/// The attribute value out of a raw tag text (`name='v'` or `name="v"`).
pub fn raw_attr(tag: &str, name: &str) -> Option<String> {
    for q in ['\'', '"'] {
        let pat = format!(" {name}={q}");
        if let Some(i) = tag.find(&pat) {
            let rest = &tag[i + pat.len()..];
            return rest.find(q).map(|e| rest[..e].to_string());
        }
    }
    None
}

/// Child `name` in namespace `ns`, or panic with the stanza.
pub fn child<'a>(el: &'a Element, name: &str, ns: &str) -> &'a Element {
    el.get_child(name, ns)
        .unwrap_or_else(|| panic!("no <{name} xmlns='{ns}'> in {}", String::from(el)))
}

/// The stanza error: `(type, condition name, condition text, <text/>)`.
pub fn stanza_error(el: &Element) -> (String, String, String, Option<String>) {
    let err = child(el, "error", NS_COMPONENT);
    let cond = err
        .children()
        .find(|c| c.ns() == NS_STANZAS && c.name() != "text")
        .unwrap_or_else(|| panic!("no defined condition in {}", String::from(el)));
    let text = err.get_child("text", NS_STANZAS).map(|t| t.text());
    (
        err.attr("type").unwrap_or("").to_string(),
        cond.name().to_string(),
        cond.text(),
        text,
    )
}
