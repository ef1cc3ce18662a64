//! Counters and gauges of the running gateway, rendered in the OpenMetrics text format
//! (scraped by Prometheus from `[metrics] listen`) and shown by the admin `status` command.
//!
//! One process-wide registry: the counters are touched from the adapters, the router and the
//! session tasks, and passing a handle through every one of them would buy nothing (there is
//! one gateway per process). Label values come from small closed sets (methods we handle,
//! status codes, stanza names) so a hostile peer cannot grow the label space: anything else
//! is counted as `other`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::LazyLock;
use std::time::Duration;

/// Direction of a SIP transaction or stanza, seen from stox.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Dir {
    /// Received by stox.
    In,
    /// Sent by stox.
    Out,
}

impl Dir {
    fn as_str(self) -> &'static str {
        match self {
            Dir::In => "in",
            Dir::Out => "out",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SipLabels {
    direction: &'static str,
    method: &'static str,
    code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StanzaLabels {
    direction: &'static str,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabels {
    queue: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabels {
    limit: &'static str,
}

/// Every metric stox exports.
pub struct Metrics {
    registry: Registry,
    link_up: Gauge,
    reconnects: Counter,
    sip: Family<SipLabels, Counter>,
    stanzas: Family<StanzaLabels, Counter>,
    failures: Family<ReasonLabels, Counter>,
    sessions: Family<KindLabels, Gauge>,
    queues: Family<QueueLabels, Gauge>,
    limits: Family<LimitLabels, Counter>,
    store: Histogram,
    reloads: Family<ReasonLabels, Counter>,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process-wide metrics.
pub fn get() -> &'static Metrics {
    &METRICS
}

/// A SIP method as a fixed label.
fn method_label(method: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        "MESSAGE",
        "SUBSCRIBE",
        "NOTIFY",
        "INVITE",
        "ACK",
        "BYE",
        "CANCEL",
        "OPTIONS",
        "REGISTER",
        "PUBLISH",
        "REFER",
        "INFO",
        "UPDATE",
        "PRACK",
    ];
    KNOWN
        .iter()
        .find(|m| m.eq_ignore_ascii_case(method))
        .copied()
        .unwrap_or("other")
}

/// A stanza element name as a fixed label.
fn stanza_label(name: &str) -> &'static str {
    match name {
        "message" => "message",
        "presence" => "presence",
        "iq" => "iq",
        _ => "other",
    }
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("stox");
        let m = Metrics {
            link_up: Gauge::default(),
            reconnects: Counter::default(),
            sip: Family::default(),
            stanzas: Family::default(),
            failures: Family::default(),
            sessions: Family::default(),
            queues: Family::default(),
            limits: Family::default(),
            // 100 µs .. ~3.3 s: SQLite commits on a healthy disk sit in the low milliseconds;
            // the top buckets show a disk in trouble.
            store: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            reloads: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "component_link_up",
            "1 while the XEP-0114 link to the XMPP server is established",
            m.link_up.clone(),
        );
        registry.register(
            "component_reconnects",
            "Component link establishments after the first",
            m.reconnects.clone(),
        );
        registry.register(
            "sip_transactions",
            "SIP transactions by direction, method and final status code (0: no response)",
            m.sip.clone(),
        );
        registry.register(
            "stanzas",
            "XMPP stanzas on the component link by direction and kind",
            m.stanzas.clone(),
        );
        registry.register(
            "translation_failures",
            "Requests or stanzas refused because they could not be translated, by reason",
            m.failures.clone(),
        );
        registry.register("sessions", "Active sessions by kind", m.sessions.clone());
        registry.register(
            "queue_depth",
            "Items waiting in internal queues",
            m.queues.clone(),
        );
        registry.register(
            "limit_hits",
            "Requests refused because a configured limit was reached, by limit",
            m.limits.clone(),
        );
        registry.register(
            "store_write_seconds",
            "Latency of state database writes",
            m.store.clone(),
        );
        registry.register(
            "config_reloads",
            "Configuration reloads by result",
            m.reloads.clone(),
        );
        Metrics { registry, ..m }
    }

    /// The link went up (`first` for the first time in this process) or down.
    pub fn link(&self, up: bool, first: bool) {
        self.link_up.set(i64::from(up));
        if up && !first {
            self.reconnects.inc();
        }
    }

    /// A SIP transaction ended with `code` (0 when no final response came).
    pub fn sip(&self, dir: Dir, method: &str, code: u16) {
        self.sip
            .get_or_create(&SipLabels {
                direction: dir.as_str(),
                method: method_label(method),
                code,
            })
            .inc();
    }

    /// A stanza crossed the component link.
    pub fn stanza(&self, dir: Dir, name: &str) {
        self.stanzas
            .get_or_create(&StanzaLabels {
                direction: dir.as_str(),
                kind: stanza_label(name),
            })
            .inc();
    }

    /// A translation failed; `reason` is a fixed string.
    pub fn failure(&self, reason: &'static str) {
        self.failures.get_or_create(&ReasonLabels { reason }).inc();
    }

    /// Active sessions of one kind.
    pub fn set_sessions(&self, kind: &'static str, n: usize) {
        self.sessions
            .get_or_create(&KindLabels { kind })
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Depth of one internal queue.
    pub fn set_queue(&self, queue: &'static str, n: usize) {
        self.queues
            .get_or_create(&QueueLabels { queue })
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// A configured limit refused something.
    pub fn limit_hit(&self, limit: &'static str) {
        self.limits.get_or_create(&LimitLabels { limit }).inc();
    }

    /// One state database write took `d`.
    pub fn store_write(&self, d: Duration) {
        self.store.observe(d.as_secs_f64());
    }

    /// A configuration reload ended (`applied` or `rejected`).
    pub fn reload(&self, result: &'static str) {
        self.reloads
            .get_or_create(&ReasonLabels { reason: result })
            .inc();
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut s = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut s, &self.registry);
        s
    }

    /// `(name{labels}, value)` of every counter and gauge sample, for the admin `status`
    /// command (XEP-0039-style statistics for admins without Prometheus).
    pub fn samples(&self) -> Vec<(String, String)> {
        self.render()
            .lines()
            .filter(|l| !l.starts_with('#') && !l.contains("_bucket{"))
            .filter_map(|l| {
                let (name, value) = l.rsplit_once(' ')?;
                Some((name.to_string(), value.to_string()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendering_shows_labels_and_counts() {
        let m = Metrics::new();
        m.sip(Dir::In, "message", 200);
        m.sip(Dir::In, "MESSAGE", 200);
        m.sip(Dir::Out, "FOO", 0);
        m.stanza(Dir::Out, "message");
        m.stanza(Dir::In, "weird");
        m.link(true, true);
        m.link(false, false);
        m.link(true, false);
        m.set_sessions("msrp", 3);
        let text = m.render();
        assert!(
            text.contains(
                "stox_sip_transactions_total{direction=\"in\",method=\"MESSAGE\",code=\"200\"} 2"
            ),
            "{text}"
        );
        assert!(text.contains("method=\"other\",code=\"0\"} 1"), "{text}");
        assert!(text.contains("stox_stanzas_total{direction=\"in\",kind=\"other\"} 1"));
        assert!(text.contains("stox_component_reconnects_total 1"), "{text}");
        assert!(text.contains("stox_component_link_up 1"), "{text}");
        assert!(text.contains("stox_sessions{kind=\"msrp\"} 3"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn samples_skip_comments_and_buckets() {
        let m = Metrics::new();
        m.store_write(Duration::from_millis(2));
        m.limit_hit("messages_per_minute");
        let s = m.samples();
        assert!(s
            .iter()
            .any(|(n, v)| n == "stox_limit_hits_total{limit=\"messages_per_minute\"}" && v == "1"));
        assert!(s
            .iter()
            .any(|(n, v)| n == "stox_store_write_seconds_count" && v == "1"));
        assert!(s
            .iter()
            .all(|(n, _)| !n.starts_with('#') && !n.contains("_bucket")));
    }
}
