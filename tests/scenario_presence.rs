//! Presence over the wire (RFC 8048, RFC 6665): the gateway's real SIP stack and XEP-0114
//! link against raw SIP peers and the fake XMPP server. The hostile-input corpus lives in
//! tests/corpus/presence/ (see its README files): every request there gets its status and
//! nothing reaches XMPP. Test names cite the checklist IDs.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use support::sip::{param, token, SipMsg};
use support::{opts, Harness, SOON};

fn corpus(dir: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus/presence")
        .join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sip" || x == "xml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "empty corpus {}", root.display());
    files
}

/// A corpus request: `# expect: NNN`, comment lines, `METHOD URI`, headers.
fn load_request(path: &Path) -> (u16, SipMsg) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut expect = None;
    let mut lines = Vec::new();
    for line in text.lines() {
        if let Some(c) = line.strip_prefix("# expect:") {
            expect = Some(c.trim().parse().unwrap());
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            lines.push(line);
        }
    }
    let mut headers: Vec<(String, String)> = lines[1..]
        .iter()
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.trim().to_string(), v.trim().to_string())
        })
        .collect();
    let method = lines[0].split(' ').next().unwrap().to_string();
    headers.push(("Call-ID".into(), format!("{}@corpus", token())));
    headers.push(("CSeq".into(), format!("1 {method}")));
    headers.push(("Max-Forwards".into(), "70".into()));
    let msg = SipMsg {
        start: format!("{} SIP/2.0", lines[0]),
        headers,
        body: Vec::new(),
    };
    (expect.expect("# expect: line"), msg)
}

#[tokio::test]
async fn pres_9_malformed_subscribe_and_notify_corpus_gets_its_status_and_nothing_reaches_xmpp() {
    let mut h = Harness::start(opts()).await;
    for path in corpus("subscribe") {
        let (code, req) = load_request(&path);
        let resp = h.refused_without_stanza(req, code).await;
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        match code {
            489 => assert_eq!(resp.header("allow-events"), Some("presence"), "{name}"),
            423 => assert_eq!(resp.header("min-expires"), Some("60"), "{name}"),
            406 => assert!(resp.header("accept").is_some(), "{name}"),
            _ => {}
        }
    }
    // Still serving.
    let options = support::sip::request(
        "OPTIONS",
        "sip:juliet@example.com",
        &format!("<sip:romeo@example.net>;tag={}", token()),
        "<sip:juliet@example.com>",
        &[],
        b"",
    );
    assert_eq!(h.sip_transact(options).await.code(), Some(200));
    h.stop().await;
}

/// X->S: Juliet subscribes to Romeo; the SIP peer (the harness UAS) answers 200. Returns the
/// SUBSCRIBE as received and where the gateway sent it from.
async fn juliet_subscribes(h: &mut Harness) -> (SipMsg, SocketAddr) {
    h.xmpp
        .send("<presence type='subscribe' from='juliet@example.com' to='romeo@sip.example.com'/>");
    let (sub, src) = h.uas.request(SOON).await;
    assert_eq!(sub.method(), Some("SUBSCRIBE"), "{}", sub.start);
    assert_eq!(sub.header("event"), Some("presence"));
    assert_eq!(sub.header("accept"), Some("application/pidf+xml"));
    assert_eq!(sub.header("expires"), Some("3600"));
    let contact = format!("<sip:romeo@{}>", h.uas.addr);
    let ok = sub.response(200, "OK", &[("Contact", &contact), ("Expires", "3600")]);
    h.uas.send(&ok, src).await;
    (sub, src)
}

/// A NOTIFY from the UAS in the dialog of `sub`.
fn notify(sub: &SipMsg, cseq: u32, state: &str, ctype: Option<&str>, body: &[u8]) -> SipMsg {
    let mut headers = vec![
        ("Max-Forwards".to_string(), "70".to_string()),
        (
            "From".into(),
            format!("{};tag=uas-tag-1", sub.header("to").unwrap()),
        ),
        ("To".into(), sub.header("from").unwrap().to_string()),
        ("Call-ID".into(), sub.header("call-id").unwrap().to_string()),
        ("CSeq".into(), format!("{cseq} NOTIFY")),
        ("Contact".into(), "<sip:romeo@127.0.0.1:9>".into()),
        ("Event".into(), "presence".into()),
        ("Subscription-State".into(), state.into()),
    ];
    if let Some(t) = ctype {
        headers.push(("Content-Type".into(), t.into()));
    }
    let target = support::sip::uri_of(sub.header("contact").unwrap());
    SipMsg {
        start: format!("NOTIFY {target} SIP/2.0"),
        headers,
        body: body.to_vec(),
    }
}

async fn send_notify(h: &Harness, req: SipMsg) -> SipMsg {
    let sent = h.uas.send_request(req, h.gw_sip).await;
    h.uas.final_response(&sent, SOON).await
}

#[tokio::test]
async fn pres_15_hostile_notify_bodies_get_their_status_and_forward_nothing() {
    let mut h = Harness::start(opts()).await;
    let (sub, _) = juliet_subscribes(&mut h).await;
    assert!(param(sub.header("from").unwrap(), "tag").is_some());
    let mut cseq = 1;
    let pidf = Some("application/pidf+xml");
    for path in corpus("notify") {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let code: u16 = name[..3].parse().unwrap();
        if code == 200 {
            continue;
        }
        let body = std::fs::read(&path).unwrap();
        let resp = send_notify(&h, notify(&sub, cseq, "active", pidf, &body)).await;
        cseq += 1;
        assert_eq!(resp.code(), Some(code), "{name}: {}", resp.start);
        let leaked = h.xmpp.barrier().await;
        assert!(
            leaked.is_empty(),
            "{name}: nothing may reach XMPP: {leaked:?}"
        );
    }
    // Over 64 KiB: ezk's TCP framing refuses the message by closing the connection (no room
    // for a 413); the gateway stays up and forwards nothing.
    let big = format!(
        "<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='pres:romeo@example.net'><tuple id='a'><status><basic>open</basic></status><note>{}</note></tuple></presence>",
        "x".repeat(70_000)
    );
    let mut req = notify(&sub, cseq, "active", pidf, big.as_bytes());
    cseq += 1;
    req.headers.retain(|(k, _)| k != "Content-Length");
    assert!(
        tcp_transact(&req, h.gw_sip).await.is_none(),
        "no response to a 70 KB message"
    );
    assert!(h.xmpp.barrier().await.is_empty());
    // Wrong type, bad state, no Event.
    let cases: Vec<(SipMsg, u16)> = vec![
        (
            notify(&sub, 0, "active", Some("text/plain"), b"online"),
            415,
        ),
        (notify(&sub, 0, "sleepy", None, b""), 400),
        (
            {
                let mut n = notify(&sub, 0, "active", None, b"");
                n.headers.retain(|(k, _)| k != "Event");
                n
            },
            489,
        ),
    ];
    for (mut req, code) in cases {
        for hd in req.headers.iter_mut().filter(|(k, _)| k == "CSeq") {
            hd.1 = format!("{cseq} NOTIFY");
        }
        cseq += 1;
        let resp = send_notify(&h, req).await;
        assert_eq!(resp.code(), Some(code), "{}", resp.start);
        assert!(h.xmpp.barrier().await.is_empty());
    }
    // Nothing was granted by any of that; the first good NOTIFY grants and reports.
    let good = corpus("notify")
        .into_iter()
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("200"))
        .unwrap();
    let resp = send_notify(
        &h,
        notify(
            &sub,
            cseq,
            "active;expires=3600",
            pidf,
            &std::fs::read(good).unwrap(),
        ),
    )
    .await;
    assert_eq!(resp.code(), Some(200), "{}", resp.start);
    let got = h.xmpp.barrier().await;
    let kinds: Vec<Option<&str>> = got.iter().map(|e| e.attr("type")).collect();
    assert_eq!(kinds, vec![Some("subscribed"), None], "{got:?}");
    let avail = &got[1];
    assert_eq!(avail.attr("from"), Some("romeo@sip.example.com/phone"));
    assert!(
        String::from(avail).contains(">away</show>"),
        "{}",
        String::from(avail)
    );
    h.stop().await;
}

/// Send over TCP; the final response, or `None` if the connection closed without one.
async fn tcp_transact(req: &SipMsg, to: SocketAddr) -> Option<SipMsg> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(to).await.unwrap();
    let local = s.local_addr().unwrap();
    let mut req = req.clone();
    req.headers.insert(
        0,
        (
            "Via".into(),
            format!("SIP/2.0/TCP {local};branch=z9hG4bK{}", token()),
        ),
    );
    s.write_all(&req.to_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    tokio::time::timeout(SOON, async {
        loop {
            if let Some(m) = SipMsg::take_from_stream(&mut buf) {
                let m = m.unwrap();
                if m.code().is_some_and(|c| c >= 200) {
                    return Some(m);
                }
                continue;
            }
            match s.read(&mut chunk).await {
                Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                _ => return None,
            }
        }
    })
    .await
    .expect("TCP response")
}

#[tokio::test]
async fn pres_9_10_13_sip_watcher_over_the_wire() {
    let mut h = Harness::start(opts()).await;
    let sub = support::sip::request(
        "SUBSCRIBE",
        "sip:juliet@example.com",
        &format!("<sip:romeo@example.net>;tag={}", token()),
        "<sip:juliet@example.com>",
        &[
            ("Event", "presence"),
            ("Expires", "600"),
            ("Contact", &format!("<sip:romeo@{}>", h.uas.addr)),
        ],
        b"",
    );
    let ok = h.sip_transact(sub.clone()).await;
    assert_eq!(ok.code(), Some(200), "{}", ok.start);
    assert_eq!(ok.header("expires"), Some("600"));
    let our_tag = param(ok.header("to").unwrap(), "tag").expect("To tag");
    // PRES-9: immediate pending NOTIFY to the Contact, `subscribe` to Juliet.
    let (n1, src) = h.uas.request(SOON).await;
    assert_eq!(n1.method(), Some("NOTIFY"));
    assert!(n1
        .header("subscription-state")
        .unwrap()
        .starts_with("pending"));
    assert_eq!(
        param(n1.header("from").unwrap(), "tag").as_deref(),
        Some(our_tag.as_str())
    );
    h.uas.send(&n1.response(200, "OK", &[]), src).await;
    let ask = h
        .xmpp
        .stanza("subscribe", SOON, |e| e.attr("type") == Some("subscribe"))
        .await;
    assert_eq!(ask.attr("from"), Some("romeo@sip.example.com"));
    assert_eq!(ask.attr("to"), Some("juliet@example.com"));
    // PRES-10: approval -> active NOTIFY; her presence -> PIDF.
    h.xmpp
        .send("<presence type='subscribed' from='juliet@example.com' to='romeo@sip.example.com'/>");
    let (n2, src) = h.uas.request(SOON).await;
    assert!(n2
        .header("subscription-state")
        .unwrap()
        .starts_with("active"));
    h.uas.send(&n2.response(200, "OK", &[]), src).await;
    h.xmpp.send("<presence from='juliet@example.com/balcony' to='romeo@sip.example.com'><show>xa</show><status>asleep</status></presence>");
    let (n3, src) = h.uas.request(SOON).await;
    h.uas.send(&n3.response(200, "OK", &[]), src).await;
    assert_eq!(n3.header("content-type"), Some("application/pidf+xml"));
    let body = n3.body_str();
    assert!(
        body.contains("<basic>open</basic>") && body.contains("asleep"),
        "{body}"
    );
    // PRES-13: Expires 0 -> closed + terminated;reason=timeout, `unavailable` (no unsubscribe).
    let mut bye = sub.clone();
    for hd in bye.headers.iter_mut() {
        match hd.0.as_str() {
            "To" => hd.1 = format!("<sip:juliet@example.com>;tag={our_tag}"),
            "Expires" => hd.1 = "0".into(),
            "CSeq" => hd.1 = "2 SUBSCRIBE".into(),
            _ => {}
        }
    }
    assert_eq!(h.sip_transact(bye).await.code(), Some(200));
    let (n4, src) = h.uas.request(SOON).await;
    h.uas.send(&n4.response(200, "OK", &[]), src).await;
    assert_eq!(
        n4.header("subscription-state"),
        Some("terminated;reason=timeout")
    );
    assert!(n4.body_str().contains("<basic>closed</basic>"));
    let gone = h
        .xmpp
        .stanza("unavailable", SOON, |e| {
            e.name() == "presence" && e.attr("type").is_some()
        })
        .await;
    assert_eq!(gone.attr("type"), Some("unavailable"));
    h.stop().await;
}

#[tokio::test]
async fn pres_14_restart_resumes_the_dialog_from_the_state_dir() {
    let state = support::fresh_state_dir();
    let mut o = opts();
    o.state_dir = Some(state.clone());
    let mut h = Harness::start(o).await;
    // Romeo's UA outlives both gateways: its Contact is the dialog's remote target.
    let romeo = support::sip::UdpPeer::bind().await;
    h.xmpp
        .send("<presence type='subscribe' from='juliet@example.com' to='romeo@sip.example.com'/>");
    let (sub, src) = h.uas.request(SOON).await;
    let contact = format!("<sip:romeo@{}>", romeo.addr);
    h.uas
        .send(
            &sub.response(200, "OK", &[("Contact", &contact), ("Expires", "3600")]),
            src,
        )
        .await;
    let good = std::fs::read(
        corpus("notify")
            .into_iter()
            .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("200"))
            .unwrap(),
    )
    .unwrap();
    let mut n = notify(
        &sub,
        1,
        "active;expires=3600",
        Some("application/pidf+xml"),
        &good,
    );
    for hd in n.headers.iter_mut().filter(|(k, _)| k == "Contact") {
        hd.1 = contact.clone();
    }
    let resp = send_notify(&h, n).await;
    assert_eq!(resp.code(), Some(200));
    h.xmpp
        .stanza("subscribed", SOON, |e| e.attr("type") == Some("subscribed"))
        .await;
    h.stop().await;
    assert!(state.join("stox.sqlite3").exists());

    // A second gateway on the same state directory refreshes the stored dialog at once.
    let mut o = opts();
    o.state_dir = Some(state.clone());
    let mut h2 = Harness::start(o).await;
    let (refresh, src) = romeo.request(SOON).await;
    assert_eq!(refresh.method(), Some("SUBSCRIBE"));
    assert_eq!(
        refresh.header("call-id"),
        sub.header("call-id"),
        "same dialog"
    );
    assert_eq!(
        param(refresh.header("to").unwrap(), "tag").as_deref(),
        Some("uas-tag-1"),
        "in-dialog: the peer's tag"
    );
    let cseq = |m: &SipMsg| -> u32 {
        m.header("cseq")
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(cseq(&refresh) > cseq(&sub), "CSeq continues");
    romeo
        .send(&refresh.response(200, "OK", &[("Expires", "3600")]), src)
        .await;
    let prompts: Vec<_> = h2
        .xmpp
        .barrier()
        .await
        .into_iter()
        .filter(|e| e.attr("type") == Some("subscribed") || e.attr("type") == Some("unsubscribed"))
        .collect();
    assert!(
        prompts.is_empty(),
        "no subscription stanza after restart: {prompts:?}"
    );
    h2.stop().await;
}

#[tokio::test]
async fn pres_15_24_odd_presence_stanzas_get_their_error_or_nothing() {
    let mut h = Harness::start(opts()).await;
    for path in corpus("stanzas") {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let xml = std::fs::read_to_string(&path).unwrap();
        h.xmpp.send(xml.trim());
        let back = h.xmpp.barrier().await;
        let expected = ["bad-request", "jid-malformed", "forbidden"]
            .into_iter()
            .find(|c| name.starts_with(c));
        match expected {
            Some(cond) => {
                assert_eq!(back.len(), 1, "{name}: {back:?}");
                let e = &back[0];
                assert_eq!(e.name(), "presence", "{name}");
                assert_eq!(e.attr("type"), Some("error"), "{name}");
                assert!(
                    e.attr("from")
                        .is_some_and(|f| f.ends_with("sip.example.com")),
                    "{name}: from {:?}",
                    e.attr("from")
                );
                let (_, got, _, _) = support::xml::stanza_error(e);
                assert_eq!(got, cond, "{name}: {}", String::from(e));
            }
            None => {
                assert!(name.starts_with("ignored"), "{name}: unknown expectation");
                assert!(back.is_empty(), "{name}: nothing comes back: {back:?}");
            }
        }
        // No SIP request for any of them.
        let sip = h.uas.recv(std::time::Duration::from_millis(50)).await;
        assert!(sip.is_none(), "{name}: a SIP request went out: {sip:?}");
    }
    h.stop().await;
}

#[tokio::test]
async fn comp_6_subscribed_decided_while_the_link_is_down_arrives_after_reconnect() {
    let mut h = Harness::start(opts()).await;
    let (sub, _) = juliet_subscribes(&mut h).await;
    h.xmpp.stop().await;
    h.logs().wait_for("component link lost", 1, SOON).await;
    // Romeo's UA grants while the XMPP link is down: the NOTIFY is still answered.
    let good = std::fs::read(
        corpus("notify")
            .into_iter()
            .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("200"))
            .unwrap(),
    )
    .unwrap();
    let resp = send_notify(
        &h,
        notify(
            &sub,
            1,
            "active;expires=3600",
            Some("application/pidf+xml"),
            &good,
        ),
    )
    .await;
    assert_eq!(resp.code(), Some(200), "{}", resp.start);
    h.xmpp.restart().await;
    h.xmpp
        .wait_for("a new handshake", SOON * 2, |e| {
            matches!(e, support::xmpp::Ev::HandshakeOk { .. })
        })
        .await;
    // The link hands the router "up" before any stanza of the new stream, so everything sent
    // on reconnect is ahead of the barrier's pong.
    let back = h.xmpp.barrier().await;
    // The decision was held, the availability re-announced (COMP-5).
    let granted = back
        .iter()
        .find(|e| e.attr("type") == Some("subscribed"))
        .unwrap_or_else(|| panic!("subscribed after reconnect: {back:?}"));
    assert_eq!(granted.attr("to"), Some("juliet@example.com"));
    let avail = back
        .iter()
        .find(|e| e.name() == "presence" && e.attr("type").is_none())
        .unwrap_or_else(|| panic!("available presence after reconnect: {back:?}"));
    assert_eq!(avail.attr("from"), Some("romeo@sip.example.com/phone"));
    h.stop().await;
}
