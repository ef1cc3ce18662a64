//! Certificates made at test time with rcgen; files in a fresh directory per test.

use super::*;
use std::path::PathBuf;

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("stox-tls-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A self-signed certificate for 127.0.0.1 written as `<stem>.crt` / `<stem>.key`.
fn write_cert(d: &Path, stem: &str) -> (PathBuf, PathBuf) {
    let c =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let (crt, key) = (d.join(format!("{stem}.crt")), d.join(format!("{stem}.key")));
    std::fs::write(&crt, c.cert.pem()).unwrap();
    std::fs::write(&key, c.key_pair.serialize_pem()).unwrap();
    (crt, key)
}

fn cfg(cert: &Path, key: &Path) -> TlsConfig {
    TlsConfig {
        cert_file: Some(cert.into()),
        key_file: Some(key.into()),
        ca_file: None,
    }
}

#[test]
fn a_matching_chain_and_key_load() {
    let d = dir("load");
    let (crt, key) = write_cert(&d, "a");
    let k = load_certified_key(&crt, &key).unwrap();
    assert_eq!(k.cert.len(), 1);
    assert_eq!(fingerprint(&k.cert[0]).len(), 32 * 3 - 1);
}

#[test]
fn a_key_of_another_certificate_is_refused() {
    let d = dir("mismatch");
    let (crt, _) = write_cert(&d, "a");
    let (_, other_key) = write_cert(&d, "b");
    let e = load_certified_key(&crt, &other_key).unwrap_err();
    assert!(e.contains("does not match the certificate"), "{e}");
}

#[test]
fn missing_unreadable_and_garbage_files_say_which() {
    let d = dir("garbage");
    let (crt, key) = write_cert(&d, "a");
    let missing = d.join("nope.pem");
    let e = load_certified_key(&missing, &key).unwrap_err();
    assert!(e.contains("cannot read") && e.contains("nope.pem"), "{e}");
    let junk = d.join("junk.pem");
    std::fs::write(&junk, "hello\n").unwrap();
    let e = load_certified_key(&junk, &key).unwrap_err();
    assert!(e.contains("no CERTIFICATE"), "{e}");
    let e = load_certified_key(&crt, &junk).unwrap_err();
    assert!(e.contains("no usable private key"), "{e}");
    // A certificate where the key should be is not a key either.
    let e = load_certified_key(&crt, &crt).unwrap_err();
    assert!(e.contains("no usable private key"), "{e}");
    assert!(load_ca_file(&junk).unwrap_err().contains("no CERTIFICATE"));
    assert_eq!(load_ca_file(&crt).unwrap().len(), 1);
}

#[test]
fn reload_swaps_the_certificate_for_new_handshakes() {
    let d = dir("swap");
    let (crt, key) = write_cert(&d, "live");
    let tls = Tls::new(&cfg(&crt, &key)).unwrap();
    let first = tls.resolver().fingerprint().unwrap();
    // Same files, same content: nothing changes.
    assert!(!tls.commit(tls.prepare(&cfg(&crt, &key)).unwrap()));
    // A renewed certificate at the same path.
    let (crt2, key2) = write_cert(&d, "renewed");
    std::fs::copy(&crt2, &crt).unwrap();
    std::fs::copy(&key2, &key).unwrap();
    assert!(tls.commit(tls.prepare(&cfg(&crt, &key)).unwrap()));
    let second = tls.resolver().fingerprint().unwrap();
    assert_ne!(first, second);
    let expected = load_certified_key(&crt2, &key2).unwrap();
    assert_eq!(second, fingerprint(&expected.cert[0]));
}

#[test]
fn a_bad_new_certificate_is_refused_and_the_old_one_stays() {
    let d = dir("badswap");
    let (crt, key) = write_cert(&d, "live");
    let tls = Tls::new(&cfg(&crt, &key)).unwrap();
    let before = tls.resolver().fingerprint();
    // Half-written renewal: a new certificate with the old key.
    let (crt2, _) = write_cert(&d, "half");
    std::fs::copy(&crt2, &crt).unwrap();
    assert!(tls.prepare(&cfg(&crt, &key)).is_err());
    assert_eq!(tls.resolver().fingerprint(), before);
}

#[test]
fn sips_hops_go_over_tls_and_large_sip_requests_over_tcp() {
    let h = |hop: &str, size| hop_with_transport(hop, size, 1300);
    assert_eq!(h("sip:10.0.0.1:5060", 100).unwrap(), "sip:10.0.0.1:5060");
    assert_eq!(
        h("sip:10.0.0.1:5060", 5000).unwrap(),
        "sip:10.0.0.1:5060;transport=tcp"
    );
    assert_eq!(
        h("sip:10.0.0.1:5060;transport=udp", 5000).unwrap(),
        "sip:10.0.0.1:5060;transport=udp"
    );
    assert_eq!(
        h("sip:p.example.net;transport=TLS", 10).unwrap(),
        "sip:p.example.net;transport=TLS"
    );
    assert_eq!(
        h("sips:p.example.net", 10).unwrap(),
        "sips:p.example.net;transport=tls"
    );
    assert_eq!(
        h("<sips:10.0.0.1:5061;lr>", 5000).unwrap(),
        "sips:10.0.0.1:5061;lr;transport=tls"
    );
    assert_eq!(
        h("sips:10.0.0.1;transport=TCP;lr", 10).unwrap(),
        "sips:10.0.0.1;transport=tls;lr"
    );
    let e = h("sips:10.0.0.1;transport=udp", 10).unwrap_err();
    assert!(e.contains("needs TLS"), "{e}");
}

mod config {
    use super::*;
    use crate::config::Config;

    fn config(listen: &str, tls: &str) -> Config {
        Config::parse(&format!(
            r#"
[component]
jid = "sip.example.com"
secret = "s"
[sip]
listen = [{listen}]
[sip.tls]
{tls}
[addresses]
xmpp_domains = ["example.com"]
sip_domain = "example.net"
"#
        ))
        .unwrap()
    }

    fn tls_problems(c: &Config) -> Vec<String> {
        c.validate()
            .into_iter()
            .filter(|p| p.contains("tls"))
            .collect()
    }

    #[test]
    fn a_tls_listener_needs_a_certificate_and_key() {
        let c = config(r#""tls:127.0.0.1:5061""#, "");
        assert_eq!(
            tls_problems(&c),
            vec!["sip.tls: a tls: entry in sip.listen needs cert_file and key_file"]
        );
        let c = config(r#""tls:127.0.0.1:5061""#, r#"cert_file = "/x.crt""#);
        assert_eq!(
            tls_problems(&c),
            vec!["sip.tls: cert_file is set but key_file is not"]
        );
        assert!(tls_problems(&config(r#""udp:127.0.0.1:5060""#, "")).is_empty());
    }

    #[test]
    fn the_files_are_read_parsed_and_matched_at_check_time() {
        let d = dir("config");
        let (crt, key) = write_cert(&d, "a");
        let (_, other) = write_cert(&d, "b");
        let files = |c: &Path, k: &Path, ca: &Path| {
            format!(
                "cert_file = {:?}\nkey_file = {:?}\nca_file = {:?}",
                c.display().to_string(),
                k.display().to_string(),
                ca.display().to_string()
            )
        };
        let good = config(r#""tls:127.0.0.1:5061""#, &files(&crt, &key, &crt));
        assert_eq!(good.validate(), Vec::<String>::new());
        let bad = config(
            r#""tls:127.0.0.1:5061""#,
            &files(&crt, &other, &d.join("missing-ca.pem")),
        );
        let p = tls_problems(&bad);
        assert_eq!(p.len(), 2, "{p:#?}");
        assert!(p[0].contains("does not match"), "{p:#?}");
        assert!(p[1].starts_with("sip.tls.ca_file: cannot read"), "{p:#?}");
    }

    #[test]
    fn a_sips_route_over_udp_is_refused_at_check_time() {
        let mut c = config(r#""udp:127.0.0.1:5060""#, "");
        c.sip
            .routes
            .insert("a.test".into(), "sips:10.0.0.1;transport=udp".into());
        c.sip.outbound_proxy = Some("sips:proxy.example.net".into());
        let p = c.validate();
        assert_eq!(p.len(), 1, "{p:#?}");
        assert!(
            p[0].starts_with("sip.routes.\"a.test\"") && p[0].contains("needs TLS"),
            "{p:#?}"
        );
    }

    #[test]
    fn tls_listen_entries_parse() {
        use crate::config::Listen;
        assert_eq!(
            Listen::parse("tls:127.0.0.1:5061"),
            Ok(Listen::Tls("127.0.0.1:5061".parse().unwrap()))
        );
        assert!(Listen::parse("dtls:127.0.0.1:5061")
            .unwrap_err()
            .contains("(udp, tcp or tls)"));
    }
}
