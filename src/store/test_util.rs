//! Helpers for the store tests: throw-away directories and sample rows.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use super::{AuthKey, AuthState, Authorization, Dialog, DialogKey, Direction};

/// A fresh directory under the system temp dir, removed (with its content) on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(name: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("stox-store-test-{}-{n}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(crate) fn jid(i: usize) -> String {
    format!("user{i}@example.com")
}

pub(crate) fn aor(i: usize) -> String {
    format!("sip:contact{i}@example.net")
}

pub(crate) fn auth(i: usize, j: usize, direction: Direction, state: AuthState) -> Authorization {
    Authorization {
        key: AuthKey::new(jid(i), aor(j), direction),
        state,
        updated_at: 1_700_000_000 + i64::try_from(i).expect("small"),
    }
}

pub(crate) fn dialog(call_id: &str, key: AuthKey, expires_at: i64) -> Dialog {
    Dialog {
        key: DialogKey::new(call_id, "gw-tag-1"),
        role: key.direction.gateway_role(),
        auth: key,
        remote_tag: Some("xfg9".into()),
        remote_target: "sip:romeo@192.0.2.7:5060;transport=tcp".into(),
        route_set: vec![
            "<sip:p1.example.net;lr>".into(),
            "<sip:p2.example.net;lr;ftag=\"a,b\">".into(),
        ],
        local_cseq: 1,
        remote_cseq: Some(101),
        expires_at,
        extra: r#"{"accept":"application/pidf+xml"}"#.into(),
        updated_at: 1_700_000_000,
    }
}
