//! Store behaviour tests (PRES-14 persistence, COMP-5 restart recovery, PRES-24 counts).

use std::sync::Arc;
use std::time::Instant;

use sqlx::{ConnectOptions, Connection};

use super::migrate::MIGRATIONS;
use super::sqlite::{connect_options, run_migrations};
use super::test_util::{aor, auth, dialog, jid, TempDir};
use super::*;

async fn open(dir: &TempDir) -> SqliteStore {
    SqliteStore::open(dir.path()).await.expect("open store")
}

#[tokio::test]
async fn pres14_authorization_round_trip() {
    let dir = TempDir::new("auth-crud");
    let store = open(&dir).await;
    let a = auth(1, 1, Direction::XmppWatchesSip, AuthState::Pending);

    assert_eq!(store.get_authorization(&a.key).await.unwrap(), None);
    store.upsert_authorization(&a).await.unwrap();
    assert_eq!(
        store.get_authorization(&a.key).await.unwrap(),
        Some(a.clone())
    );

    // The other direction of the same pair is a separate row (PRES-7).
    let other = AuthKey::new(jid(1), aor(1), Direction::SipWatchesXmpp);
    assert_eq!(store.get_authorization(&other).await.unwrap(), None);

    let approved = Authorization {
        state: AuthState::Subscribed,
        updated_at: a.updated_at + 60,
        ..a.clone()
    };
    store.upsert_authorization(&approved).await.unwrap();
    assert_eq!(
        store.get_authorization(&a.key).await.unwrap(),
        Some(approved)
    );
    assert_eq!(
        store
            .list_authorizations(&Filter::all(), None)
            .await
            .unwrap()
            .len(),
        1
    );

    assert!(store.delete_authorization(&a.key).await.unwrap());
    assert!(!store.delete_authorization(&a.key).await.unwrap());
    assert_eq!(store.get_authorization(&a.key).await.unwrap(), None);
}

#[tokio::test]
async fn pres14_dialog_round_trip() {
    let dir = TempDir::new("dialog-crud");
    let store = open(&dir).await;
    let key = AuthKey::new(jid(1), aor(2), Direction::SipWatchesXmpp);
    let mut d = dialog("s1@example.net", key, 1_700_003_600);
    d.extra = "{\"pidf\":\"<presence xmlns='urn:ietf:params:xml:ns:pidf'/>\",\"ü\":\"\\n\"}".into();

    store.upsert_dialog(&d).await.unwrap();
    assert_eq!(store.get_dialog(&d.key).await.unwrap(), Some(d.clone()));

    // A SUBSCRIBE not answered yet: no remote tag, no remote CSeq, no route set.
    let mut early = d.clone();
    early.remote_tag = None;
    early.remote_cseq = None;
    early.route_set = vec![];
    early.local_cseq = u32::MAX;
    store.upsert_dialog(&early).await.unwrap();
    assert_eq!(store.get_dialog(&d.key).await.unwrap(), Some(early));

    store.upsert_dialog(&d).await.unwrap();
    assert_eq!(store.next_local_cseq(&d.key, 7).await.unwrap(), Some(2));
    let bumped = store.get_dialog(&d.key).await.unwrap().unwrap();
    assert_eq!((bumped.local_cseq, bumped.updated_at), (2, 7));
    let unknown = DialogKey::new("nope", "nope");
    assert_eq!(store.next_local_cseq(&unknown, 7).await.unwrap(), None);

    assert!(store.delete_dialog(&d.key).await.unwrap());
    assert!(!store.delete_dialog(&d.key).await.unwrap());
    assert_eq!(store.get_dialog(&d.key).await.unwrap(), None);
}

#[tokio::test]
async fn next_local_cseq_refuses_to_wrap() {
    let dir = TempDir::new("cseq-wrap");
    let store = open(&dir).await;
    let mut d = dialog(
        "wrap",
        AuthKey::new(jid(1), aor(1), Direction::XmppWatchesSip),
        0,
    );
    d.local_cseq = u32::MAX;
    store.upsert_dialog(&d).await.unwrap();
    let err = store.next_local_cseq(&d.key, 1).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Backend {
                op: "next_local_cseq",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        store.get_dialog(&d.key).await.unwrap().unwrap().local_cseq,
        u32::MAX
    );
}

#[tokio::test]
async fn pres24_lists_and_counts_by_user() {
    let dir = TempDir::new("lists");
    let store = open(&dir).await;
    // user1 watches contact1 and contact2; contact1 watches user1 (pending) and user2.
    let rows = [
        auth(1, 1, Direction::XmppWatchesSip, AuthState::Subscribed),
        auth(1, 2, Direction::XmppWatchesSip, AuthState::Pending),
        auth(1, 1, Direction::SipWatchesXmpp, AuthState::Pending),
        auth(2, 1, Direction::SipWatchesXmpp, AuthState::Subscribed),
        auth(3, 3, Direction::XmppWatchesSip, AuthState::None),
    ];
    for a in &rows {
        store.upsert_authorization(a).await.unwrap();
    }
    for (n, a) in rows.iter().take(4).enumerate() {
        store
            .upsert_dialog(&dialog(&format!("c{n}"), a.key.clone(), 1000 + n as i64))
            .await
            .unwrap();
    }

    // Ordered by key: JID, AOR, then the direction's text.
    let user1 = store
        .list_authorizations(&Filter::xmpp(jid(1)), None)
        .await
        .unwrap();
    assert_eq!(user1, [&rows[2], &rows[0], &rows[1]].map(Clone::clone));
    let contact1 = store
        .list_authorizations(&Filter::sip(aor(1)), None)
        .await
        .unwrap();
    assert_eq!(contact1.len(), 3);
    // COMP-5: everyone to re-announce presence to after a reconnect.
    let watchers = store
        .list_authorizations(
            &Filter::all().direction(Direction::XmppWatchesSip),
            Some(AuthState::Subscribed),
        )
        .await
        .unwrap();
    assert_eq!(watchers, vec![rows[0].clone()]);

    assert_eq!(
        store.counts(&Filter::xmpp(jid(1))).await.unwrap(),
        Counts {
            pending: 2,
            subscribed: 1,
            dialogs: 3
        }
    );
    assert_eq!(
        store
            .counts(&Filter::sip(aor(1)).direction(Direction::SipWatchesXmpp))
            .await
            .unwrap(),
        Counts {
            pending: 1,
            subscribed: 1,
            dialogs: 2
        }
    );
    let total = store.counts(&Filter::all()).await.unwrap();
    assert_eq!(
        total,
        Counts {
            pending: 2,
            subscribed: 2,
            dialogs: 4
        }
    );
    assert_eq!(total.authorizations(), 4, "None rows are not counted");
    assert_eq!(
        store.counts(&Filter::xmpp("nobody@x")).await.unwrap(),
        Counts::default()
    );

    let of_pair = store
        .list_dialogs(&Filter::auth(&rows[2].key))
        .await
        .unwrap();
    assert_eq!(of_pair.len(), 1);
    assert_eq!(of_pair[0].key.call_id, "c2");
    assert_eq!(
        store
            .list_dialogs(&Filter::xmpp(jid(1)))
            .await
            .unwrap()
            .len(),
        3
    );

    let expiring = store.dialogs_expiring_before(1002).await.unwrap();
    let ids: Vec<_> = expiring.iter().map(|d| d.key.call_id.as_str()).collect();
    assert_eq!(ids, ["c0", "c1"]);
}

#[test]
fn rfc6121_roster_view_of_two_directions() {
    use AuthState::{None as N, Pending as P, Subscribed as S};
    let cases = [
        (N, N, Subscription::None, false, false),
        (P, N, Subscription::None, true, false),
        (N, P, Subscription::None, false, true),
        (P, P, Subscription::None, true, true),
        (S, N, Subscription::To, false, false),
        (S, P, Subscription::To, false, true),
        (N, S, Subscription::From, false, false),
        (P, S, Subscription::From, true, false),
        (S, S, Subscription::Both, false, false),
    ];
    for (x2s, s2x, subscription, pending_out, pending_in) in cases {
        let expected = RosterView {
            subscription,
            pending_out,
            pending_in,
        };
        assert_eq!(roster_view(x2s, s2x), expected, "{x2s:?} {s2x:?}");
    }
}

#[test]
fn enum_texts_round_trip() {
    for d in [Direction::XmppWatchesSip, Direction::SipWatchesXmpp] {
        assert_eq!(Direction::parse(d.as_str()), Some(d));
    }
    for s in [AuthState::None, AuthState::Pending, AuthState::Subscribed] {
        assert_eq!(AuthState::parse(s.as_str()), Some(s));
    }
    for r in [DialogRole::Subscriber, DialogRole::Notifier] {
        assert_eq!(DialogRole::parse(r.as_str()), Some(r));
    }
    assert_eq!(AuthState::parse("Subscribed"), None);
}

#[tokio::test]
async fn pres14_state_survives_reopen() {
    let dir = TempDir::new("reopen");
    let a = auth(1, 1, Direction::XmppWatchesSip, AuthState::Subscribed);
    let d = dialog("s1", a.key.clone(), 1_700_003_600);
    {
        let store = open(&dir).await;
        store.upsert_authorization(&a).await.unwrap();
        store.upsert_dialog(&d).await.unwrap();
        store.close().await;
        let err = store.get_authorization(&a.key).await.unwrap_err();
        assert!(matches!(err, StoreError::Closed { .. }), "{err}");
    }
    let store = open(&dir).await;
    assert_eq!(
        store.get_authorization(&a.key).await.unwrap(),
        Some(a.clone())
    );
    assert_eq!(store.get_dialog(&d.key).await.unwrap(), Some(d.clone()));
    assert_eq!(store.path(), dir.path().join(DB_FILE_NAME));

    // Dropped without close (as when the task holding it dies): the commits are in the WAL
    // and a new open sees them.
    let b = auth(2, 2, Direction::SipWatchesXmpp, AuthState::Pending);
    store.upsert_authorization(&b).await.unwrap();
    drop(store);
    let store = open(&dir).await;
    assert_eq!(store.get_authorization(&b.key).await.unwrap(), Some(b));
    assert_eq!(
        store
            .list_authorizations(&Filter::all(), None)
            .await
            .unwrap()
            .len(),
        2
    );
    store.close().await;
}

#[tokio::test]
async fn opens_in_wal_mode() {
    let dir = TempDir::new("wal");
    let store = open(&dir).await;
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn migrates_empty_file_and_rerun_is_noop() {
    let dir = TempDir::new("migrate-empty");
    // An existing zero-byte file is an empty SQLite database.
    std::fs::write(dir.path().join(DB_FILE_NAME), b"").unwrap();
    let store = open(&dir).await;
    assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
    store
        .upsert_authorization(&auth(1, 1, Direction::XmppWatchesSip, AuthState::Pending))
        .await
        .unwrap();
    store.close().await;

    for _ in 0..2 {
        let store = open(&dir).await;
        let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(applied, i64::try_from(MIGRATIONS.len()).unwrap());
        assert_eq!(
            store
                .list_authorizations(&Filter::all(), None)
                .await
                .unwrap()
                .len(),
            1
        );
        store.close().await;
    }
}

#[test]
fn migrations_are_numbered_one_by_one() {
    for (i, m) in MIGRATIONS.iter().enumerate() {
        assert_eq!(
            m.version,
            i64::try_from(i).unwrap() + 1,
            "{}",
            m.description
        );
    }
    assert_eq!(MIGRATIONS.last().map(|m| m.version), Some(SCHEMA_VERSION));
}

/// Every older schema (including none at all) upgrades to the current one on open.
#[tokio::test]
async fn migrates_from_every_older_version() {
    for applied in 0..MIGRATIONS.len() {
        let dir = TempDir::new("migrate-old");
        let path = dir.path().join(DB_FILE_NAME);
        let mut conn = connect_options(&path, &SqliteOptions::default())
            .connect()
            .await
            .unwrap();
        run_migrations(&mut conn, &path, &MIGRATIONS[..applied])
            .await
            .unwrap();
        conn.close().await.unwrap();

        let store = open(&dir).await;
        assert_eq!(
            store.schema_version().await.unwrap(),
            SCHEMA_VERSION,
            "from {applied}"
        );
        store.close().await;
    }
}

#[tokio::test]
async fn refuses_schema_from_newer_binary() {
    let dir = TempDir::new("migrate-newer");
    let store = open(&dir).await;
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (?1, 'from the future', 1, x'00', 0)",
    )
    .bind(SCHEMA_VERSION + 1)
    .execute(store.pool())
    .await
    .unwrap();
    store.close().await;

    let err = SqliteStore::open(dir.path()).await.unwrap_err();
    assert!(
        matches!(err, StoreError::SchemaTooNew { found, known, .. }
            if found == SCHEMA_VERSION + 1 && known == SCHEMA_VERSION),
        "{err}"
    );
    assert!(err.to_string().contains(DB_FILE_NAME), "{err}");
}

#[tokio::test]
async fn refuses_edited_migration() {
    let dir = TempDir::new("migrate-edited");
    let store = open(&dir).await;
    sqlx::query("UPDATE _sqlx_migrations SET checksum = x'00' WHERE version = 1")
        .execute(store.pool())
        .await
        .unwrap();
    store.close().await;
    let err = SqliteStore::open(dir.path()).await.unwrap_err();
    assert!(matches!(err, StoreError::Migration { .. }), "{err}");
}

#[tokio::test]
async fn foreign_row_is_an_error_not_a_panic() {
    let dir = TempDir::new("bad-row");
    let store = open(&dir).await;
    let good = auth(1, 1, Direction::XmppWatchesSip, AuthState::Pending);
    store.upsert_authorization(&good).await.unwrap();
    sqlx::query("UPDATE presence_authorization SET state = 'both'")
        .execute(store.pool())
        .await
        .unwrap();
    let err = store.get_authorization(&good.key).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::BadRow {
                table: "presence_authorization",
                ..
            }
        ),
        "{err}"
    );

    let d = dialog("d", good.key.clone(), 5);
    store.upsert_dialog(&d).await.unwrap();
    for bad in [
        "UPDATE sip_subscription_dialog SET route_set = 'not json'",
        "UPDATE sip_subscription_dialog SET route_set = '[1]', expires_at = 5",
        "UPDATE sip_subscription_dialog SET route_set = '[]', expires_at = 'soon'",
    ] {
        sqlx::query(bad).execute(store.pool()).await.unwrap();
        let err = store.get_dialog(&d.key).await.unwrap_err();
        assert!(matches!(err, StoreError::BadRow { .. }), "{bad}: {err}");
    }
}

/// Many tasks writing at once: every write lands and CSeq numbers are never handed out twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_lose_no_update() {
    let dir = TempDir::new("concurrent");
    // Through the trait object, as the gateway will hold it.
    let store: Arc<dyn Store> = Arc::new(open(&dir).await);
    let d = dialog(
        "shared",
        AuthKey::new(jid(0), aor(0), Direction::XmppWatchesSip),
        0,
    );
    store.upsert_dialog(&d).await.unwrap();

    const TASKS: usize = 16;
    const PER_TASK: usize = 50;
    let mut handles = Vec::new();
    for t in 0..TASKS {
        let store = Arc::clone(&store);
        let key = d.key.clone();
        handles.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for i in 0..PER_TASK {
                let a = auth(t, i, Direction::SipWatchesXmpp, AuthState::Pending);
                store.upsert_authorization(&a).await.expect("upsert");
                got.push(
                    store
                        .next_local_cseq(&key, 1)
                        .await
                        .expect("cseq")
                        .expect("dialog"),
                );
            }
            got
        }));
    }
    let mut cseqs = Vec::new();
    for h in handles {
        cseqs.extend(h.await.unwrap());
    }
    cseqs.sort_unstable();
    let expected: Vec<u32> = (2..).take(TASKS * PER_TASK).collect();
    assert_eq!(cseqs, expected, "every CSeq exactly once");
    let total = store.counts(&Filter::all()).await.unwrap();
    assert_eq!(total.pending, (TASKS * PER_TASK) as u64);
}

/// 10,000 authorizations and 10,000 dialogs, written one by one as the gateway would; timings
/// are printed (`cargo test -- --nocapture`), not asserted.
#[tokio::test]
async fn perf_10k_rows() {
    const N: usize = 10_000;
    let dir = TempDir::new("perf");
    let store = open(&dir).await;

    let t = Instant::now();
    for i in 0..N {
        store
            .upsert_authorization(&auth(
                i % 100,
                i,
                Direction::XmppWatchesSip,
                AuthState::Subscribed,
            ))
            .await
            .unwrap();
    }
    let insert_auth = t.elapsed();
    let t = Instant::now();
    for i in 0..N {
        let key = AuthKey::new(jid(i % 100), aor(i), Direction::XmppWatchesSip);
        store
            .upsert_dialog(&dialog(
                &format!("call-{i}"),
                key,
                i64::try_from(i).unwrap(),
            ))
            .await
            .unwrap();
    }
    let insert_dialog = t.elapsed();

    let t = Instant::now();
    let all = store
        .list_authorizations(&Filter::all(), None)
        .await
        .unwrap();
    let list_auth = t.elapsed();
    let t = Instant::now();
    let dialogs = store.list_dialogs(&Filter::all()).await.unwrap();
    let list_dialog = t.elapsed();
    let t = Instant::now();
    let one_user = store
        .list_authorizations(&Filter::xmpp(jid(7)), None)
        .await
        .unwrap();
    let by_user = t.elapsed();
    let t = Instant::now();
    let expiring = store.dialogs_expiring_before(5_000).await.unwrap();
    let expiry_scan = t.elapsed();
    let t = Instant::now();
    let counts = store.counts(&Filter::xmpp(jid(7))).await.unwrap();
    let count_user = t.elapsed();

    assert_eq!(
        (all.len(), dialogs.len(), one_user.len(), expiring.len()),
        (N, N, 100, 5_000)
    );
    assert_eq!(
        counts,
        Counts {
            pending: 0,
            subscribed: 100,
            dialogs: 100
        }
    );
    println!(
        "perf_10k_rows: upsert {N} authorizations {insert_auth:?} ({:?}/row), {N} dialogs \
         {insert_dialog:?} ({:?}/row); list all authorizations {list_auth:?}, all dialogs \
         {list_dialog:?}; by user (100 rows) {by_user:?}; expiring (5000 rows) {expiry_scan:?}; \
         counts by user {count_user:?}",
        insert_auth / N as u32,
        insert_dialog / N as u32,
    );
}
