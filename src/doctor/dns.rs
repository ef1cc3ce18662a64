//! Can SIP peers on the internet find stox? For every served XMPP domain, SIP users address
//! its users as `sip:user@domain`, so (RFC 3263 §4.2) `_sip._udp.domain` / `_sip._tcp.domain`
//! SRV records should lead to stox, and their targets need A/AAAA records.
//!
//! Missing records are warnings, never failures: loopback and test setups have none, and a
//! deployment behind a SIP proxy may route by other means. Every lookup is bounded, and
//! all of them run at once, so an offline machine costs about one timeout.

use super::{Check, Level};
use futures::future::join_all;
use hickory_resolver::net::NetError;
use hickory_resolver::proto::rr::{Name, RData};
use hickory_resolver::TokioResolver;
use std::time::Duration;

/// Names that never have public DNS records (RFC 6761 special-use names, RFC 6762 `.local`).
fn special_use(domain: &str) -> bool {
    let d = domain.trim_end_matches('.').to_ascii_lowercase();
    let tld = d.rsplit('.').next().unwrap_or("");
    matches!(tld, "localhost" | "test" | "invalid" | "example" | "local")
}

/// SRV and address checks for every domain in `addresses.xmpp_domains`, through the
/// system's resolver configuration.
pub async fn check_dns(domains: &[String], timeout: Duration) -> Vec<Check> {
    check_dns_with(domains, timeout, || {
        let mut b = TokioResolver::builder_tokio()?;
        b.options_mut().timeout = timeout;
        b.options_mut().attempts = 1;
        b.build()
    })
    .await
}

/// [`check_dns`] with a resolver from `make`, built only when a name needs looking up (a
/// loopback setup without /etc/resolv.conf gets no resolver error).
async fn check_dns_with(
    domains: &[String],
    timeout: Duration,
    make: impl FnOnce() -> Result<TokioResolver, NetError>,
) -> Vec<Check> {
    let mut out = Vec::new();
    let mut names = Vec::new();
    for d in domains {
        if special_use(d) {
            out.push(Check::new(
                Level::Info,
                "dns",
                format!("{d} is a special-use name (RFC 6761): no DNS records to check"),
            ));
        } else {
            names.push(d.trim_end_matches('.').to_string());
        }
    }
    if names.is_empty() {
        return out;
    }
    let resolver = match make() {
        Ok(r) => r,
        Err(e) => {
            out.push(Check::new(
                Level::Warn,
                "dns",
                format!("no DNS resolver ({e}): SRV records not checked"),
            ));
            return out;
        }
    };
    let jobs = names.iter().flat_map(|d| {
        let r = &resolver;
        ["udp", "tcp"].map(move |t| srv(r, d, t, timeout))
    });
    for checks in join_all(jobs).await {
        out.extend(checks);
    }
    out
}

/// One `_sip._<transport>.<domain>` SRV set and the addresses of its targets.
async fn srv(r: &TokioResolver, domain: &str, transport: &str, timeout: Duration) -> Vec<Check> {
    let owner = format!("_sip._{transport}.{domain}");
    let warn = |m: String| vec![Check::new(Level::Warn, "dns", m)];
    // Fully qualified (trailing dot): the search list of resolv.conf must not turn a
    // missing record into a lookup of _sip._udp.example.com.corp.lan.
    let lookup = tokio::time::timeout(timeout * 2, r.srv_lookup(format!("{owner}."))).await;
    let answer = match lookup {
        Err(_) => {
            return warn(format!(
                "no DNS answer for {owner} SRV within {}s (offline, or no DNS server?): not \
                 checked",
                (timeout * 2).as_secs_f32()
            ))
        }
        Ok(Err(e)) if e.is_no_records_found() => {
            return warn(format!(
                "no {owner} SRV record: SIP peers on the internet cannot find stox for \
                 {domain} (publish e.g. `{owner}. SRV 0 0 5060 <stox host>.`)"
            ))
        }
        Ok(Err(e)) => {
            return warn(format!(
                "looking up {owner} SRV failed ({e}): SIP peers may not find stox for {domain}"
            ))
        }
        Ok(Ok(a)) => a,
    };
    let mut targets: Vec<(u16, u16, u16, Name)> = answer
        .answers()
        .iter()
        .filter_map(|rec| match &rec.data {
            RData::SRV(s) => Some((s.priority, s.weight, s.port, s.target.clone())),
            _ => None,
        })
        .collect();
    targets.sort_by_key(|t| (t.0, std::cmp::Reverse(t.1)));
    if targets.is_empty() {
        return warn(format!(
            "no {owner} SRV record: SIP peers on the internet cannot find stox for {domain}"
        ));
    }
    if targets.len() == 1 && targets[0].3.is_root() {
        // RFC 2782: a target of "." means the service is decidedly not available.
        return warn(format!(
            "{owner} SRV says SIP over {transport} is not offered for {domain} (target \".\")"
        ));
    }
    let mut found = Vec::new();
    let mut out = Vec::new();
    for (_, _, port, target) in targets {
        let host = target.to_utf8().trim_end_matches('.').to_string();
        let ips = tokio::time::timeout(timeout * 2, r.lookup_ip(target.clone())).await;
        match ips {
            Ok(Ok(ips)) if ips.iter().next().is_some() => {
                let ips: Vec<String> = ips.iter().map(|ip| ip.to_string()).collect();
                found.push(format!("{host}:{port} ({})", ips.join(", ")));
            }
            Ok(Ok(_)) => out.push(no_address(&owner, &host, "no records")),
            Ok(Err(e)) => out.push(no_address(&owner, &host, &e.to_string())),
            Err(_) => out.push(no_address(&owner, &host, "no answer in time")),
        }
    }
    if !found.is_empty() {
        out.insert(
            0,
            Check::new(Level::Ok, "dns", format!("{owner} -> {}", found.join("; "))),
        );
    }
    out
}

fn no_address(owner: &str, host: &str, why: &str) -> Check {
    Check::new(
        Level::Warn,
        "dns",
        format!(
            "{owner} names {host}, which has no A/AAAA record ({why}): peers cannot reach that \
             target"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_use_names_are_skipped_with_info() {
        assert!(special_use("localhost"));
        assert!(special_use("sip.localhost."));
        assert!(special_use("a.TEST"));
        assert!(!special_use("example.com"));
        assert!(!special_use("localhost.example.org"));
    }

    use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
    use hickory_resolver::net::runtime::TokioRuntimeProvider;
    use hickory_resolver::proto::op::{Message, ResponseCode};
    use hickory_resolver::proto::rr::rdata::{A, SRV};
    use hickory_resolver::proto::rr::{Record, RecordType};
    use std::net::{Ipv4Addr, SocketAddr};

    /// A resolver that asks only the UDP server at `addr`.
    fn resolver_at(addr: SocketAddr, timeout: Duration) -> Result<TokioResolver, NetError> {
        let mut conn = ConnectionConfig::udp();
        conn.port = addr.port();
        let ns = NameServerConfig::new(addr.ip(), true, vec![conn]);
        let mut b = TokioResolver::builder_with_config(
            ResolverConfig::from_name_servers(vec![ns]),
            TokioRuntimeProvider::default(),
        );
        b.options_mut().timeout = timeout;
        b.options_mut().attempts = 1;
        b.build()
    }

    /// A DNS server for example.com: `_sip._udp` SRV -> sip.example.com:5060, whose A is
    /// 192.0.2.10; everything else NXDOMAIN.
    async fn fake_dns() -> SocketAddr {
        let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = sock.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = [0u8; 1500];
            while let Ok((n, from)) = sock.recv_from(&mut buf).await {
                let Ok(q) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                let mut r = Message::response(q.metadata.id, q.metadata.op_code);
                r.metadata.recursion_desired = q.metadata.recursion_desired;
                let query = q.queries[0].clone();
                let name = query.name().clone();
                let ascii = name.to_ascii().to_ascii_lowercase();
                match (ascii.as_str(), query.query_type()) {
                    ("_sip._udp.example.com.", RecordType::SRV) => {
                        let target = Name::from_ascii("sip.example.com.").unwrap();
                        let srv = SRV::new(10, 5, 5060, target);
                        r.add_answer(Record::from_rdata(name, 60, RData::SRV(srv)));
                    }
                    ("sip.example.com.", RecordType::A) => {
                        let a = A(Ipv4Addr::new(192, 0, 2, 10));
                        r.add_answer(Record::from_rdata(name, 60, RData::A(a)));
                    }
                    // A name that exists, without records of this type.
                    ("sip.example.com.", _) => {}
                    _ => r.metadata.response_code = ResponseCode::NXDomain,
                }
                r.add_query(query);
                let _ = sock.send_to(&r.to_vec().unwrap(), from).await;
            }
        });
        addr
    }

    #[tokio::test]
    async fn srv_found_and_srv_missing() {
        let t = Duration::from_secs(2);
        let dns = fake_dns().await;
        let c = check_dns_with(&["example.com".into()], t, || resolver_at(dns, t)).await;
        let lines: Vec<String> = c.iter().map(Check::to_string).collect();
        assert_eq!(
            lines,
            vec![
                "ok    dns: _sip._udp.example.com -> sip.example.com:5060 (192.0.2.10)",
                "warn  dns: no _sip._tcp.example.com SRV record: SIP peers on the internet \
                 cannot find stox for example.com (publish e.g. `_sip._tcp.example.com. SRV 0 \
                 0 5060 <stox host>.`)",
            ],
        );
    }

    #[tokio::test]
    async fn a_silent_dns_server_costs_one_timeout_and_a_warning() {
        // Bound, never read: queries vanish as on an offline machine.
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = silent.local_addr().unwrap();
        let t = Duration::from_millis(300);
        let t0 = std::time::Instant::now();
        let domains = ["example.com".to_string(), "example.org".to_string()];
        let c = check_dns_with(&domains, t, || resolver_at(addr, t)).await;
        assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
        assert_eq!(c.len(), 4, "{c:?}");
        assert!(c.iter().all(|c| c.level == Level::Warn), "{c:?}");
        // Silence is not an answer: it must not be reported as a missing record.
        assert!(
            c.iter().all(|c| !c.message.contains("SRV record:")),
            "{c:?}"
        );
        drop(silent);
    }

    #[tokio::test]
    async fn loopback_domains_need_no_network() {
        let t0 = std::time::Instant::now();
        let c = check_dns(
            &["localhost".into(), "x.test".into()],
            Duration::from_secs(5),
        )
        .await;
        assert!(t0.elapsed() < Duration::from_secs(1));
        assert_eq!(c.len(), 2);
        assert!(c.iter().all(|c| c.level == Level::Info), "{c:?}");
    }
}
