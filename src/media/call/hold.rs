//! Changes to an established call: hold/unhold and senders from X become a re-INVITE
//! written on X's behalf (MEDIA-15); a re-INVITE from S becomes content-modify and is
//! answered from X's last description (MEDIA-16).

use super::*;

impl Call {
    pub(super) fn on_session_info(
        &mut self,
        id: &str,
        from: &str,
        j: &Element,
        out: &mut Vec<Output>,
    ) {
        let payload = j
            .children()
            .find(|c| c.ns() == stanza::NS_RTP_INFO)
            .map(|c| c.name().to_owned());
        match payload.as_deref() {
            None | Some("ringing" | "active" | "mute" | "unmute") => {
                out.push(self.result(id, from))
            }
            Some(p @ ("hold" | "unhold")) => {
                out.push(self.result(id, from));
                // MEDIA-15: hold = every stream sendonly from X; unhold = sendrecv.
                let own = match self.x_role {
                    Role::Initiator => Senders::Initiator,
                    Role::Responder => Senders::Responder,
                };
                let senders = if p == "hold" { own } else { Senders::Both };
                if let Some(d) = self.x_desc.as_mut() {
                    d.contents.iter_mut().for_each(|c| c.senders = senders);
                }
                self.reinvite(out);
            }
            Some(_) => out.push(self.error(
                id,
                from,
                DefinedCondition::FeatureNotImplemented,
                Some("unsupported-info"),
            )),
        }
    }

    pub(super) fn on_content_modify(
        &mut self,
        id: &str,
        from: &str,
        j: &Element,
        out: &mut Vec<Output>,
    ) {
        let mut changes = Vec::new();
        for c in j.children().filter(|c| c.name() == "content") {
            let (Some(name), Some(s)) =
                (c.attr("name"), c.attr("senders").and_then(Senders::parse))
            else {
                out.push(self.error(id, from, DefinedCondition::BadRequest, None));
                return;
            };
            changes.push((name.to_owned(), s));
        }
        let Some(d) = self.x_desc.as_mut() else {
            out.push(self.error(
                id,
                from,
                DefinedCondition::UnexpectedRequest,
                Some("out-of-order"),
            ));
            return;
        };
        if changes
            .iter()
            .any(|(n, _)| !d.contents.iter().any(|c| &c.name == n))
        {
            out.push(self.error(id, from, DefinedCondition::BadRequest, None));
            return;
        }
        for (n, s) in changes {
            d.contents
                .iter_mut()
                .filter(|c| c.name == n)
                .for_each(|c| c.senders = s);
        }
        out.push(self.result(id, from));
        self.reinvite(out);
    }

    /// A re-INVITE carrying X's current description (MEDIA-15), once the call is up.
    pub(super) fn reinvite(&mut self, out: &mut Vec<Output>) {
        if self.state != State::Active {
            return;
        }
        if self.reinvite_out {
            self.reinvite_again = true;
            return;
        }
        let Some(desc) = self.x_desc.clone() else {
            return;
        };
        match self.x_sdp(&desc, Kind::Offer, None) {
            Ok(sdp) => {
                self.layout = sdp_layout(&desc);
                self.reinvite_out = true;
                out.push(Output::Sip(SipOut::ReInvite(sdp)));
            }
            Err(e) => tracing::debug!(error = %e, "no re-INVITE for this change"),
        }
    }

    pub(super) fn on_reinvite_answer(&mut self, r: Result<Vec<u8>, u16>, out: &mut Vec<Output>) {
        self.reinvite_out = false;
        if let Ok(sdp) = r {
            if let Ok(read) = self.read_s_sdp(&sdp, Kind::Answer) {
                self.s_desc = Some(read.description);
            }
        }
        if std::mem::take(&mut self.reinvite_again) {
            self.reinvite(out);
        }
    }

    /// MEDIA-16: S's new offer -> content-modify for each stream whose direction changed,
    /// answered from X's description with the offered directions.
    pub(super) fn on_s_reinvite(&mut self, sdp: &[u8], out: &mut Vec<Output>) {
        let read = self.read_s_sdp(sdp, Kind::Offer);
        let (Ok(read), Some(mut answer)) = (read, self.x_desc.clone()) else {
            out.push(Output::Sip(SipOut::AnswerReInvite(Err(488))));
            return;
        };
        for c in &read.description.contents {
            // MEDIA-4, 12: new ICE credentials from S are a restart: X gets S's new transport
            // (the next generation) in a transport-info.
            let old_ice = self
                .s_desc
                .as_ref()
                .and_then(|d| d.contents.iter().find(|o| o.name == c.name))
                .map(|o| o.transport.ice.clone());
            if c.transport.ice.is_some() && old_ice.is_some_and(|o| o != c.transport.ice) {
                let el = Element::builder("content", xmpp_parsers::ns::JINGLE)
                    .a("creator", "initiator")
                    .a("name", c.name.as_str())
                    .append(crate::media::jingle::render_transport(&c.transport))
                    .build();
                self.send_jingle("transport-info", vec![el], out);
            }
            let Some(mine) = answer.contents.iter_mut().find(|m| m.name == c.name) else {
                continue;
            };
            if mine.senders != c.senders {
                mine.senders = c.senders;
                // Every content came with the session-initiate, so its creator is the
                // initiator whichever side X is.
                let el = Element::builder("content", xmpp_parsers::ns::JINGLE)
                    .a("creator", "initiator")
                    .a("name", c.name.as_str())
                    .a("senders", c.senders.as_str())
                    .build();
                self.send_jingle("content-modify", vec![el], out);
            }
        }
        match self.x_sdp(&answer, Kind::Answer, Some(&read.lines)) {
            Ok(body) => {
                self.x_desc = Some(answer);
                self.s_desc = Some(read.description);
                out.push(Output::Sip(SipOut::AnswerReInvite(Ok(body))));
            }
            Err(e) => {
                tracing::debug!(error = %e, "re-INVITE refused");
                out.push(Output::Sip(SipOut::AnswerReInvite(Err(488))));
            }
        }
    }
}
