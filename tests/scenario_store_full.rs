//! The state directory's filesystem fills up under a running gateway (hardening, "store file
//! unwritable or full"): the failed write is logged with a clear error and retried, presence
//! keeps working from memory meanwhile, and once space is back the state is written, so a
//! restart finds it. The filesystem is a real 1 MiB tmpfs (the test mounts it: it needs root,
//! as CI runs).

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;
use stox::store::{Filter, SqliteStore, Store};
use support::sip::{request, token};
use support::{opts, Harness, Opts, SOON};

struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir =
            std::env::temp_dir().join(format!("stox-full-{}-{}", std::process::id(), token()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .output()
            .expect("run mount(8)");
        assert!(
            out.status.success(),
            "this test mounts a small tmpfs and needs root (CI runs as root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(dir)
    }

    /// Write a filler file until the filesystem is full.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let p = self.0.join("filler");
        let mut f = std::fs::File::create(&p).unwrap();
        let block = vec![0u8; 4096];
        while f.write_all(&block).and_then(|_| f.sync_all()).is_ok() {}
        p
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn dialogs_in(dir: &Path) -> usize {
    let store = SqliteStore::open(dir).await.expect("store opens");
    let n = store.list_dialogs(&Filter::all()).await.unwrap().len();
    store.close().await;
    n
}

#[tokio::test]
async fn full_state_filesystem_degrades_then_recovers_without_losing_state() {
    let fs = Tmpfs::mount("1m");
    let state = fs.0.join("state");
    let mut h = Harness::start(Opts {
        state_dir: Some(state.clone()),
        ..opts()
    })
    .await;
    let filler = fs.fill();

    // A SIP user subscribes to juliet: the dialog and the pending authorization must be stored.
    let sub = request(
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
    let ok = h.sip_transact(sub).await;
    assert_eq!(
        ok.code(),
        Some(200),
        "presence works with the disk full: {}",
        ok.start
    );
    let (n1, src) = h.uas.request(SOON).await;
    assert_eq!(n1.method(), Some("NOTIFY"));
    h.uas.send(&n1.response(200, "OK", &[]), src).await;
    let ask = h
        .xmpp
        .stanza("subscribe", SOON, |e| e.attr("type") == Some("subscribe"))
        .await;
    assert_eq!(ask.attr("to"), Some("juliet@example.com"));
    h.logs()
        .wait_for("store write failed; retrying", 1, SOON)
        .await;
    let log = h.logs().text();
    assert!(
        log.to_ascii_lowercase().contains("full"),
        "the error says the disk is full:\n{log}"
    );

    std::fs::remove_file(&filler).unwrap();
    h.logs()
        .wait_for(
            "store write succeeded after retries",
            1,
            Duration::from_secs(15),
        )
        .await;
    h.stop().await;
    assert!(
        dialogs_in(&state).await >= 1,
        "the subscription's dialog reached the file once space was back"
    );
}
