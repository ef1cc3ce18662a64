//! The component check: one XEP-0114 §3 handshake with the configured secret.
//!
//! tokio-xmpp's component login folds every refusal into one `AuthError::ComponentFail`,
//! but an operator needs to know *which* one: a wrong secret, a domain the server does not
//! know, and a domain some other process (often a running stox) already holds are fixed in
//! three different places. So this module drives the handshake itself on tokio-xmpp's
//! `xmlstream` layer (as the gateway's link does, so both speak the same bytes) and reads
//! the RFC 6120 §4.9 stream error condition the server answers with.

use super::{Check, Level};
use crate::config::Secret;
use futures::{SinkExt, StreamExt};
use std::borrow::Cow;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::BufStream;
use tokio::net::TcpStream;
use tokio_xmpp::minidom::Element;
use tokio_xmpp::xmlstream::{initiate_stream, ReadError, StreamHeader, Timeouts, XmlStream};
use xmpp_parsers::component::Handshake;

const NS_COMPONENT: &str = "jabber:component:accept";
const NS_STREAM: &str = "http://etherx.jabber.org/streams";
const NS_STREAM_ERRORS: &str = "urn:ietf:params:xml:ns:xmpp-streams";

/// What the server did with the handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `<handshake/>`: the secret is right and the domain was free.
    Accepted,
    /// A `<stream:error/>`: its condition (e.g. `not-authorized`) and optional text.
    StreamError {
        /// The defined condition's element name.
        condition: String,
        /// The server's `<text/>`, if any.
        text: Option<String>,
    },
    /// The stream or the connection ended without a stream error.
    Closed(String),
    /// Something that is not an XMPP component stream answered.
    NotXmpp(String),
    /// The host part of `component.server` does not resolve.
    Resolve(String),
    /// The TCP connection failed: the error's kind and text.
    Connect(io::ErrorKind, String),
    /// No answer within the timeout; the string names the step that waited.
    Timeout(&'static str),
}

/// Connect to `server` (`host:port`), open a stream to `jid` and hand over the secret; close
/// the stream right after. Every step is bounded by `timeout`.
pub async fn probe(jid: &str, server: &str, secret: &Secret, timeout: Duration) -> Outcome {
    let addrs: Vec<SocketAddr> =
        match tokio::time::timeout(timeout, tokio::net::lookup_host(server)).await {
            Err(_) => return Outcome::Timeout("resolving the host name"),
            Ok(Err(e)) => return Outcome::Resolve(e.to_string()),
            Ok(Ok(a)) => a.collect(),
        };
    let mut last = None;
    let mut tcp = None;
    for a in addrs {
        match tokio::time::timeout(timeout, TcpStream::connect(a)).await {
            Ok(Ok(s)) => {
                tcp = Some(s);
                break;
            }
            Ok(Err(e)) => last = Some(Outcome::Connect(e.kind(), e.to_string())),
            Err(_) => last = Some(Outcome::Timeout("connecting")),
        }
    }
    let Some(tcp) = tcp else {
        return last.unwrap_or_else(|| Outcome::Resolve("no address".into()));
    };
    let _ = tcp.set_nodelay(true);
    handshake(tcp, jid, secret, timeout).await
}

async fn handshake(tcp: TcpStream, jid: &str, secret: &Secret, timeout: Duration) -> Outcome {
    // The soft timeout only provokes a retry inside xmlstream; the tokio timeouts around each
    // step are what bound the wait.
    let timeouts = Timeouts {
        read_timeout: timeout,
        response_timeout: timeout,
    };
    let header = StreamHeader {
        to: Some(Cow::Owned(jid.to_string())),
        from: None,
        id: None,
    };
    let opened = tokio::time::timeout(
        timeout,
        initiate_stream(BufStream::new(tcp), NS_COMPONENT, header, timeouts),
    )
    .await;
    let mut pending = match opened {
        Err(_) => return Outcome::Timeout("waiting for the server's stream header"),
        Ok(Err(e)) if e.kind() == io::ErrorKind::InvalidData => {
            return Outcome::NotXmpp(e.to_string())
        }
        Ok(Err(e)) => return Outcome::Closed(format!("before its stream header: {e}")),
        Ok(Ok(p)) => p,
    };
    let id = pending.take_header().id.map(Cow::into_owned);
    let mut stream: XmlStream<BufStream<TcpStream>, Element> = pending.skip_features();
    // A server that refuses the domain says so right after its header, and may have closed
    // the socket already: the write can fail while the answer still waits to be read.
    let sent = match &id {
        Some(id) => {
            let hs = Handshake::from_stream_id_and_password(id.clone(), secret.expose());
            tokio::time::timeout(timeout, stream.send(&hs)).await
        }
        None => Ok(Ok(())),
    };
    let answer = read_answer(&mut stream, timeout).await;
    if answer == Outcome::Accepted {
        // Goodbye right away: the server must not route the gateway's stanzas here.
        let _ = tokio::time::timeout(timeout, SinkExt::<&Element>::close(&mut stream)).await;
        return answer;
    }
    match (answer, id, sent) {
        (Outcome::Closed(_), _, Ok(Err(e))) => Outcome::Closed(format!("handshake not sent: {e}")),
        (Outcome::Closed(_), None, _) => {
            Outcome::Closed("without a stream id, so no handshake could be computed".into())
        }
        (a, _, _) => a,
    }
}

async fn read_answer(
    stream: &mut XmlStream<BufStream<TcpStream>, Element>,
    timeout: Duration,
) -> Outcome {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let item = match tokio::time::timeout_at(deadline, stream.next()).await {
            Err(_) => return Outcome::Timeout("waiting for the handshake answer"),
            Ok(i) => i,
        };
        match item {
            Some(Ok(el)) if el.is("handshake", NS_COMPONENT) => return Outcome::Accepted,
            Some(Ok(el)) if el.is("error", NS_STREAM) => return stream_error(&el),
            Some(Ok(el)) if el.is("features", NS_STREAM) => {
                // Only client and server streams offer features; XEP-0114 streams never do.
                return Outcome::NotXmpp(
                    "it offers <stream:features/>, so it is a client (c2s) or server (s2s) port"
                        .into(),
                );
            }
            Some(Ok(el)) => {
                return Outcome::NotXmpp(format!("<{}/> instead of <handshake/>", el.name()))
            }
            Some(Err(ReadError::SoftTimeout)) => continue,
            Some(Err(ReadError::ParseError(e))) => return Outcome::NotXmpp(e.to_string()),
            Some(Err(ReadError::HardError(e))) => return Outcome::Closed(e.to_string()),
            Some(Err(ReadError::StreamFooterReceived)) | None => {
                return Outcome::Closed("the stream ended without an answer".into())
            }
        }
    }
}

/// The defined condition and text of a `<stream:error/>` (RFC 6120 §4.9.2).
fn stream_error(el: &Element) -> Outcome {
    let condition = el
        .children()
        .find(|c| c.ns() == NS_STREAM_ERRORS && c.name() != "text")
        .map_or_else(
            || "undefined-condition".to_string(),
            |c| c.name().to_string(),
        );
    let text = el
        .get_child("text", NS_STREAM_ERRORS)
        .map(|t| t.text())
        .filter(|t| !t.trim().is_empty());
    Outcome::StreamError { condition, text }
}

/// The component check as one line.
pub async fn check_component(jid: &str, server: &str, secret: &Secret, timeout: Duration) -> Check {
    let outcome = probe(jid, server, secret, timeout).await;
    describe(jid, server, timeout, &outcome)
}

/// The operator's reading of an [`Outcome`].
pub fn describe(jid: &str, server: &str, timeout: Duration, outcome: &Outcome) -> Check {
    let fail = |m: String| Check::new(Level::Fail, "component", m);
    match outcome {
        Outcome::Accepted => Check::new(
            Level::Ok,
            "component",
            format!("{server} accepted the secret for {jid}"),
        ),
        Outcome::StreamError { condition, text } => {
            let said = match text {
                Some(t) => format!("{condition}: \"{t}\""),
                None => condition.clone(),
            };
            fail(match condition.as_str() {
                "not-authorized" => format!(
                    "{server} rejected the secret for {jid} ({said}): the secret in the config \
                     differs from component_secret (Prosody) / password (ejabberd \
                     ejabberd_service hosts); ejabberd answers the same when {jid} is missing \
                     from its ejabberd_service hosts"
                ),
                "host-unknown" => format!(
                    "{server} does not serve the component {jid} ({said}): declare it on the \
                     server (Prosody: Component \"{jid}\" with component_secret; ejabberd: \
                     listen ejabberd_service hosts: \"{jid}\") or fix component.jid; if \
                     {server} is the client (c2s) port, name the component port instead"
                ),
                // Prosody answers a second connection for a domain with conflict (after the
                // secret matched); ejabberd balances between several instead, and answers
                // conflict when the domain is one of its own hosts.
                "conflict" => format!(
                    "{server} refused {jid} as taken ({said}): another component is already \
                     connected as {jid} (a running stox? stop it first: two gateways cannot \
                     share one component domain), or {jid} is one of the server's own domains"
                ),
                "invalid-namespace" => format!(
                    "{server} does not accept component streams ({said}): is it the client \
                     (5222) or server (5269) port? component.server must name the \
                     XEP-0114 component port (Prosody component_ports, ejabberd \
                     ejabberd_service)"
                ),
                _ => format!(
                    "{server} ended the stream for {jid} with a stream error ({said}): see the \
                     XMPP server's log"
                ),
            })
        }
        Outcome::Closed(why) => fail(format!(
            "{server} closed the connection {why}: see the XMPP server's log (wrong port or a \
             component listener limited to other addresses?)"
        )),
        Outcome::NotXmpp(why) => fail(format!(
            "{server} does not answer like an XMPP component port ({why}): component.server \
             must name the XEP-0114 port (Prosody component_ports, ejabberd ejabberd_service)"
        )),
        Outcome::Resolve(why) => fail(format!(
            "cannot resolve the host of component.server {server:?} ({why}): fix the name or \
             use an IP address"
        )),
        Outcome::Connect(io::ErrorKind::ConnectionRefused, _) => fail(format!(
            "nothing listens on {server} (connection refused): is the XMPP server running, \
             with its component listener on this address (Prosody component_ports and \
             component_interfaces, ejabberd listen: module ejabberd_service)?"
        )),
        Outcome::Connect(_, e) => fail(format!("cannot connect to {server}: {e}")),
        Outcome::Timeout(step) => fail(format!(
            "no answer from {server} within {}s while {step}: a firewall dropping packets, \
             a wrong host, or a server too busy to answer",
            timeout.as_secs_f32()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(xml: &str) -> Element {
        xml.parse().unwrap()
    }

    #[test]
    fn stream_error_condition_and_text() {
        let el = parse(
            "<stream:error xmlns:stream='http://etherx.jabber.org/streams'>\
             <text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>Component already connected</text>\
             <conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>",
        );
        assert_eq!(
            stream_error(&el),
            Outcome::StreamError {
                condition: "conflict".into(),
                text: Some("Component already connected".into())
            }
        );
        let bare = parse("<stream:error xmlns:stream='http://etherx.jabber.org/streams'/>");
        assert_eq!(
            stream_error(&bare),
            Outcome::StreamError {
                condition: "undefined-condition".into(),
                text: None
            }
        );
    }

    #[test]
    fn conflict_names_a_running_stox() {
        let c = describe(
            "sip.example.com",
            "127.0.0.1:5347",
            Duration::from_secs(5),
            &Outcome::StreamError {
                condition: "conflict".into(),
                text: None,
            },
        );
        assert_eq!(c.level, Level::Fail);
        assert!(c.message.contains("already connected"), "{}", c.message);
        assert!(c.message.contains("running stox"), "{}", c.message);
        assert!(c.message.contains("server's own domains"), "{}", c.message);
    }
}
