//! Warnings about a configuration that works but exposes something: secrets in files others
//! can read, and the component link leaving the machine (hardening, issue "secrets").
//! Warnings, not errors: an operator may have reasons (a group-readable file for a config
//! management agent), but must hear about it at every start.

use super::Config;
use std::path::Path;

/// The file's mode when others (not owner, not group) may read or write it. Group access
/// is how the package shares the config with the service account (root:stox 640), so it is
/// not a warning.
#[cfg(unix)]
fn open_to_others(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode();
    (mode & 0o006 != 0).then_some(mode & 0o777)
}

#[cfg(not(unix))]
fn open_to_others(_: &Path) -> Option<u32> {
    None
}

/// Whether `server` (`host:port`) names this machine.
fn is_loopback(server: &str) -> bool {
    let host = match server.rsplit_once(':') {
        Some((h, _)) => h.trim_matches(['[', ']']),
        None => server,
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl Config {
    /// What is risky in this config read from `path`, one sentence each; empty when nothing.
    pub fn safety_warnings(&self, path: &Path) -> Vec<String> {
        let mut out = Vec::new();
        let secret_files = [
            (
                self.component.secret.is_some().then_some(path),
                "the config file holds component.secret",
            ),
            (
                self.component.secret_file.as_deref(),
                "component.secret_file",
            ),
            (
                self.access.sip_credentials_file.as_deref(),
                "access.sip_credentials_file",
            ),
            (self.sip.tls.key_file.as_deref(), "sip.tls.key_file"),
        ];
        for (file, what) in secret_files {
            let Some(file) = file else { continue };
            if let Some(mode) = open_to_others(file) {
                out.push(format!(
                    "{what}: {} is open to other users (mode {mode:o}); chmod o-rwx it (600, \
                     or 640 with stox's group) or move the secret to a file only stox can read",
                    file.display()
                ));
            }
        }
        if !is_loopback(&self.component.server) {
            out.push(format!(
                "component.server {} is not on this machine: the XEP-0114 link is plain TCP, \
                 so every stanza crosses the network unencrypted; keep stox beside the XMPP \
                 server or tunnel the link",
                self.component.server
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const EXAMPLE: &str = include_str!("../../component.toml.example");

    fn write(dir: &Path, name: &str, text: &str, mode: u32) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    #[test]
    fn secrets_readable_by_others_are_named_private_ones_are_not() {
        let dir = std::env::temp_dir().join(format!("stox-safety-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let secret = write(&dir, "secret", "s3cret\n", 0o644);
        let users = write(&dir, "users", "carol:pw\n", 0o604);
        let text = EXAMPLE
            .replace(
                "# sip_credentials_file = \"/etc/stox/sip-users\"",
                &format!("sip_credentials_file = \"{}\"", users.display()),
            )
            .replace(
                "sip_untrusted = \"refuse\"",
                "sip_untrusted = \"challenge\"",
            );
        let inline = write(&dir, "inline.toml", &text, 0o644);
        let cfg = Config::load(&inline).unwrap();
        assert!(
            cfg.component.secret.is_some(),
            "the example has an inline secret"
        );
        let w = cfg.safety_warnings(&inline).join("\n");
        assert!(w.contains("the config file holds component.secret"), "{w}");
        assert!(w.contains("mode 644"), "{w}");
        assert!(
            w.contains("access.sip_credentials_file") && w.contains("mode 604"),
            "{w}"
        );
        assert!(
            !w.contains("s3cret") && !w.contains("carol:pw"),
            "no secret in a warning"
        );

        let mut cfg = cfg;
        cfg.component.secret = None;
        cfg.component.secret_file = Some(secret.clone());
        let key = write(&dir, "tls.key", "-----BEGIN PRIVATE KEY-----\n", 0o644);
        cfg.sip.tls.key_file = Some(key.clone());
        let w = cfg.safety_warnings(&inline).join("\n");
        assert!(
            w.contains("component.secret_file") && !w.contains("holds"),
            "{w}"
        );
        assert!(w.contains("sip.tls.key_file"), "{w}");

        // Owner and group only (the package's root:stox 640) is fine.
        for p in [&secret, &users, &inline, &key] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o640)).unwrap();
        }
        assert_eq!(cfg.safety_warnings(&inline), Vec::<String>::new());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn component_link_off_the_machine_is_a_warning() {
        let mut cfg = Config::parse(EXAMPLE).unwrap();
        let none = Path::new("/nonexistent/stox.toml");
        for local in [
            "127.0.0.1:5347",
            "localhost:5347",
            "[::1]:5347",
            "127.5.0.1:5347",
        ] {
            cfg.component.server = local.into();
            assert!(cfg.safety_warnings(none).is_empty(), "{local}");
        }
        for remote in [
            "192.0.2.4:5347",
            "xmpp.example.com:5347",
            "[2001:db8::1]:5347",
        ] {
            cfg.component.server = remote.into();
            let w = cfg.safety_warnings(none).join("\n");
            assert!(w.contains("unencrypted"), "{remote}: {w}");
        }
    }
}
