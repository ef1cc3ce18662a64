//! SIP over TLS (GEN-3; RFC 3261 §26.2, RFC 5630): a MESSAGE over TLS into the gateway, XMPP ->
//! SIP out over TLS to a TLS UAS with the server certificate verified, the listener's
//! certificate swapped by a reload while an open connection keeps going, and GEN-4 unchanged
//! on a TLS connection. Certificates are self-signed, made at test time with rcgen.

mod support;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use stox::sip::tls::{fingerprint, provider};
use support::check::*;
use support::sip::{request, token, SipMsg};
use support::{romeo_message, Harness, Opts, Route, SOON};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

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

    fn fingerprint(&self) -> String {
        fingerprint(&self.der())
    }

    /// Put `other`'s files where this certificate's are (a renewal at the same path).
    fn replace_with(&self, other: &Cert) {
        std::fs::copy(&other.crt, &self.crt).unwrap();
        std::fs::copy(&other.key, &self.key).unwrap();
    }
}

fn tmp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("stox-scenario-tls-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn tls_section(gw: &Cert, ca: Option<&Cert>) -> String {
    let mut s = format!(
        "[sip.tls]\ncert_file = {:?}\nkey_file = {:?}\n",
        gw.crt.display().to_string(),
        gw.key.display().to_string()
    );
    if let Some(ca) = ca {
        s.push_str(&format!("ca_file = {:?}\n", ca.crt.display().to_string()));
    }
    s
}

/// A TLS client trusting only `trust`; returns the stream and the fingerprint of the
/// certificate the server presented.
async fn tls_connect(
    to: SocketAddr,
    trust: &Cert,
) -> (tokio_rustls::client::TlsStream<TcpStream>, String) {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(trust.der()).unwrap();
    let cfg = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(to).await.unwrap();
    let name = ServerName::IpAddress(to.ip().into());
    let s = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await
        .expect("TLS handshake with the gateway");
    let fp = fingerprint(&s.get_ref().1.peer_certificates().unwrap()[0]);
    (s, fp)
}

/// Send `req` on a TLS stream (with our Via) and return its final response.
async fn transact<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S, mut req: SipMsg) -> SipMsg {
    let via = format!("SIP/2.0/TLS 127.0.0.1:1;branch=z9hG4bK{}", token());
    req.headers.insert(0, ("Via".into(), via));
    s.write_all(&req.to_bytes()).await.unwrap();
    tokio::time::timeout(SOON, async {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            while let Some(m) = SipMsg::take_from_stream(&mut buf) {
                let m = m.expect("parsable SIP over TLS");
                if m.code().is_some_and(|c| c >= 200) {
                    return m;
                }
            }
            let n = s.read(&mut chunk).await.expect("tls read");
            assert!(n > 0, "the gateway closed the TLS connection");
            buf.extend_from_slice(&chunk[..n]);
        }
    })
    .await
    .expect("a final response over TLS")
}

/// A SIP UAS over TLS with its own certificate.
struct TlsUas {
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    addr: SocketAddr,
}

impl TlsUas {
    async fn bind(cert: &Cert) -> TlsUas {
        let key = PrivateKeyDer::from_pem_file(&cert.key).unwrap();
        let cfg = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.der()], key)
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        TlsUas {
            listener,
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(cfg)),
            addr,
        }
    }

    /// Accept one connection, complete the handshake (`Err` if the client aborted it) and
    /// answer the first request with `code`.
    async fn answer(&self, code: u16) -> Result<SipMsg, std::io::Error> {
        let (tcp, _) = self.listener.accept().await?;
        let mut s = self.acceptor.accept(tcp).await?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        let req = loop {
            if let Some(m) = SipMsg::take_from_stream(&mut buf) {
                break m.expect("parsable SIP over TLS");
            }
            let n = s.read(&mut chunk).await?;
            assert!(n > 0, "the gateway closed before a full request");
            buf.extend_from_slice(&chunk[..n]);
        };
        s.write_all(&req.response(code, "OK", &[]).to_bytes())
            .await?;
        Ok(req)
    }
}

fn tls_opts(gw: &Cert, ca: Option<&Cert>, route: Route) -> Opts {
    Opts {
        extra_listen: vec!["tls:127.0.0.1:0".into()],
        extra_config: tls_section(gw, ca),
        route,
        ..Opts::default()
    }
}

fn tls_addr(h: &Harness) -> SocketAddr {
    h.gw.as_ref().unwrap().tls_addrs[0]
}

#[tokio::test]
async fn gen_3_sip_message_over_tls_reaches_xmpp_and_gets_200() {
    let dir = tmp_dir("in");
    let gw = Cert::new(&dir, "gw");
    let mut h = Harness::start(tls_opts(&gw, None, Route::Uas)).await;
    let (mut conn, fp) = tls_connect(tls_addr(&h), &gw).await;
    assert_eq!(fp, gw.fingerprint(), "the configured certificate is served");
    let resp = transact(
        &mut conn,
        romeo_message(&[("Content-Type", "text/plain")], b"over TLS"),
    )
    .await;
    assert_eq!(resp.code(), Some(200), "{}", resp.start);
    assert!(
        resp.header("via")
            .is_some_and(|v| v.starts_with("SIP/2.0/TLS")),
        "the response keeps our TLS Via"
    );
    let m = h.next_message().await;
    assert_eq!(body(&m), "over TLS", "{}", s(&m));
    assert_eq!(m.attr("to"), Some("juliet@example.com"));
}

#[tokio::test]
async fn gen_4_sips_request_uri_over_tls_is_still_refused_with_403() {
    let dir = tmp_dir("gen4");
    let gw = Cert::new(&dir, "gw");
    let mut h = Harness::start(tls_opts(&gw, None, Route::Uas)).await;
    let (mut s, _) = tls_connect(tls_addr(&h), &gw).await;
    let req = request(
        "MESSAGE",
        "sips:juliet@example.com",
        &format!("<sips:romeo@example.net>;tag={}", token()),
        "<sips:juliet@example.com>",
        &[("Content-Type", "text/plain")],
        b"secret",
    );
    let resp = transact(&mut s, req).await;
    assert_eq!(resp.code(), Some(403), "{}", resp.start);
    let leaked: Vec<String> = h.xmpp.barrier().await.iter().map(String::from).collect();
    assert!(leaked.is_empty(), "nothing may reach XMPP: {leaked:?}");
}

#[tokio::test]
async fn xmpp_message_goes_out_over_tls_to_a_verified_uas() {
    let dir = tmp_dir("out");
    let gw = Cert::new(&dir, "gw");
    let peer = Cert::new(&dir, "peer");
    let uas = TlsUas::bind(&peer).await;
    let route = Route::Uri(format!("sip:{};transport=tls", uas.addr));
    let mut h = Harness::start(tls_opts(&gw, Some(&peer), route)).await;
    h.xmpp.send(&juliet_msg("t1", ROMEO, "to a TLS phone"));
    let req = uas
        .answer(200)
        .await
        .expect("the gateway completes the handshake");
    assert_eq!(req.method(), Some("MESSAGE"));
    assert_eq!(req.body, b"to a TLS phone");
    assert!(
        req.header("via")
            .is_some_and(|v| v.starts_with("SIP/2.0/TLS")),
        "Via names TLS: {:?}",
        req.header("via")
    );
    let leaked: Vec<String> = h.xmpp.barrier().await.iter().map(String::from).collect();
    assert!(
        leaked.is_empty(),
        "no error for a delivered message: {leaked:?}"
    );
}

#[tokio::test]
async fn a_sips_route_goes_over_tls_without_a_transport_parameter() {
    let dir = tmp_dir("sips");
    let gw = Cert::new(&dir, "gw");
    let peer = Cert::new(&dir, "peer");
    let uas = TlsUas::bind(&peer).await;
    let route = Route::Uri(format!("sips:{}", uas.addr));
    let h = Harness::start(tls_opts(&gw, Some(&peer), route)).await;
    h.xmpp.send(&juliet_msg("t2", ROMEO, "sips hop"));
    let req = uas.answer(200).await.expect("TLS toward a sips: hop");
    assert_eq!(req.body, b"sips hop");
}

#[tokio::test]
async fn an_untrusted_server_certificate_fails_the_message() {
    let dir = tmp_dir("untrusted");
    let gw = Cert::new(&dir, "gw");
    let peer = Cert::new(&dir, "peer");
    let uas = TlsUas::bind(&peer).await;
    let route = Route::Uri(format!("sip:{};transport=tls", uas.addr));
    // No ca_file: the peer's self-signed certificate is not in the system store.
    let mut h = Harness::start(tls_opts(&gw, None, route)).await;
    h.xmpp.send(&juliet_msg("t3", ROMEO, "must not leave"));
    let handshake = uas.answer(200).await;
    assert!(handshake.is_err(), "the gateway must abort the handshake");
    let e = h.xmpp.stanza_with_id("t3", SOON).await;
    assert_romeo_error(&e, "t3", "cancel", "remote-server-not-found");
}

#[tokio::test]
async fn reload_swaps_the_certificate_for_new_handshakes_only() {
    let dir = tmp_dir("reload");
    let gw = Cert::new(&dir, "gw");
    let renewed = Cert::new(&dir, "renewed");
    let mut h = Harness::start(tls_opts(&gw, None, Route::Uas)).await;
    let addr = tls_addr(&h);
    let (mut old_conn, fp1) = tls_connect(addr, &gw).await;
    assert_eq!(fp1, gw.fingerprint());

    // A broken renewal (new certificate, old key) is refused; the old certificate stays.
    let original = Cert {
        crt: dir.join("original.crt"),
        key: dir.join("original.key"),
    };
    original.replace_with(&gw);
    std::fs::copy(&renewed.crt, &gw.crt).unwrap();
    let err = h.gw.as_ref().unwrap().reload().await.unwrap_err();
    assert!(err.contains("does not match"), "{err}");
    let (_, fp) = tls_connect(addr, &original).await;
    assert_eq!(fp, fp1, "a refused reload keeps the running certificate");

    // The whole renewal at the same path.
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
    let (mut new_conn, fp2) = tls_connect(addr, &renewed).await;
    assert_eq!(
        fp2,
        renewed.fingerprint(),
        "a new handshake sees the new certificate"
    );

    // Both connections carry requests: the open one was not cut.
    for (conn, body) in [(&mut old_conn, "old conn"), (&mut new_conn, "new conn")] {
        let resp = transact(
            conn,
            romeo_message(&[("Content-Type", "text/plain")], body.as_bytes()),
        )
        .await;
        assert_eq!(resp.code(), Some(200), "{body}: {}", resp.start);
        let m = h.next_message().await;
        assert_eq!(support::check::body(&m), body);
    }
}
