//! The bad-input corpora of the page-mode paths (hardening): every malformed, truncated,
//! oversized, wrong-charset, deeply nested or entity-expanding SIP MESSAGE in
//! tests/corpus/message/ gets exactly its status, every refused stanza in
//! tests/corpus/stanzas/ gets exactly its error condition (or none), and nothing refused is
//! forwarded. Presence and MSRP have corpora of their own (tests/corpus/presence, msrp).

mod support;

use std::path::{Path, PathBuf};
use support::check::*;
use support::sip::{token, SipMsg};
use support::xml::stanza_error;
use support::{opts, Harness, SOON};

fn corpus(dir: &str, ext: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "corpus {} too small", root.display());
    files
}

fn name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

/// The file's bytes after its comment line, with the placeholders filled in.
fn raw_request(p: &Path, via: &str) -> (Vec<u8>, String) {
    let bytes = std::fs::read(p).unwrap();
    let start = bytes.windows(2).position(|w| w == b"\r\n").unwrap() + 2;
    let bytes = &bytes[start..];
    let split = bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let (head, body) = bytes.split_at(split);
    let branch = format!("z9hG4bK{}", token());
    let head = String::from_utf8(head.to_vec())
        .unwrap()
        .replace("{via}", &format!("{via};branch={branch}"))
        .replace("{call_id}", &format!("{}@corpus", token()))
        .replace("{len}", &body.len().to_string());
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    (out, branch)
}

/// The final response with `branch`, or `None` after a few seconds (one second for a request
/// expected to go unanswered would be enough, but a slow CI must not turn an answer into none).
async fn final_for(h: &Harness, branch: &str) -> Option<SipMsg> {
    let deadline = tokio::time::Instant::now() + SOON;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let (m, _) = h.uac.recv(left).await?;
        if m.code().is_some_and(|c| c >= 200) && m.branch().as_deref() == Some(branch) {
            return Some(m);
        }
    }
}

#[tokio::test]
async fn malformed_sip_messages_get_their_status_and_only_the_good_one_reaches_xmpp() {
    let mut h = Harness::start(opts()).await;
    let via = format!("SIP/2.0/UDP {}", h.uac.addr);
    let mut wrong = Vec::new();
    for p in corpus("message", "sip") {
        let want: Option<u16> = name(&p)[..3].parse().ok();
        let (bytes, branch) = raw_request(&p, &via);
        h.uac.sock.send_to(&bytes, h.gw_sip).await.unwrap();
        let answer = final_for(&h, &branch).await;
        let Some(want) = want else {
            if let Some(a) = answer {
                wrong.push(format!(
                    "{}: answered {}, the file says none",
                    name(&p),
                    a.start
                ));
            }
            continue;
        };
        let Some(resp) = answer else {
            wrong.push(format!("{}: no answer", name(&p)));
            continue;
        };
        if resp.code() != Some(want) {
            wrong.push(format!("{}: got {}", name(&p), resp.start));
        }
        if want == 415 && resp.header("accept").is_none() {
            wrong.push(format!("{}: 415 without Accept", name(&p)));
        }
    }
    assert!(wrong.is_empty(), "wrong answers:\n{}", wrong.join("\n"));
    let reached: Vec<String> = h
        .xmpp
        .barrier()
        .await
        .iter()
        .filter(|e| e.name() == "message")
        .map(body)
        .collect();
    assert_eq!(
        reached,
        vec!["still fine".to_string()],
        "only the 200- file is delivered"
    );
    h.stop().await;
}

#[tokio::test]
async fn refused_stanzas_get_their_condition_and_none_becomes_sip() {
    let mut h = Harness::start(opts()).await;
    let mut wrong = Vec::new();
    for (n, p) in corpus("stanzas", "xml").into_iter().enumerate() {
        let file = name(&p);
        let conditions = [
            "bad-request",
            "feature-not-implemented",
            "not-allowed",
            "not-acceptable",
            "policy-violation",
            "jid-malformed",
            "service-unavailable",
            "none",
        ];
        let want = conditions
            .iter()
            .find(|c| file.starts_with(&format!("{c}-")))
            .unwrap_or_else(|| panic!("{file}: name must start with a known condition"));
        let text = std::fs::read_to_string(&p).unwrap();
        let xml = text
            .lines()
            .filter(|l| !l.starts_with("<!--"))
            .collect::<String>();
        let id = format!("bad{n}");
        let xml = xml.replacen("id='x'", &format!("id='{id}'"), 1);
        h.xmpp.send(&xml);
        if *want == "none" {
            let got = h.xmpp.barrier().await;
            if got.iter().any(|e| e.attr("id") == Some(&id)) {
                wrong.push(format!("{file}: answered, expected nothing"));
            }
            continue;
        }
        let e = h.xmpp.stanza_with_id(&id, SOON).await;
        let (_, c, _, _) = stanza_error(&e);
        if e.attr("type") != Some("error") || c != *want {
            wrong.push(format!("{file}: got {}", s(&e)));
        }
    }
    assert!(wrong.is_empty(), "wrong answers:\n{}", wrong.join("\n"));
    // None of them became a SIP request: the control message is the first the UAS sees.
    h.xmpp.send(&juliet_msg("ctl", ROMEO, "control"));
    assert_eq!(h.uas_answer(200, "OK", &[]).await.body_str(), "control");
    h.stop().await;
}
