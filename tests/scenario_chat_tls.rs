//! MSRP over TLS (CHAT-9, CHAT-23; RFC 4975 §6, §8.1, §14; RFC 7573) against the in-process gateway: a SIP
//! user's `TCP/TLS/MSRP` offer answered with an `msrps:` path and a chat both ways over a TLS
//! connection to the gateway's `msrps` listener; an XMPP user's session offered over TLS, the
//! gateway connecting to the peer's `msrps:` URI and verifying its certificate; a TLS offer
//! refused with 488 when no `msrps` listener is configured. Certificates are self-signed,
//! made at test time with rcgen; MSRP frames are written by hand.

mod support;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use stox::chat::msrp::{Decoder, Frame, MsrpUri, StartLine};
use stox::sip::tls::provider;
use support::sip::{request, token, SipMsg};
use support::{Harness, Opts, COMPONENT, SOON};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_xmpp::minidom::Element;

/// A self-signed certificate for 127.0.0.1 written as `<stem>.crt` / `<stem>.key` in `dir`.
struct Cert {
    crt: PathBuf,
    key: PathBuf,
}

impl Cert {
    fn new(dir: &Path, stem: &str) -> Cert {
        let c = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
        let (crt, key) = (
            dir.join(format!("{stem}.crt")),
            dir.join(format!("{stem}.key")),
        );
        std::fs::write(&crt, c.cert.pem()).unwrap();
        std::fs::write(&key, c.key_pair.serialize_pem()).unwrap();
        Cert { crt, key }
    }

    fn der(&self) -> CertificateDer<'static> {
        CertificateDer::from_pem_file(&self.crt).unwrap()
    }

    /// Put `other`'s files where this certificate's are (a renewal at the same path).
    fn replace_with(&self, other: &Cert) {
        std::fs::copy(&other.crt, &self.crt).unwrap();
        std::fs::copy(&other.key, &self.key).unwrap();
    }
}

fn tmp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("stox-scenario-msrps-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Session mode with the `msrps` listener on the gateway's certificate; `ca` is trusted for
/// outbound TLS; `offer` sets `chat.offer_tls`.
fn msrps_opts(gw: &Cert, ca: Option<&Cert>, offer: bool) -> Opts {
    let mut extra = format!(
        "msrps_listen = \"127.0.0.1:0\"\noffer_tls = {offer}\n\n[sip.tls]\ncert_file = {:?}\nkey_file = {:?}\n",
        gw.crt.display().to_string(),
        gw.key.display().to_string()
    );
    if let Some(ca) = ca {
        extra.push_str(&format!("ca_file = {:?}\n", ca.crt.display().to_string()));
    }
    Opts {
        chat_mode: "session",
        extra_config: extra,
        ..support::opts()
    }
}

fn chat(id: &str, body: &str) -> String {
    format!(
        "<message xmlns='jabber:component:accept' from='juliet@example.com/balcony' \
         to='romeo@{COMPONENT}' id='{id}' type='chat'><body>{body}</body></message>"
    )
}

fn body_of(el: &Element) -> String {
    el.get_child("body", "jabber:component:accept")
        .map(|b| b.text())
        .unwrap_or_default()
}

fn attr_line<'a>(sdp: &'a str, name: &str) -> Option<&'a str> {
    sdp.lines()
        .find_map(|l| l.strip_prefix(&format!("a={name}:")))
        .map(str::trim)
}

fn offer_sdp(proto: &str, path: &str) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=message 9 {proto} *\r\na=accept-types:text/plain\r\na=path:{path}\r\n"
    )
}

fn invite_with(h: &Harness, sdp: &str) -> SipMsg {
    let from = format!("<sip:romeo@example.net>;tag={}", token());
    let contact = format!("<sip:romeo@{}>", h.uac.addr);
    request(
        "INVITE",
        "sip:juliet@example.com",
        &from,
        "<sip:juliet@example.com>",
        &[
            ("Contact", contact.as_str()),
            ("Content-Type", "application/sdp"),
        ],
        sdp.as_bytes(),
    )
}

async fn read_frame<S: AsyncRead + Unpin>(conn: &mut S, d: &mut Decoder) -> Frame {
    let mut buf = vec![0u8; 8192];
    loop {
        if let Some(f) = d.next_frame().expect("valid MSRP from the gateway") {
            return f;
        }
        let n = tokio::time::timeout(SOON, conn.read(&mut buf))
            .await
            .expect("an MSRP frame in time")
            .unwrap();
        assert!(n > 0, "the gateway closed the MSRP connection");
        d.extend(&buf[..n]);
    }
}

/// The next SEND with a body, answering every request with 200 (the opening bodiless SEND too).
async fn next_send<S: AsyncRead + AsyncWrite + Unpin>(conn: &mut S, d: &mut Decoder) -> Frame {
    loop {
        let f = read_frame(conn, d).await;
        if f.method() != Some("SEND") {
            continue;
        }
        let ok = format!(
            "MSRP {} 200 OK\r\nTo-Path: {}\r\nFrom-Path: {}\r\n-------{}$\r\n",
            f.tid,
            f.header("From-Path").unwrap(),
            f.header("To-Path").unwrap(),
            f.tid
        );
        conn.write_all(ok.as_bytes()).await.unwrap();
        if f.body.as_ref().is_some_and(|b| !b.is_empty()) {
            return f;
        }
    }
}

fn send_frame(tid: &str, to: &str, from: &str, text: &str) -> String {
    format!(
        "MSRP {tid} SEND\r\nTo-Path: {to}\r\nFrom-Path: {from}\r\nMessage-ID: m{tid}\r\n\
         Byte-Range: 1-{n}/{n}\r\nContent-Type: text/plain\r\n\r\n{text}\r\n-------{tid}$\r\n",
        n = text.len()
    )
}

/// A TLS client that trusts only `trust` and checks the certificate names 127.0.0.1.
async fn tls_connect(to: &str, trust: &Cert) -> tokio_rustls::client::TlsStream<TcpStream> {
    try_tls_connect(to, trust)
        .await
        .expect("TLS handshake with the gateway's msrps listener")
}

async fn try_tls_connect(
    to: &str,
    trust: &Cert,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(trust.der()).unwrap();
    let cfg = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(to).await.unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await
}

/// RFC 4975 §14, RFC 7573 (CHAT-8, CHAT-7): a SIP user's TLS offer is answered with
/// `TCP/TLS/MSRP` and an `msrps:` path on the TLS listener; a SEND over TLS reaches the XMPP
/// user and her reply comes back over the same TLS connection. A silent client connected first
/// does not stall the listener.
#[tokio::test]
async fn chat_9_23_sip_user_opens_a_session_over_tls_and_both_talk() {
    let dir = tmp_dir("in");
    let gw = Cert::new(&dir, "gw");
    let mut h = Harness::start(msrps_opts(&gw, None, false)).await;
    let ours = "msrps://127.0.0.1:9/tlssess1;tcp";
    let sent = h
        .sip_send(invite_with(&h, &offer_sdp("TCP/TLS/MSRP", ours)))
        .await;
    let accepted = h.sip_final(&sent).await;
    assert_eq!(accepted.code(), Some(200), "{}", accepted.start);
    let answer = accepted.body_str().to_string();
    assert!(answer.contains(" TCP/TLS/MSRP *\r\n"), "{answer}");
    let path = attr_line(&answer, "path").expect("a=path in the answer");
    let gw_uri = MsrpUri::parse(path).unwrap();
    assert!(gw_uri.secure, "an msrps: path: {path}");
    let m_port = answer
        .lines()
        .find_map(|l| l.strip_prefix("m=message "))
        .and_then(|r| r.split(' ').next())
        .unwrap();
    assert_eq!(
        Some(m_port.parse().unwrap()),
        gw_uri.port,
        "m= names the TLS port"
    );

    // A client that connects and never starts its handshake does not hold up the next one.
    let _silent = TcpStream::connect(gw_uri.authority()).await.unwrap();
    let mut conn = tls_connect(&gw_uri.authority(), &gw).await;
    let mut d = Decoder::new(1 << 20);
    let send = send_frame("tls00001", path, ours, "Over TLS, fair saint");
    conn.write_all(send.as_bytes()).await.unwrap();
    let resp = read_frame(&mut conn, &mut d).await;
    assert_eq!(resp.tid, "tls00001");
    assert!(
        matches!(resp.start, StartLine::Response(200, _)),
        "{resp:?}"
    );
    let m = h.next_message().await;
    assert_eq!(body_of(&m), "Over TLS, fair saint");

    h.xmpp.send(&chat("r1", "And back over TLS"));
    let f = next_send(&mut conn, &mut d).await;
    assert_eq!(f.header("To-Path"), Some(ours));
    assert_eq!(f.body.as_deref(), Some(&b"And back over TLS"[..]));
}

/// RFC 4975 §14: without `chat.msrps_listen` a TLS offer is refused with 488, never answered
/// with a plain TCP path.
#[tokio::test]
async fn chat_23_tls_offer_without_an_msrps_listener_gets_488() {
    let mut h = Harness::start(Opts {
        chat_mode: "session",
        ..support::opts()
    })
    .await;
    let sdp = offer_sdp("TCP/TLS/MSRP", "msrps://127.0.0.1:9/tlssess2;tcp");
    let r = h.refused_without_stanza(invite_with(&h, &sdp), 488).await;
    assert_eq!(r.code(), Some(488), "{}", r.start);
}

/// RFC 4975 §14.2, RFC 7573 (CHAT-3, CHAT-5): with `chat.offer_tls` an XMPP user's chat offers
/// `TCP/TLS/MSRP` with an `msrps:` path; the gateway connects to the answer's `msrps:` URI,
/// verifies the peer's certificate (trusted through `ca_file`), and the chat runs both ways.
#[tokio::test]
async fn chat_9_23_xmpp_user_opens_a_session_over_tls_and_both_talk() {
    let dir = tmp_dir("out");
    let (gw, peer) = (Cert::new(&dir, "gw"), Cert::new(&dir, "peer"));
    let mut h = Harness::start(msrps_opts(&gw, Some(&peer), true)).await;
    let key = PrivateKeyDer::from_pem_file(&peer.key).unwrap();
    let server = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![peer.der()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let ours = format!("msrps://127.0.0.1:{port}/tlspeer1;tcp");

    h.xmpp.send(&chat("o1", "Wherefore art thou, over TLS?"));
    let (invite, src) = h.uas.request(SOON).await;
    assert_eq!(invite.method(), Some("INVITE"), "{}", invite.start);
    let offer = invite.body_str().to_string();
    assert!(offer.contains(" TCP/TLS/MSRP *\r\n"), "{offer}");
    let gw_path = attr_line(&offer, "path")
        .expect("a=path in the offer")
        .to_string();
    assert!(gw_path.starts_with("msrps://127.0.0.1:"), "{offer}");
    let mut ok = invite.response(
        200,
        "OK",
        &[
            ("Contact", &format!("<sip:romeo@{}>", h.uas.addr)),
            ("Content-Type", "application/sdp"),
        ],
    );
    ok.body = offer_sdp("TCP/TLS/MSRP", &ours)
        .replace("m=message 9 ", &format!("m=message {port} "))
        .into_bytes();
    h.uas.send(&ok, src).await;

    // The offerer connects (RFC 4975 §5.4), over TLS.
    let (tcp, _) = tokio::time::timeout(SOON, listener.accept())
        .await
        .expect("the gateway connects to our msrps: URI")
        .unwrap();
    let mut conn = acceptor
        .accept(tcp)
        .await
        .expect("TLS handshake from the gateway");
    let mut d = Decoder::new(1 << 20);
    let f = next_send(&mut conn, &mut d).await;
    assert_eq!(f.header("To-Path"), Some(ours.as_str()));
    assert_eq!(
        f.body.as_deref(),
        Some(&b"Wherefore art thou, over TLS?"[..])
    );

    let send = send_frame("tls00002", &gw_path, &ours, "Here, over TLS");
    conn.write_all(send.as_bytes()).await.unwrap();
    let m = h.next_message().await;
    assert_eq!(body_of(&m), "Here, over TLS");
    assert_eq!(m.attr("to"), Some("juliet@example.com/balcony"));
}

/// RFC 4975 §14.2: the gateway verifies the certificate of an `msrps:` peer; one it does not
/// trust (no `ca_file` for this self-signed one) fails the handshake, no MSRP is sent on it,
/// and the session ends with BYE.
#[tokio::test]
async fn chat_23_an_untrusted_msrps_peer_is_not_talked_to() {
    let dir = tmp_dir("untrusted");
    let (gw, peer) = (Cert::new(&dir, "gw"), Cert::new(&dir, "peer"));
    let h = Harness::start(msrps_opts(&gw, None, true)).await;
    let key = PrivateKeyDer::from_pem_file(&peer.key).unwrap();
    let server = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![peer.der()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let ours = format!("msrps://127.0.0.1:{port}/tlspeer2;tcp");

    h.xmpp.send(&chat("u1", "Not to a stranger"));
    let (invite, src) = h.uas.request(SOON).await;
    let mut ok = invite.response(
        200,
        "OK",
        &[
            ("Contact", &format!("<sip:romeo@{}>", h.uas.addr)),
            ("Content-Type", "application/sdp"),
        ],
    );
    ok.body = offer_sdp("TCP/TLS/MSRP", &ours)
        .replace("m=message 9 ", &format!("m=message {port} "))
        .into_bytes();
    h.uas.send(&ok, src).await;
    let (tcp, _) = tokio::time::timeout(SOON, listener.accept())
        .await
        .expect("the gateway tries our msrps: URI")
        .unwrap();
    let handshake = tokio::time::timeout(SOON, acceptor.accept(tcp))
        .await
        .expect("the handshake ends");
    assert!(
        handshake.is_err(),
        "the gateway accepted an untrusted certificate"
    );
    let deadline = tokio::time::Instant::now() + SOON;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let (m, src) = h
            .uas
            .recv(left)
            .await
            .expect("a BYE for the failed session");
        if m.method() == Some("BYE") {
            h.uas.send(&m.response(200, "OK", &[]), src).await;
            break;
        }
    }
}

/// The `msrps` listener serves `[sip.tls]`'s certificate through the same resolver: a reload
/// with renewed files changes what new MSRP handshakes see, and an open MSRP connection keeps
/// working.
#[tokio::test]
async fn chat_23_reload_swaps_the_msrps_certificate_for_new_handshakes() {
    let dir = tmp_dir("reload");
    let (gw, renewed) = (Cert::new(&dir, "gw"), Cert::new(&dir, "renewed"));
    let original = Cert::new(&dir, "original");
    original.replace_with(&gw);
    let mut h = Harness::start(msrps_opts(&gw, None, false)).await;
    let ours = "msrps://127.0.0.1:9/tlssess3;tcp";
    let sent = h
        .sip_send(invite_with(&h, &offer_sdp("TCP/TLS/MSRP", ours)))
        .await;
    let accepted = h.sip_final(&sent).await;
    assert_eq!(accepted.code(), Some(200), "{}", accepted.start);
    let answer = accepted.body_str().to_string();
    let path = attr_line(&answer, "path").unwrap().to_string();
    let authority = MsrpUri::parse(&path).unwrap().authority();
    let mut old_conn = tls_connect(&authority, &original).await;

    gw.replace_with(&renewed);
    let plan =
        h.gw.as_ref()
            .unwrap()
            .reload()
            .await
            .expect("reload applies");
    assert!(
        plan.applied.iter().any(|k| k.starts_with("sip.tls")),
        "{}",
        plan.summary()
    );
    try_tls_connect(&authority, &renewed)
        .await
        .expect("a new msrps handshake gets the renewed certificate");
    assert!(
        try_tls_connect(&authority, &original).await.is_err(),
        "the old certificate is no longer served"
    );

    let mut d = Decoder::new(1 << 20);
    let send = send_frame("tls00003", &path, ours, "after the renewal");
    old_conn.write_all(send.as_bytes()).await.unwrap();
    let resp = read_frame(&mut old_conn, &mut d).await;
    assert!(
        matches!(resp.start, StartLine::Response(200, _)),
        "{resp:?}"
    );
    let m = h.next_message().await;
    assert_eq!(body_of(&m), "after the renewal");
}

/// CHAT-23, RFC 4975 §6.1 (`msrps:` and `msrp:` URIs differ): a TLS session's id sent over a
/// plain TCP connection gets 481 and reaches nobody; knowing the id does not step around TLS.
#[tokio::test]
async fn chat_23_a_tls_session_takes_no_frames_over_plain_tcp() {
    let dir = tmp_dir("plain");
    let gw = Cert::new(&dir, "gw");
    let mut h = Harness::start(msrps_opts(&gw, None, false)).await;
    // A plain session first, to learn the plain listener's address.
    let plain = "msrp://127.0.0.1:9/plainse1;tcp";
    let sent = h
        .sip_send(invite_with(&h, &offer_sdp("TCP/MSRP", plain)))
        .await;
    let answer = h.sip_final(&sent).await.body_str().to_string();
    let plain_gw = MsrpUri::parse(attr_line(&answer, "path").unwrap()).unwrap();
    assert!(!plain_gw.secure, "{answer}");
    let ours = "msrps://127.0.0.1:9/tlssess4;tcp";
    let sent = h
        .sip_send(invite_with(&h, &offer_sdp("TCP/TLS/MSRP", ours)))
        .await;
    let answer = h.sip_final(&sent).await.body_str().to_string();
    let tls_path = attr_line(&answer, "path").unwrap().to_string();

    let mut conn = TcpStream::connect(plain_gw.authority()).await.unwrap();
    let mut d = Decoder::new(1 << 20);
    let send = send_frame("tls00004", &tls_path, ours, "sneaking around TLS");
    conn.write_all(send.as_bytes()).await.unwrap();
    let resp = read_frame(&mut conn, &mut d).await;
    assert!(
        matches!(resp.start, StartLine::Response(481, _)),
        "{resp:?}"
    );
    let leaked = h
        .xmpp
        .barrier()
        .await
        .iter()
        .any(|e| body_of(e) == "sneaking around TLS");
    assert!(!leaked, "a frame over plain TCP reached the TLS session");
}
