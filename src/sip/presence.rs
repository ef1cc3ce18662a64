//! SIP wire side of presence dialogs (RFC 6665, RFC 3261 §12): reads SUBSCRIBE/NOTIFY into
//! the engine's plain shapes, sends the engine's requests and answers its held transactions.
//! No presence decision is made here.

use super::inbound::Responder;
use super::outbound::{contact_uri, SipClient};
use crate::presence::subscription::{OutRequest, Respond, SipRequestIn, SipResponseIn};
use bytesstr::BytesStr;
use ezk_sip_core::{IncomingRequest, Request};
use ezk_sip_types::header::typed::{CSeq, CallID, Contact, FromTo, MaxForwards};
use ezk_sip_types::msg::RequestLine;
use ezk_sip_types::print::AppendCtx;
use ezk_sip_types::uri::NameAddr;
use ezk_sip_types::{Headers, Method, Name};
use tracing::{debug, trace};

/// The header a name stands for (the engine speaks names; ezk wants [`Name`]s).
pub fn header_name(name: &'static str) -> Name {
    match name {
        "Event" => Name::EVENT,
        "Expires" => Name::EXPIRES,
        "Accept" => Name::ACCEPT,
        "Subscription-State" => Name::SUBSCRIPTION_STATE,
        "Content-Type" => Name::CONTENT_TYPE,
        "Content-Language" => Name::CONTENT_LANGUAGE,
        "Min-Expires" => Name::MIN_EXPIRES,
        "Allow-Events" => Name::ALLOW_EVENTS,
        "Retry-After" => Name::RETRY_AFTER,
        other => Name::unknown(BytesStr::from_static(other)),
    }
}

fn raw(req: &IncomingRequest, name: &Name) -> Option<String> {
    let v: Vec<String> = req.headers.get_raw(name).map(|v| v.to_string()).collect();
    (!v.is_empty()).then(|| v.join(", "))
}

/// Splits a header value list at commas outside `<...>` and quotes.
pub fn split_list(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let (mut angle, mut quote) = (false, false);
    for c in value.chars() {
        match c {
            '<' if !quote => angle = true,
            '>' if !quote => angle = false,
            '"' => quote = !quote,
            ',' if !angle && !quote => {
                out.push(std::mem::take(&mut cur).trim().to_string());
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

/// The URI of a name-addr (`"x" <sip:a@b;lr>;p=1` -> `sip:a@b;lr`) or addr-spec (`sip:a@b;p=1`
/// -> `sip:a@b`, RFC 3261 §20: without brackets, parameters belong to the header).
pub fn uri_of(value: &str) -> Option<String> {
    let v = value.trim();
    if let Some(start) = v.find('<') {
        let rest = &v[start + 1..];
        let end = rest.find('>')?;
        return Some(rest[..end].trim().to_string());
    }
    let uri = v.split(';').next()?.trim();
    (!uri.is_empty()).then(|| uri.to_string())
}

fn route_list(req_headers: &Headers) -> Vec<String> {
    req_headers
        .get_raw(&Name::RECORD_ROUTE)
        .flat_map(|v| split_list(v))
        .filter_map(|v| uri_of(&v).map(|u| format!("<{u}>")))
        .collect()
}

/// An inbound SUBSCRIBE/NOTIFY as the engine's [`SipRequestIn`].
pub fn extract(req: &IncomingRequest) -> SipRequestIn {
    SipRequestIn {
        method: req.line.method.to_string(),
        request_uri: req.line.uri.default_print_ctx().to_string(),
        from_uri: req
            .base_headers
            .from
            .uri
            .uri
            .default_print_ctx()
            .to_string(),
        from_tag: req.base_headers.from.tag.as_ref().map(|t| t.to_string()),
        to_uri: req.base_headers.to.uri.uri.default_print_ctx().to_string(),
        to_tag: req.base_headers.to.tag.as_ref().map(|t| t.to_string()),
        call_id: req.base_headers.call_id.0.to_string(),
        cseq: req.base_headers.cseq.cseq,
        contact: raw(req, &Name::CONTACT)
            .and_then(|c| split_list(&c).into_iter().next())
            .and_then(|c| uri_of(&c)),
        record_route: route_list(&req.headers),
        event: raw(req, &Name::EVENT),
        expires: raw(req, &Name::EXPIRES),
        accept: raw(req, &Name::ACCEPT),
        subscription_state: raw(req, &Name::SUBSCRIPTION_STATE),
        content_type: raw(req, &Name::CONTENT_TYPE),
        content_language: raw(req, &Name::CONTENT_LANGUAGE),
        body: req.body.to_vec(),
    }
}

impl Responder {
    /// Answer with the engine's [`Respond`]; `contact_host` completes a Contact header.
    pub async fn respond_presence(self, r: Respond, contact_host: &str) {
        let contact = r
            .contact_user
            .as_ref()
            .map(|u| contact_uri(u, contact_host, None));
        let headers = r
            .headers
            .iter()
            .map(|(n, v)| (header_name(n), v.clone()))
            .collect();
        self.respond_with(&r.status, r.to_tag, contact, headers)
            .await;
    }
}

impl SipClient {
    /// Send one of the engine's requests and wait for its final response. Failures to send
    /// become 503, no answer 408, so the engine has one shape to handle.
    pub async fn send_presence(&self, r: &OutRequest) -> SipResponseIn {
        match self.try_send_presence(r).await {
            Ok(resp) => resp,
            Err(code) => SipResponseIn {
                code,
                ..Default::default()
            },
        }
    }

    async fn try_send_presence(&self, r: &OutRequest) -> Result<SipResponseIn, u16> {
        let method = match r.method {
            crate::presence::subscription::OutMethod::Subscribe => Method::SUBSCRIBE,
            crate::presence::subscription::OutMethod::Notify => Method::NOTIFY,
        };
        let parse = |s: &str| {
            super::parse_uri(s).map_err(|e| {
                debug!(uri = s, error = e, "presence request with a bad URI");
                503u16
            })
        };
        let ruri = parse(&r.request_uri)?;
        let from = parse(&r.local_uri)?;
        let to = parse(&r.remote_uri)?;
        let contact = parse(&self.contact_uri(&r.contact_user, None))?;
        let mut headers = Headers::new();
        headers.insert_named(&MaxForwards(70));
        headers.insert_type(
            Name::FROM,
            &FromTo::new(
                NameAddr::uri(from),
                Some(BytesStr::from(r.local_tag.clone())),
            ),
        );
        headers.insert_type(
            Name::TO,
            &FromTo::new(NameAddr::uri(to), r.remote_tag.clone().map(BytesStr::from)),
        );
        headers.insert_named(&CallID::new(BytesStr::from(r.call_id.clone())));
        headers.insert_named(&CSeq {
            cseq: r.cseq,
            method: method.clone(),
        });
        headers.insert_named(&Contact::new(NameAddr::uri(contact)));
        for route in &r.route_set {
            headers.insert(Name::ROUTE, route.clone());
        }
        for (n, v) in &r.headers {
            headers.insert(header_name(n), v.clone());
        }
        let request = Request {
            line: RequestLine {
                method: method.clone(),
                uri: ruri,
            },
            headers,
            body: r.body.clone().into(),
        };
        // RFC 3261 §12.2.1.1: in a dialog, the first Route (loose routing) or the remote
        // target; a new dialog follows the configured routing like a MESSAGE.
        let hop = match r.route_set.first() {
            Some(route) => uri_of(route).unwrap_or_default(),
            None if r.initial => {
                let host = crate::addr::SipAddr::parse(&r.request_uri)
                    .map(|a| a.host)
                    .unwrap_or_default();
                self.next_hop(&host, &r.request_uri)
            }
            None => r.request_uri.clone(),
        };
        trace!(target: "wire::sip", method = %method, ruri = %r.request_uri, hop = %hop, call_id = %r.call_id, "-> request");
        let mut tsx = self
            .transmit(request, hop, r.body.len() + 700)
            .await
            .map_err(|e| {
                debug!(error = e, "presence request not sent");
                503u16
            })?;
        let resp = tsx.receive_final().await;
        crate::ops::metrics::get().sip(
            crate::ops::metrics::Dir::Out,
            &method.to_string(),
            resp.as_ref().map_or(0, |r| r.line.code.into_u16()),
        );
        let resp = resp.map_err(|_| 408u16)?;
        let get = |n: &Name| {
            let v: Vec<String> = resp.headers.get_raw(n).map(|v| v.to_string()).collect();
            (!v.is_empty()).then(|| v.join(", "))
        };
        Ok(SipResponseIn {
            code: resp.line.code.into_u16(),
            to_tag: resp.base_headers.to.tag.as_ref().map(|t| t.to_string()),
            contact: get(&Name::CONTACT)
                .and_then(|c| split_list(&c).into_iter().next())
                .and_then(|c| uri_of(&c)),
            record_route: route_list(&resp.headers),
            expires: get(&Name::EXPIRES),
            min_expires: get(&Name::MIN_EXPIRES),
            retry_after: get(&Name::RETRY_AFTER),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_list_keeps_commas_inside_brackets_and_quotes() {
        assert_eq!(
            split_list(r#"<sip:a@b;lr>, "x, y" <sip:c@d>,sip:e@f"#),
            vec!["<sip:a@b;lr>", r#""x, y" <sip:c@d>"#, "sip:e@f"]
        );
        assert!(split_list("").is_empty());
    }

    #[test]
    fn uri_of_name_addr_and_addr_spec() {
        assert_eq!(
            uri_of("<sip:p1.example.com;lr>").as_deref(),
            Some("sip:p1.example.com;lr")
        );
        assert_eq!(
            uri_of(r#""Bob" <sip:bob@h:5060;transport=tcp>;expires=3"#).as_deref(),
            Some("sip:bob@h:5060;transport=tcp")
        );
        assert_eq!(uri_of("sip:bob@h;expires=3").as_deref(), Some("sip:bob@h"));
        assert_eq!(uri_of("<sip:unclosed").as_deref(), None);
        assert_eq!(uri_of("").as_deref(), None);
    }
}
