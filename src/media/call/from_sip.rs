//! S calls X (S is the Jingle initiator, through the gateway): XEP-0353 ringing and the
//! Jingle session to the resource that proceeds (MEDIA-25).

use super::*;
use crate::media::jingle;
use crate::xmpp::xml::BuilderExt;
use xmpp_parsers::ns;

impl Call {
    /// S sent an INVITE with `sdp` to X (bare JID `x_bare`); the call appears to X as
    /// coming from `s_jid` with Jingle session id `sid`.
    pub fn from_invite(
        settings: Settings,
        sid: &str,
        s_jid: &str,
        x_bare: &str,
        sdp: &[u8],
    ) -> (Call, Vec<Output>) {
        let mut call = Call::new(
            settings,
            Role::Responder,
            sid,
            x_bare,
            s_jid,
            State::Proposed,
        );
        let mut out = Vec::new();
        match call.read_s_sdp(sdp, Kind::Offer) {
            Err(e) => {
                tracing::debug!(error = %e, "INVITE offer refused");
                out.push(Output::Sip(SipOut::Reject(e.sip_status().code)));
                call.end(e.jingle_reason(), &mut out);
            }
            Ok(read) => {
                let descriptions = read
                    .description
                    .contents
                    .iter()
                    .map(|c| {
                        Element::builder("description", ns::JINGLE_RTP)
                            .a("media", c.media.as_str())
                            .build()
                    })
                    .collect();
                call.layout = read.lines;
                call.s_desc = Some(read.description);
                out.push(Output::Sip(SipOut::Ringing));
                out.push(Output::Xmpp(stanza::jmi(
                    "propose",
                    sid,
                    s_jid,
                    x_bare,
                    descriptions,
                )));
                out.push(Output::Start(Timer::Ring, call.settings.ring));
            }
        }
        call.flush_media(&mut out);
        (call, out)
    }

    pub(super) fn on_jmi(&mut self, from: &str, el: &Element, out: &mut Vec<Output>) {
        if self.state != State::Proposed || el.attr("id") != Some(self.sid.as_str()) {
            return;
        }
        // Only a device of the called user may pick the call up.
        let Some((bare, resource)) = from.split_once('/') else {
            return;
        };
        if bare != self.x_jid || resource.is_empty() {
            return;
        }
        match el.name() {
            "proceed" => {
                self.x_jid = from.to_owned();
                self.state = State::Initiated;
                let children = self
                    .s_desc
                    .as_ref()
                    .map(|d| jingle::render(d, Role::Initiator))
                    .unwrap_or_default();
                let iq = self.send_jingle("session-initiate", children, out);
                self.initiate_iq = Some(iq);
            }
            "reject" => {
                let reason = el
                    .children()
                    .find(|c| c.name() == "reason")
                    .map(Reason::from_element)
                    .unwrap_or(Reason::Decline);
                out.push(Output::Sip(SipOut::Reject(reason.to_sip().unwrap_or(603))));
                self.end(reason, out);
            }
            _ => {}
        }
    }

    pub(super) fn on_session_accept(
        &mut self,
        id: &str,
        from: &str,
        j: &Element,
        out: &mut Vec<Output>,
    ) {
        if self.state != State::Initiated {
            out.push(self.error(
                id,
                from,
                DefinedCondition::UnexpectedRequest,
                Some("out-of-order"),
            ));
            return;
        }
        match jingle::read_contents(j, Kind::Answer) {
            Ok(desc) => {
                out.push(self.result(id, from));
                self.x_desc = Some(desc);
                self.state = State::Answering;
                if self.gathered() {
                    self.x_description_ready(out);
                } else {
                    out.push(Output::Start(Timer::Gather, self.settings.gather));
                }
            }
            Err(e) => {
                if e.is_malformed() {
                    out.push(self.error(id, from, DefinedCondition::BadRequest, None));
                } else {
                    out.push(self.result(id, from));
                }
                out.push(Output::Sip(SipOut::Reject(488)));
                self.terminate(e.jingle_reason(), out);
            }
        }
    }

    /// S cancelled its INVITE.
    pub(super) fn on_cancelled(&mut self, out: &mut Vec<Output>) {
        match self.state {
            State::Proposed => {
                let bare = self.x_jid.clone();
                let children = vec![stanza::reason(Reason::Cancel)];
                out.push(Output::Xmpp(stanza::jmi(
                    "retract",
                    &self.sid,
                    &self.s_jid,
                    &bare,
                    children,
                )));
                self.end(Reason::Cancel, out);
            }
            State::Initiated | State::Answering => self.terminate(Reason::Cancel, out),
            _ => {}
        }
    }
}
