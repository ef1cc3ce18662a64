//! Outbound SIP MESSAGE (RFC 3428) with the gateway's routing: `[sip.routes]` for the
//! Request-URI's domain, else the outbound proxy, else RFC 3263 on the Request-URI
//! (GEN-1). Requests too large for UDP go over TCP (RFC 3261 §18.1.1, GEN-2).

use crate::errmap::SipStatus;
use crate::im::SipMessageOut;
use bytesstr::BytesStr;
use ezk_sip_core::transport::{TargetTransportInfo, TransportState};
use ezk_sip_core::Endpoint;
use ezk_sip_core::Request;
use ezk_sip_types::header::typed::{CSeq, CallID, Contact, ContentType, FromTo, MaxForwards};
use ezk_sip_types::msg::RequestLine;
use ezk_sip_types::uri::NameAddr;
use ezk_sip_types::uri::SipUri;
use ezk_sip_types::{Headers, Method, Name};
use std::collections::BTreeMap;
use tracing::{debug, trace};

/// RFC 3261 §18.1.1: a request within 200 bytes of the 1500-byte path MTU must use TCP.
pub const UDP_LIMIT: usize = 1300;

/// The Contact URI of a local user: `sip:user@HOST` (`sip:HOST` without a user), with `;gr=`
/// when given (ADDR-8), user and gr percent-encoded.
pub fn contact_uri(user: &str, contact_host: &str, gr: Option<&str>) -> String {
    let mut uri = if user.is_empty() {
        format!("sip:{contact_host}")
    } else {
        format!(
            "sip:{}@{}",
            crate::addr::percent::percent_encode_user(user),
            contact_host
        )
    };
    if let Some(gr) = gr {
        uri.push_str(";gr=");
        uri.push_str(&crate::addr::percent::percent_encode_param(gr));
    }
    uri
}

/// Why an outbound MESSAGE did not get a 2xx.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendFailure {
    /// A final non-2xx response; `contact` is the Contact of a 3xx, if any.
    Response {
        /// The status.
        status: SipStatus,
        /// Contact URI of a redirect.
        contact: Option<String>,
    },
    /// No final response before Timer F (RFC 3261 §17.1.2.2).
    Timeout,
    /// The next hop could not be resolved or reached.
    Unreachable(String),
}

impl SendFailure {
    /// A final non-2xx response: its status and, for a redirect, its Contact.
    pub fn of(resp: &ezk_sip_core::transaction::TsxResponse) -> SendFailure {
        let code = resp.line.code.into_u16();
        let reason = resp
            .line
            .reason
            .as_ref()
            .map(|r| r.to_string())
            .unwrap_or_default();
        let contact = resp
            .headers
            .get_raw(&Name::CONTACT)
            .next()
            .map(|c| c.to_string());
        SendFailure::Response {
            status: if reason.is_empty() {
                SipStatus::new(code)
            } else {
                SipStatus::with_reason(code, reason)
            },
            contact,
        }
    }
}

/// Sends requests through the endpoint with the configured routing.
#[derive(Clone)]
pub struct SipClient {
    endpoint: Endpoint,
    /// Shared by every clone, so a reload reaches conversations and sessions already running.
    routing: std::sync::Arc<std::sync::RwLock<Routing>>,
    contact_host: String,
    component: String,
}

/// Static routes (lower-case domain -> hop) and the outbound proxy.
#[derive(Debug, Default)]
struct Routing {
    routes: BTreeMap<String, String>,
    outbound_proxy: Option<String>,
}

impl Routing {
    fn new(routes: BTreeMap<String, String>, outbound_proxy: Option<String>) -> Routing {
        let routes = routes
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect();
        Routing {
            routes,
            outbound_proxy,
        }
    }
}

impl std::fmt::Debug for SipClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SipClient")
            .field("routing", &self.routing)
            .finish()
    }
}

/// A MESSAGE on its way: the transaction is created (the request left in order), the final
/// response is awaited separately so a slow peer does not hold up the next message.
pub struct PendingSend {
    tsx: ezk_sip_core::transaction::ClientTsx,
}

impl PendingSend {
    /// Wait for the final response.
    pub async fn finish(mut self) -> Result<(), SendFailure> {
        // ezk's transaction does not notice its connection dying: a peer that resets TCP
        // after taking the request would leave the sender waiting for Timer F (32 s). RFC 3261
        // §8.1.3.1 treats a transport error like a 503, so the connection's state decides too.
        let mut state = self.tsx.request().parts.transport.watch_state();
        let lost = async move {
            loop {
                if matches!(*state.borrow_and_update(), TransportState::Closed(_)) {
                    return;
                }
                if state.changed().await.is_err() {
                    // No sender: UDP, or a transport gone without a word; Timer F decides.
                    std::future::pending::<()>().await;
                }
            }
        };
        let result = tokio::select! {
            r = self.tsx.receive_final() => r,
            () = lost => {
                crate::ops::metrics::get().sip(crate::ops::metrics::Dir::Out, "MESSAGE", 503);
                debug!("connection lost before the final response");
                return Err(SendFailure::Response {
                    status: SipStatus::with_reason(503, "Service Unavailable (connection lost)"),
                    contact: None,
                });
            }
        };
        crate::ops::metrics::get().sip(
            crate::ops::metrics::Dir::Out,
            "MESSAGE",
            result.as_ref().map_or(0, |r| r.line.code.into_u16()),
        );
        match result {
            Ok(resp) => {
                let code = resp.line.code.into_u16();
                if (200..300).contains(&code) {
                    return Ok(());
                }
                Err(SendFailure::of(&resp))
            }
            Err(e) => {
                debug!(error = ?e, "MESSAGE transaction failed");
                Err(SendFailure::Timeout)
            }
        }
    }
}

impl SipClient {
    /// `contact_host` is `ip:port` (plus `;transport=tcp` if only TCP listens) where the
    /// gateway is reachable.
    pub fn new(
        endpoint: Endpoint,
        routes: BTreeMap<String, String>,
        outbound_proxy: Option<String>,
        contact_host: String,
        component: String,
    ) -> Self {
        SipClient {
            endpoint,
            routing: std::sync::Arc::new(std::sync::RwLock::new(Routing::new(
                routes,
                outbound_proxy,
            ))),
            contact_host,
            component,
        }
    }

    /// The endpoint requests go through.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// `ip:port` (plus transport) of our Contact URIs.
    pub fn contact_host(&self) -> &str {
        &self.contact_host
    }

    /// The next hop for a Request-URI host: static route, outbound proxy, or the URI itself.
    pub fn next_hop(&self, host: &str, request_uri: &str) -> String {
        // A poisoned lock only means a panic elsewhere while replacing the table; the table
        // itself is always whole, so keep using it.
        let r = self
            .routing
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        r.routes
            .get(&host.to_ascii_lowercase())
            .or(r.outbound_proxy.as_ref())
            .cloned()
            .unwrap_or_else(|| request_uri.to_string())
    }

    /// Replace the routes and the outbound proxy (configuration reload). Requests already
    /// sent keep their hop; every later one uses the new table.
    pub fn set_routes(&self, routes: BTreeMap<String, String>, outbound_proxy: Option<String>) {
        let mut r = self
            .routing
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *r = Routing::new(routes, outbound_proxy);
    }

    /// Put a request on the wire toward `hop` (TCP when `size` is over the UDP limit and the
    /// hop names no transport, TLS for a `sips:` hop: [`super::tls::hop_with_transport`]) and
    /// return its client transaction. `Err` says why the hop could not be reached.
    pub async fn transmit(
        &self,
        request: Request,
        hop: String,
        size: usize,
    ) -> Result<ezk_sip_core::transaction::ClientTsx, String> {
        let hop = super::tls::hop_with_transport(&hop, size, UDP_LIMIT)?;
        let hop_uri: SipUri = super::parse_uri(&hop)?;
        let transport = self
            .endpoint
            .select_transport(&hop_uri)
            .await
            .map_err(|e| format!("{hop}: {e:?}"))?;
        let mut target = TargetTransportInfo {
            transport: Some(transport),
            ..Default::default()
        };
        self.endpoint
            .send_request(request, &mut target)
            .await
            .map_err(|e| format!("{hop}: {e:?}"))
    }

    /// The Contact URI for a local user (see [`contact_uri`]).
    pub fn contact_uri(&self, user: &str, gr: Option<&str>) -> String {
        contact_uri(user, &self.contact_host, gr)
    }

    /// Send a MESSAGE; returns once the request is on the wire.
    pub async fn start_message(&self, m: &SipMessageOut) -> Result<PendingSend, SendFailure> {
        let ruri_text = m.request_uri.to_uri();
        let ruri = super::parse_uri(&ruri_text).map_err(SendFailure::Unreachable)?;
        let from = super::parse_uri(&m.from.aor()).map_err(SendFailure::Unreachable)?;
        let to = super::parse_uri(&m.to.aor()).map_err(SendFailure::Unreachable)?;
        let contact_text = self.contact_uri(
            m.contact.user.as_deref().unwrap_or(""),
            m.contact.gr.as_deref(),
        );
        let contact = super::parse_uri(&contact_text).map_err(SendFailure::Unreachable)?;

        let mut headers = Headers::new();
        headers.insert_named(&MaxForwards(70));
        headers.insert_type(
            Name::FROM,
            &FromTo::new(
                NameAddr::uri(from),
                Some(BytesStr::from(super::inbound::random_token())),
            ),
        );
        headers.insert_type(Name::TO, &FromTo::new(NameAddr::uri(to), None));
        let call_id = m
            .call_id
            .clone()
            .unwrap_or_else(|| format!("{}@{}", super::inbound::random_token(), self.component));
        headers.insert_named(&CallID::new(BytesStr::from(call_id)));
        headers.insert_named(&CSeq {
            cseq: 1,
            method: Method::MESSAGE,
        });
        headers.insert_named(&Contact::new(NameAddr::uri(contact)));
        if let Some(s) = &m.subject {
            headers.insert(Name::SUBJECT, s.as_str());
        }
        if let Some(l) = &m.content_language {
            headers.insert(Name::CONTENT_LANGUAGE, l.as_str());
        }
        headers.insert_named(&ContentType(BytesStr::from(m.content_type.clone())));
        let request = Request {
            line: RequestLine {
                method: Method::MESSAGE,
                uri: ruri,
            },
            headers,
            body: m.body.clone().into(),
        };

        // Estimate the wire size: body plus headers plus the Via ezk adds.
        let size = m.body.len() + m.subject.as_ref().map_or(0, |s| s.len()) + 600;
        let hop = self.next_hop(&m.request_uri.host, &ruri_text);
        trace!(target: "wire::sip", ruri = %ruri_text, hop = %hop, "-> MESSAGE");
        let tsx = self
            .transmit(request, hop, size)
            .await
            .map_err(SendFailure::Unreachable)?;
        Ok(PendingSend { tsx })
    }
}
