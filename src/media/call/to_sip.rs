//! X calls S (X is the Jingle initiator), and the SIP events shared by both shapes.

use super::*;
use crate::media::jingle;

impl Call {
    /// X sent session-initiate (IQ `id`, from X's full JID `from`) to S's full JID `to`.
    /// The call acknowledges it and, once the candidates are in, sends the INVITE.
    pub fn from_jingle(
        settings: Settings,
        id: &str,
        from: &str,
        to: &str,
        j: &Element,
    ) -> (Call, Vec<Output>) {
        let sid = j.attr("sid").unwrap_or("");
        let mut call = Call::new(settings, Role::Initiator, sid, from, to, State::Gathering);
        let mut out = Vec::new();
        if sid.is_empty() || sid.len() > 256 {
            out.push(call.error(id, from, DefinedCondition::BadRequest, None));
            call.end(Reason::FailedApplication, &mut out);
            return (call, out);
        }
        match jingle::read_contents(j, Kind::Offer) {
            Err(e) if e.is_malformed() => {
                tracing::debug!(error = %e, "session-initiate refused");
                out.push(call.error(id, from, DefinedCondition::BadRequest, None));
                call.end(e.jingle_reason(), &mut out);
            }
            Err(e) => {
                out.push(call.result(id, from));
                call.terminate(e.jingle_reason(), &mut out);
            }
            Ok(desc) => {
                out.push(call.result(id, from));
                call.layout = sdp_layout(&desc);
                call.x_desc = Some(desc);
                if call.gathered() {
                    call.x_description_ready(&mut out);
                } else {
                    out.push(Output::Start(Timer::Gather, call.settings.gather));
                }
            }
        }
        call.flush_media(&mut out);
        (call, out)
    }

    /// X's description is complete: the INVITE (X calls S) or the 200 (S calls X).
    pub(super) fn x_description_ready(&mut self, out: &mut Vec<Output>) {
        let Some(desc) = self.x_desc.clone() else {
            return;
        };
        match self.state {
            State::Gathering => match self.x_sdp(&desc, Kind::Offer, None) {
                Ok(sdp) => {
                    self.state = State::Inviting {
                        rung: false,
                        early: None,
                    };
                    out.push(Output::Sip(SipOut::Invite(sdp)));
                }
                Err(e) => {
                    tracing::debug!(error = %e, "no INVITE for this offer");
                    self.terminate(e.jingle_reason(), out);
                }
            },
            State::Answering => {
                let layout = self.layout.clone();
                match self.x_sdp(&desc, Kind::Answer, Some(&layout)) {
                    Ok(sdp) => {
                        self.state = State::Active;
                        out.push(Output::Sip(SipOut::Answer(sdp)));
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "no SDP answer for this session-accept");
                        out.push(Output::Sip(SipOut::Reject(488)));
                        self.terminate(e.jingle_reason(), out);
                    }
                }
            }
            _ => {}
        }
    }

    pub(super) fn on_timer(&mut self, t: Timer, out: &mut Vec<Output>) {
        match (t, &self.state) {
            (Timer::Gather, State::Active) if std::mem::take(&mut self.restart_pending) => {
                if let Some(d) = self.x_desc.as_mut() {
                    d.contents
                        .iter_mut()
                        .for_each(|c| c.transport.end_of_candidates = true);
                }
                self.reinvite(out);
            }
            (Timer::Gather, State::Gathering | State::Answering) => {
                // MEDIA-3: what has trickled in by now is what the SIP side gets.
                if let Some(d) = self.x_desc.as_mut() {
                    d.contents
                        .iter_mut()
                        .for_each(|c| c.transport.end_of_candidates = true);
                }
                self.x_description_ready(out);
            }
            (Timer::Ring, State::Proposed) => {
                let bare = self.x_jid.clone();
                let children = vec![stanza::reason(Reason::Timeout)];
                out.push(Output::Xmpp(stanza::jmi(
                    "retract",
                    &self.sid,
                    &self.s_jid,
                    &bare,
                    children,
                )));
                out.push(Output::Sip(SipOut::Reject(480)));
                self.end(Reason::Timeout, out);
            }
            (Timer::Ring, State::Initiated) => {
                out.push(Output::Sip(SipOut::Reject(480)));
                self.terminate(Reason::Timeout, out);
            }
            _ => {}
        }
    }

    pub(super) fn on_sip(&mut self, ev: SipIn, out: &mut Vec<Output>) {
        match ev {
            SipIn::Provisional {
                code,
                sdp,
                reliable,
            } => {
                let State::Inviting { rung, .. } = self.state else {
                    return;
                };
                if code > 100 && !rung {
                    // MEDIA-22: one ringing whatever the forks send.
                    self.send_jingle("session-info", vec![stanza::info_payload("ringing")], out);
                }
                // MEDIA-17: the SDP of a reliable provisional is the answer.
                let early = match (reliable, sdp) {
                    (true, Some(body)) => self
                        .read_s_sdp(&body, Kind::Answer)
                        .ok()
                        .map(|r| r.description),
                    _ => None,
                };
                if let State::Inviting { rung, early: e } = &mut self.state {
                    *rung |= code > 100;
                    if early.is_some() {
                        *e = early;
                    }
                }
            }
            SipIn::Answered { sdp } => {
                let State::Inviting { early, .. } = &self.state else {
                    return;
                };
                let early = early.clone();
                let desc = if sdp.is_empty() {
                    early.ok_or_else(|| {
                        MediaError::Malformed("2xx without SDP and no earlier answer".into())
                    })
                } else {
                    self.read_s_sdp(&sdp, Kind::Answer).map(|r| r.description)
                };
                match desc {
                    Ok(_) if self.s_answer_unusable => {
                        out.push(Output::Sip(SipOut::Ack));
                        out.push(Output::Sip(SipOut::Bye));
                        if self.fallback_direct() {
                            self.x_description_ready(out)
                        } else {
                            self.terminate(Reason::IncompatibleParameters, out)
                        }
                    }
                    Ok(desc) => {
                        let children = jingle::render(&desc, Role::Initiator);
                        self.s_desc = Some(desc);
                        let iq = self.send_jingle("session-accept", children, out);
                        self.state = State::Accepting { iq };
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "SIP answer refused");
                        out.push(Output::Sip(SipOut::Ack));
                        out.push(Output::Sip(SipOut::Bye));
                        self.terminate(Reason::IncompatibleParameters, out);
                    }
                }
            }
            SipIn::Failed { code } => match self.state {
                State::Inviting { .. } => {
                    if self.retry_through_relay(code)
                        || self.retry_other_srtp(code)
                        || self.retry_direct(code)
                    {
                        self.x_description_ready(out)
                    } else {
                        self.terminate(Reason::from_sip(code), out)
                    }
                }
                _ => tracing::debug!(code, "late final response ignored"),
            },
            SipIn::Bye => {
                if matches!(self.state, State::Accepting { .. }) {
                    out.push(Output::Sip(SipOut::Ack));
                }
                self.terminate(Reason::Success, out);
            }
            SipIn::Cancelled => self.on_cancelled(out),
            SipIn::ReInvite { sdp } => {
                if self.state == State::Active && !self.reinvite_out {
                    self.on_s_reinvite(&sdp, out);
                } else {
                    // RFC 3261 §14.2: an offer while ours is pending, or before the call is up.
                    out.push(Output::Sip(SipOut::AnswerReInvite(Err(491))));
                }
            }
            SipIn::ReInviteAnswer(r) => self.on_reinvite_answer(r, out),
        }
    }

    pub(super) fn on_iq_response(&mut self, id: &str, ok: bool, out: &mut Vec<Output>) {
        match &self.state {
            State::Accepting { iq } if iq == id => {
                // MEDIA-7: the ACK goes once X has taken the answer.
                out.push(Output::Sip(SipOut::Ack));
                if ok {
                    self.state = State::Active;
                } else {
                    out.push(Output::Sip(SipOut::Bye));
                    self.end(Reason::FailedApplication, out);
                }
            }
            State::Initiated if !ok && self.initiate_iq.as_deref() == Some(id) => {
                out.push(Output::Sip(SipOut::Reject(480)));
                self.end(Reason::FailedApplication, out);
            }
            _ => {}
        }
    }

    /// The gateway stops: the SIP side gets what ends the dialog in its state (CANCEL,
    /// BYE, or 503 to an INVITE not yet answered), X gets a retract or session-terminate.
    /// The gateway ends the call with `reason` (stopping, or the media stopped).
    pub(super) fn hang_up(&mut self, reason: Reason, out: &mut Vec<Output>) {
        match self.state {
            State::Proposed => {
                let bare = self.x_jid.clone();
                let children = vec![stanza::reason(reason)];
                out.push(Output::Xmpp(stanza::jmi(
                    "retract",
                    &self.sid,
                    &self.s_jid,
                    &bare,
                    children,
                )));
                out.push(Output::Sip(SipOut::Reject(503)));
                self.end(reason, out);
            }
            State::Ended => {}
            _ => {
                let sip = match self.state {
                    State::Inviting { .. } => vec![SipOut::Cancel],
                    State::Accepting { .. } => vec![SipOut::Ack, SipOut::Bye],
                    State::Active => vec![SipOut::Bye],
                    State::Initiated | State::Answering => vec![SipOut::Reject(503)],
                    _ => vec![],
                };
                // X hears first: a SIP party that no longer answers (the media timeout's
                // usual cause) can hold the BYE for seconds.
                self.send_jingle("session-terminate", vec![reason.to_element(None)], out);
                out.extend(sip.into_iter().map(Output::Sip));
                self.end(reason, out);
            }
        }
    }

    /// X ended the session with `reason`.
    pub(super) fn x_terminated(&mut self, reason: Reason, out: &mut Vec<Output>) {
        match self.state {
            State::Inviting { .. } => out.push(Output::Sip(SipOut::Cancel)),
            State::Accepting { .. } => {
                out.push(Output::Sip(SipOut::Ack));
                out.push(Output::Sip(SipOut::Bye));
            }
            State::Active => out.push(Output::Sip(SipOut::Bye)),
            // MEDIA-23 reverse: the responder's reason is the SIP refusal.
            State::Proposed | State::Initiated | State::Answering => {
                let code = reason.to_sip().unwrap_or(603);
                out.push(Output::Sip(SipOut::Reject(code)));
            }
            State::Gathering | State::Ended => {}
        }
        self.end(reason, out);
    }
}
