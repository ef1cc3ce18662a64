//! Scenarios of MSRP chat sessions (RFC 7573, CHECKLIST part 4) against the in-process
//! gateway: a fake XEP-0114 server, raw SIP peers and a raw MSRP peer built here from bytes
//! (frames written by hand, read with the gateway's decoder only to split the stream). The
//! real-peer proof is integration/test_chat.py; these run in a second under `cargo test`.

mod support;

use stox::chat::msrp::{Decoder, Frame};
use support::sip::{request, token, SipMsg};
use support::{opts, Harness, Opts, COMPONENT, SOON};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_xmpp::minidom::Element;

fn session_opts() -> Opts {
    Opts {
        chat_mode: "session",
        ..opts()
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

/// CHAT-3, CHAT-4: the first chat message sends an INVITE with an MSRP offer; a 488 sends
/// every message queued meanwhile as MESSAGE, once each and in order, with no error stanza;
/// the refusal is remembered (the next message is a MESSAGE straight away).
#[tokio::test]
async fn chat_3_4_refused_session_falls_back_to_message_in_order() {
    let mut h = Harness::start(session_opts()).await;
    for i in 1..=3 {
        h.xmpp.send(&chat(&format!("q{i}"), &format!("queued {i}")));
    }
    let (invite, src) = h.uas.request(SOON).await;
    assert_eq!(invite.method(), Some("INVITE"), "{}", invite.start);
    let sdp = invite.body_str().to_string();
    assert!(sdp.contains("m=message "), "{sdp}");
    assert!(sdp.contains(" TCP/MSRP *"), "{sdp}");
    assert!(sdp.contains("a=path:msrp://127.0.0.1:"), "{sdp}");
    assert!(
        invite
            .header("contact")
            .is_some_and(|c| c.contains("gr=balcony")),
        "ADDR-7"
    );
    h.uas
        .send(&invite.response(488, "Not Acceptable Here", &[]), src)
        .await;
    // The 488's ACK may arrive among them; collect the MESSAGEs.
    let mut bodies = Vec::new();
    while bodies.len() < 3 {
        let req = h.uas_answer(200, "OK", &[]).await;
        if req.method() == Some("MESSAGE") {
            bodies.push(req.body_str().to_string());
        }
    }
    assert_eq!(bodies, ["queued 1", "queued 2", "queued 3"]);
    h.xmpp.send(&chat("q4", "after"));
    loop {
        let req = h.uas_answer(200, "OK", &[]).await;
        match req.method() {
            Some("MESSAGE") => {
                assert_eq!(req.body_str(), "after");
                break;
            }
            Some("ACK") => continue,
            other => panic!("expected MESSAGE, got {other:?}: a second INVITE?"),
        }
    }
    assert_no_error_stanza(&mut h).await;
}

/// A SIP failure other than "no MSRP here" answers each queued message with its RFC 7247
/// error (Table E2), nothing is sent as MESSAGE.
#[tokio::test]
async fn chat_4_other_invite_failure_is_an_error_per_message() {
    let mut h = Harness::start(session_opts()).await;
    h.xmpp.send(&chat("e1", "one"));
    h.xmpp.send(&chat("e2", "two"));
    let (invite, src) = h.uas.request(SOON).await;
    h.uas
        .send(&invite.response(404, "Not Found", &[]), src)
        .await;
    for id in ["e1", "e2"] {
        let err = h.xmpp.stanza_with_id(id, SOON).await;
        assert_eq!(err.attr("type"), Some("error"), "{}", String::from(&err));
        assert!(
            String::from(&err).contains("item-not-found"),
            "{}",
            String::from(&err)
        );
    }
}

/// No error stanza reached the XMPP server up to now (a ping barrier proves it).
async fn assert_no_error_stanza(h: &mut Harness) {
    let errors: Vec<String> = h
        .xmpp
        .barrier()
        .await
        .iter()
        .filter(|e| e.attr("type") == Some("error"))
        .map(String::from)
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
}

async fn read_frame(conn: &mut TcpStream, d: &mut Decoder) -> Frame {
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

fn attr_line<'a>(sdp: &'a str, name: &str) -> Option<&'a str> {
    sdp.lines()
        .find_map(|l| l.strip_prefix(&format!("a={name}:")))
        .map(str::trim)
}

/// CHAT-8, CHAT-7, CHAT-6, CHAT-11: an INVITE with an MSRP offer is answered for the XMPP
/// user; a SEND becomes a chat message with thread = Call-ID and id = transaction id; her
/// reply goes back as a SEND in the same session; BYE becomes <gone/>.
#[tokio::test]
async fn chat_6_7_8_11_sip_user_opens_a_session() {
    let mut h = Harness::start(session_opts()).await;
    let ours = "msrp://127.0.0.1:9/sess0001;tcp";
    let sdp = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=message 9 TCP/MSRP *\r\na=accept-types:text/plain\r\na=path:{ours}\r\n"
    );
    let from = format!("<sip:romeo@example.net>;tag={}", token());
    let contact = format!("<sip:romeo@{}>", h.uac.addr);
    let inv = request(
        "INVITE",
        "sip:juliet@example.com",
        &from,
        "<sip:juliet@example.com>",
        &[
            ("Contact", contact.as_str()),
            ("Content-Type", "application/sdp"),
        ],
        sdp.as_bytes(),
    );
    let sent = h.sip_send(inv).await;
    let accepted = h.sip_final(&sent).await;
    assert_eq!(accepted.code(), Some(200), "{}", accepted.start);
    let answer = accepted.body_str().to_string();
    let path = attr_line(&answer, "path").expect("a=path in the answer");
    assert!(
        attr_line(&answer, "max-size").is_some(),
        "CHAT-21: {answer}"
    );
    let call_id = sent.header("call-id").unwrap().to_string();
    let ack = SipMsg {
        start: format!("ACK {} SIP/2.0", gw_contact(&accepted)),
        headers: vec![
            ("Max-Forwards".into(), "70".into()),
            ("From".into(), sent.header("from").unwrap().into()),
            ("To".into(), accepted.header("to").unwrap().into()),
            ("Call-ID".into(), call_id.clone()),
            ("CSeq".into(), "1 ACK".into()),
        ],
        body: Vec::new(),
    };
    h.sip_send(ack).await;

    // We offered without a=setup: we are active (RFC 4975 §5.4) and send first.
    let gw = stox::chat::msrp::MsrpUri::parse(path).unwrap();
    let mut conn = TcpStream::connect(gw.authority()).await.unwrap();
    let mut d = Decoder::new(1 << 20);
    let send = format!(
        "MSRP tx000001 SEND\r\nTo-Path: {path}\r\nFrom-Path: {ours}\r\nMessage-ID: m0000001\r\n\
         Byte-Range: 1-15/15\r\nContent-Type: text/plain\r\n\r\nNeither, fair s\r\n-------tx000001$\r\n"
    );
    conn.write_all(send.as_bytes()).await.unwrap();
    let resp = read_frame(&mut conn, &mut d).await;
    assert_eq!(resp.tid, "tx000001");
    assert!(
        matches!(resp.start, stox::chat::msrp::StartLine::Response(200, _)),
        "{resp:?}"
    );
    assert_eq!(
        resp.header("To-Path"),
        Some(ours),
        "§7.2: to the previous hop"
    );
    let m = h.next_message().await;
    assert_eq!(body_of(&m), "Neither, fair s");
    assert_eq!(
        m.attr("id"),
        Some("tx000001"),
        "CHAT-7: id = transaction id"
    );
    assert_eq!(m.attr("type"), Some("chat"));
    assert_eq!(
        m.attr("to"),
        Some("juliet@example.com"),
        "unbound: the bare JID"
    );
    let thread = m
        .get_child("thread", "jabber:component:accept")
        .map(|t| t.text());
    assert_eq!(
        thread.as_deref(),
        Some(call_id.as_str()),
        "CHAT-7: thread = Call-ID"
    );

    // Her reply, from a resource, goes into this session (CHAT-10).
    h.xmpp.send(&chat("r1", "What man art thou?"));
    let f = read_frame(&mut conn, &mut d).await;
    assert_eq!(f.method(), Some("SEND"));
    assert_eq!(f.header("To-Path"), Some(ours));
    assert_eq!(f.body.as_deref(), Some(&b"What man art thou?"[..]));
    assert_eq!(f.header("Byte-Range"), Some("1-18/18"), "CHAT-6: octets");
    // Answer it so no transaction is left open.
    let ok = format!(
        "MSRP {} 200 OK\r\nTo-Path: {path}\r\nFrom-Path: {ours}\r\n-------{}$\r\n",
        f.tid, f.tid
    );
    conn.write_all(ok.as_bytes()).await.unwrap();

    // BYE from SIP -> 200 and <gone/> (CHAT-11).
    let bye = SipMsg {
        start: format!("BYE {} SIP/2.0", gw_contact(&accepted)),
        headers: vec![
            ("Max-Forwards".into(), "70".into()),
            ("From".into(), sent.header("from").unwrap().into()),
            ("To".into(), accepted.header("to").unwrap().into()),
            ("Call-ID".into(), call_id.clone()),
            ("CSeq".into(), "2 BYE".into()),
        ],
        body: Vec::new(),
    };
    let bye_ok = h.sip_transact(bye).await;
    assert_eq!(bye_ok.code(), Some(200), "{}", bye_ok.start);
    let gone = h
        .xmpp
        .stanza("<gone/> after BYE", SOON, |e| {
            e.name() == "message" && e.has_child("gone", "http://jabber.org/protocol/chatstates")
        })
        .await;
    assert_eq!(gone.attr("from"), Some("romeo@sip.example.com"));
}

/// The Request-URI of in-dialog requests: the Contact of the gateway's 2xx.
fn gw_contact(resp: &SipMsg) -> String {
    support::sip::uri_of(resp.header("contact").expect("Contact in the 2xx"))
}

/// CHAT-13, CHAT-16 in page mode: an isComposing MESSAGE is a chat state, never text, and
/// an active state whose refresh lapses becomes `<active/>`.
#[tokio::test]
async fn chat_13_16_page_mode_iscomposing_and_its_lapse() {
    let mut h = Harness::start(opts()).await;
    let doc = "<?xml version='1.0' encoding='UTF-8'?><isComposing \
               xmlns='urn:ietf:params:xml:ns:im-iscomposing'><state>active</state>\
               <refresh>1</refresh></isComposing>";
    let req = support::romeo_message(
        &[("Content-Type", "application/im-iscomposing+xml")],
        doc.as_bytes(),
    );
    let resp = h.sip_transact(req).await;
    assert_eq!(resp.code(), Some(200), "{}", resp.start);
    let cs = "http://jabber.org/protocol/chatstates";
    let composing = h
        .xmpp
        .stanza("<composing/>", SOON, |e| e.has_child("composing", cs))
        .await;
    assert!(
        composing
            .get_child("body", "jabber:component:accept")
            .is_none(),
        "a chat state is never text"
    );
    let t0 = std::time::Instant::now();
    h.xmpp
        .stanza("<active/> once the refresh lapsed", SOON, |e| {
            e.has_child("active", cs)
        })
        .await;
    assert!(
        t0.elapsed() >= std::time::Duration::from_millis(800),
        "too early"
    );
}

/// CHAT-5, RFC 4975 §7.1.2: a 200 for the gateway's SEND that arrived just before the peer
/// closed the connection counts. The session ends with BYE and the message is not offered
/// again in a new session (only a message without its 200 is). The gateway reads the 200
/// and the close together, so the rounds repeat the race.
#[tokio::test]
async fn chat_5_a_200_just_before_the_close_is_not_sent_again() {
    let mut h = Harness::start(session_opts()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    for round in 0..8 {
        let ours = format!("msrp://127.0.0.1:{port}/closer{round};tcp");
        let text = format!("round {round}");
        h.xmpp.send(&chat(&format!("c{round}"), &text));
        let (invite, src) = h.uas.request(SOON).await;
        assert_eq!(
            invite.method(),
            Some("INVITE"),
            "round {round}: {}",
            invite.start
        );
        let mut ok = invite.response(
            200,
            "OK",
            &[
                ("Contact", &format!("<sip:romeo@{}>", h.uas.addr)),
                ("Content-Type", "application/sdp"),
            ],
        );
        ok.body = format!(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=message {port} TCP/MSRP *\r\na=accept-types:text/plain\r\na=path:{ours}\r\n"
        )
        .into_bytes();
        h.uas.send(&ok, src).await;
        let (mut conn, _) = tokio::time::timeout(SOON, listener.accept())
            .await
            .expect("the gateway connects to our path")
            .unwrap();
        let mut d = Decoder::new(1 << 20);
        loop {
            let f = read_frame(&mut conn, &mut d).await;
            assert_eq!(f.method(), Some("SEND"), "{f:?}");
            let ok = format!(
                "MSRP {} 200 OK\r\nTo-Path: {}\r\nFrom-Path: {ours}\r\n-------{}$\r\n",
                f.tid,
                f.header("From-Path").unwrap(),
                f.tid
            );
            conn.write_all(ok.as_bytes()).await.unwrap();
            if f.body.as_deref() == Some(text.as_bytes()) {
                break;
            }
        }
        drop(conn); // the 200 and the close reach the gateway together
        let mut got_bye = false;
        let deadline = tokio::time::Instant::now() + SOON;
        while let Some((m, src)) = h
            .uas
            .recv(deadline.saturating_duration_since(tokio::time::Instant::now()))
            .await
        {
            match m.method() {
                Some("BYE") => {
                    h.uas.send(&m.response(200, "OK", &[]), src).await;
                    got_bye = true;
                    break;
                }
                Some("ACK") => {}
                other => panic!("round {round}: {other:?} before the BYE: {}", m.start),
            }
        }
        assert!(
            got_bye,
            "round {round}: a lost connection ends the session with BYE"
        );
        if let Some((m, _)) = h.uas.recv(std::time::Duration::from_millis(300)).await {
            panic!(
                "round {round}: the acknowledged message went out again: {}",
                m.start
            );
        }
    }
    assert_no_error_stanza(&mut h).await;
}
