//! One call between an XMPP party (X, a Jingle client) and a SIP party (S), as a sans-IO
//! state machine after draft-ietf-stox-media §4-§11 (MEDIA-3, 7, 8, 15-18, 22-25): inputs
//! are the Jingle IQs and XEP-0353 messages from X, the SIP events of the INVITE dialog and
//! timers; outputs are stanzas ready to send, SIP actions for the dialog adapter, timers to
//! start and the end of the call. The session task owns one `Call` and does the I/O.
//!
//! Two shapes:
//! - X calls S ([`Call::from_jingle`], `to_sip.rs`): session-initiate -> INVITE once the
//!   candidates are gathered (MEDIA-3), the first provisional -> ringing (MEDIA-22), the 2xx
//!   -> session-accept and the ACK after its IQ result (MEDIA-7), a reliable 1xx answer kept
//!   for a 2xx without SDP (MEDIA-17).
//! - S calls X ([`Call::from_invite`], `from_sip.rs`): INVITE -> 180 and a XEP-0353
//!   propose to X's bare JID so every device rings (MEDIA-25); the proceeding resource
//!   gets session-initiate; session-accept -> 200 with the SDP answer.
//!
//! Both: hold/unhold and senders changes from X become a re-INVITE written on X's behalf
//! (MEDIA-15); a re-INVITE from S becomes content-modify (MEDIA-16) and is answered from X's
//! last description; terminate <-> BYE / CANCEL / final failure with MEDIA-23's reasons;
//! every Jingle request gets its result or the XEP-0166 §8 error (MEDIA-8).
//!
//! One deliberate deviation: MEDIA-22 reads the draft as sending `ringing` from S's bare JID.
//! Jingle clients match session IQs to the full JID they called and answer anything else
//! with `unknown-session`, so the machine uses the JID X addressed throughout; forks stay
//! hidden behind it, which is the point of MEDIA-22.

mod from_sip;
mod hold;
pub mod stanza;
mod to_sip;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_from_sip;
#[cfg(test)]
mod tests_ice;
#[cfg(test)]
mod tests_relay;

use super::ice::Generations;
use super::model::{Description, Kind, Role, Senders};
use super::reason::Reason;
use super::relay::{self, Anchor, MediaOut, Mode, Side};
use super::sdp::{self, MLine, SdpOrigin};
use super::MediaError;
use crate::errmap::XmppError;
use crate::xmpp::xml::BuilderExt;
use std::net::IpAddr;
use std::time::Duration;
use tokio_xmpp::minidom::Element;
use xmpp_parsers::stanza_error::DefinedCondition;

/// Settings shared by all calls.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long to wait for trickled candidates before writing SDP (MEDIA-3).
    pub gather: Duration,
    /// How long X's devices may ring before the SIP caller gets 480.
    pub ring: Duration,
    /// The gateway's address for `o=` lines.
    pub origin: IpAddr,
    /// The relay's ports for this call when media is anchored (`[media] mode = "relay"`):
    /// the first description decides whether the call uses them (see [`relay`]).
    pub anchor: Option<Anchor>,
}

/// What happens to a call.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// An IQ set with a `<jingle>` child from X.
    Jingle {
        /// The IQ id.
        id: String,
        /// The IQ's `from`.
        from: String,
        /// The `<jingle>` element.
        jingle: Element,
    },
    /// A XEP-0353 message from X (`proceed`, `reject`, `ringing`, ...): the child element.
    Jmi {
        /// The message's `from` (a full JID).
        from: String,
        /// The `urn:xmpp:jingle-message:0` child.
        el: Element,
    },
    /// The answer to an IQ this call sent.
    IqResponse {
        /// Its id.
        id: String,
        /// `type='result'` (true) or `type='error'`.
        ok: bool,
    },
    /// The SIP dialog.
    Sip(SipIn),
    /// A timer this call started has fired.
    Timer(Timer),
    /// The gateway is stopping: both sides are told the call is over.
    Shutdown,
    /// The relay saw no media on either leg for its timeout.
    MediaTimeout,
}

/// SIP events from the dialog adapter.
#[derive(Debug, Clone, PartialEq)]
pub enum SipIn {
    /// A 1xx to our INVITE (only the first is shown to X).
    Provisional {
        /// Status code.
        code: u16,
        /// Its SDP, if any.
        sdp: Option<Vec<u8>>,
        /// Sent reliably (100rel): its SDP is the answer (RFC 3262, MEDIA-17).
        reliable: bool,
    },
    /// The first 2xx to our INVITE (not ACKed yet).
    Answered {
        /// Its SDP (empty when it has none).
        sdp: Vec<u8>,
    },
    /// A final failure to our INVITE (a timeout is 408).
    Failed {
        /// Status code.
        code: u16,
    },
    /// S hung up (BYE, already answered).
    Bye,
    /// S's INVITE was cancelled (the adapter answered 487 and the CANCEL).
    Cancelled,
    /// A re-INVITE from S with its offer; the call answers with [`SipOut::AnswerReInvite`].
    ReInvite {
        /// The offer.
        sdp: Vec<u8>,
    },
    /// The answer to our re-INVITE: the SDP of the 2xx, or the failure code.
    ReInviteAnswer(Result<Vec<u8>, u16>),
}

/// SIP actions for the dialog adapter.
#[derive(Debug, Clone, PartialEq)]
pub enum SipOut {
    /// Send the INVITE with this offer.
    Invite(Vec<u8>),
    /// 180 Ringing to S's INVITE.
    Ringing,
    /// 200 OK with this answer to S's INVITE.
    Answer(Vec<u8>),
    /// Refuse S's INVITE.
    Reject(u16),
    /// CANCEL our INVITE.
    Cancel,
    /// ACK the 2xx.
    Ack,
    /// BYE.
    Bye,
    /// re-INVITE with this offer.
    ReInvite(Vec<u8>),
    /// Answer S's re-INVITE: 200 with SDP, or a failure code (the session is unchanged).
    AnswerReInvite(Result<Vec<u8>, u16>),
}

/// Timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// Candidate gathering (MEDIA-3).
    Gather,
    /// X's devices ringing.
    Ring,
}

/// What the session task must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Send this stanza.
    Xmpp(Element),
    /// Act on the SIP dialog.
    Sip(SipOut),
    /// Start (or restart) a timer.
    Start(Timer, Duration),
    /// Tell the media relay (anchored calls only).
    Media(MediaOut),
    /// The call is over; nothing more will come out.
    Ended(Reason),
}

#[derive(Debug, Clone, PartialEq)]
enum State {
    /// X->S: waiting for candidates before the INVITE.
    Gathering,
    /// X->S: INVITE sent.
    Inviting {
        rung: bool,
        early: Option<Description>,
    },
    /// X->S: session-accept sent, waiting for its result before the ACK.
    Accepting { iq: String },
    /// S->X: propose sent, devices ringing.
    Proposed,
    /// S->X: session-initiate sent to the proceeding resource.
    Initiated,
    /// S->X: session-accept received, waiting for candidates before the 200.
    Answering,
    /// Both sides connected.
    Active,
    /// Over.
    Ended,
}

/// One call.
#[derive(Debug)]
pub struct Call {
    settings: Settings,
    /// Which side is the Jingle initiator: X (calls S) or S.
    x_role: Role,
    sid: String,
    /// X's JID: bare until a resource proceeds (S->X), full otherwise.
    x_jid: String,
    /// S's full JID under the component.
    s_jid: String,
    state: State,
    /// X's last description (Jingle side).
    x_desc: Option<Description>,
    /// S's last description (SIP side).
    s_desc: Option<Description>,
    /// Plain relay mode: the side whose offer awaits its answer, and that offer (the answer
    /// settles its rtcp-mux).
    plain_offer: Option<(Side, Description)>,
    /// The m= lines of the SIP offer being answered (S->X) or of our offer's contents
    /// (X->S: their names, to name the answer's streams by position).
    layout: Vec<MLine>,
    sdp_version: u64,
    next_id: u64,
    /// A re-INVITE of ours is out; another change waits for its answer.
    reinvite_out: bool,
    reinvite_again: bool,
    generations: Generations,
    /// S->X: the id of our session-initiate IQ (an error to it ends the call).
    initiate_iq: Option<String>,
    /// The last SDP written for X, without its o= line.
    last_sdp: Option<String>,
    /// X restarted ICE during the call: a re-INVITE goes when the gather timer fires.
    restart_pending: bool,
    /// Whether the call's media is anchored: unknown until the first description, then
    /// fixed for the call.
    anchoring: Anchoring,
    /// What the relay is to be told, emitted ahead of the outputs that carry descriptions.
    media: Vec<MediaOut>,
    /// In [`Mode::IceX`], what the SIP side last said of SDES-SRTP: `None` before its first
    /// description, then its usable `a=crypto` line or none (plain RTP).
    s_sdes: Option<Option<relay::srtp::SdesKey>>,
    /// The relayed INVITE was refused once and sent again with the other SRTP choice.
    srtp_retried: bool,
    /// The XMPP caller's offer went to the SIP side as it is once already.
    tried_direct: bool,
    /// The SIP side answered a relayed offer with ICE or DTLS of its own (a phone that
    /// takes RTP/SAVP but means DTLS-SRTP): the relay cannot speak to it.
    s_answer_unusable: bool,
}

/// Whether a call's media goes through the relay.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Anchoring {
    /// Ports are held; the first description decides.
    Undecided(Anchor),
    /// Anchored on these ports, this way.
    On(Anchor, Mode),
    /// `auto`: the XMPP caller's offer went to the SIP side as it is; a refusal of it
    /// (488, 606) sends the INVITE again through the relay, an answer makes the call direct.
    TryDirect(Anchor),
    /// Direct.
    Off,
}

impl Call {
    /// The Jingle session id.
    pub fn sid(&self) -> &str {
        &self.sid
    }

    /// X's JID as the call knows it.
    pub fn xmpp_jid(&self) -> &str {
        &self.x_jid
    }

    /// Whether the call is over.
    pub fn ended(&self) -> bool {
        self.state == State::Ended
    }

    fn new(
        settings: Settings,
        x_role: Role,
        sid: &str,
        x_jid: &str,
        s_jid: &str,
        state: State,
    ) -> Call {
        let anchoring = match &settings.anchor {
            Some(a) => Anchoring::Undecided(a.clone()),
            None => Anchoring::Off,
        };
        Call {
            settings,
            x_role,
            sid: sid.to_owned(),
            x_jid: x_jid.to_owned(),
            s_jid: s_jid.to_owned(),
            state,
            x_desc: None,
            s_desc: None,
            plain_offer: None,
            layout: Vec::new(),
            sdp_version: 0,
            next_id: 0,
            reinvite_out: false,
            reinvite_again: false,
            generations: Generations::default(),
            initiate_iq: None,
            last_sdp: None,
            restart_pending: false,
            anchoring,
            media: Vec::new(),
            s_sdes: None,
            srtp_retried: false,
            tried_direct: false,
            s_answer_unusable: false,
        }
    }

    /// Feed one input.
    pub fn handle(&mut self, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        if self.state == State::Ended {
            if let Input::Jingle { id, from, .. } = input {
                out.push(self.unknown_session(&id, &from));
            }
            return out;
        }
        match input {
            Input::Jingle { id, from, jingle } => self.on_jingle(&id, &from, &jingle, &mut out),
            Input::Jmi { from, el } => self.on_jmi(&from, &el, &mut out),
            Input::IqResponse { id, ok } => self.on_iq_response(&id, ok, &mut out),
            Input::Sip(ev) => self.on_sip(ev, &mut out),
            Input::Timer(t) => self.on_timer(t, &mut out),
            Input::Shutdown => self.hang_up(Reason::GeneralError, &mut out),
            Input::MediaTimeout => {
                tracing::info!(sid = %self.sid, "no media on either leg: hanging up");
                self.hang_up(Reason::ConnectivityError, &mut out);
            }
        }
        self.flush_media(&mut out);
        out
    }

    /// Put what the relay is to be told ahead of `out`: the relay knows where a side
    /// receives before the other side is told to send.
    fn flush_media(&mut self, out: &mut Vec<Output>) {
        if self.media.is_empty() {
            return;
        }
        let media: Vec<Output> = self.media.drain(..).map(Output::Media).collect();
        out.splice(0..0, media);
    }

    /// `desc` from `side` (an offer or answer: `kind`) is about to cross to the other side:
    /// decide on anchoring at the first description, tell the relay where `side` receives,
    /// and return what the other side is to be told (the relay's ports when anchored).
    fn anchor(&mut self, desc: &Description, side: Side, kind: Kind) -> Option<Description> {
        let (a, mode) = match &self.anchoring {
            Anchoring::Off => return None,
            Anchoring::Undecided(a) if a.auto && side == Side::X => {
                self.anchoring = Anchoring::TryDirect(a.clone());
                return None;
            }
            Anchoring::TryDirect(_) => {
                if side == Side::S {
                    tracing::debug!(sid = %self.sid, "the SIP side took the offer as it is: direct");
                    self.anchoring = Anchoring::Off;
                    self.media.push(MediaOut::Direct);
                }
                return None;
            }
            Anchoring::On(a, m) => (a.clone(), *m),
            Anchoring::Undecided(a) => match relay::mode(desc, side, a) {
                Some(m) => {
                    let a = a.clone();
                    self.anchoring = Anchoring::On(a.clone(), m);
                    (a, m)
                }
                None => {
                    tracing::debug!(sid = %self.sid, "media cannot be relayed (ICE or DTLS from SIP, or not one audio stream): direct");
                    self.anchoring = Anchoring::Off;
                    self.media.push(MediaOut::Direct);
                    return None;
                }
            },
        };
        match (mode, side) {
            (Mode::Plain, _) => {
                // The relay passes each side's rtcp-mux on: an offer's mux holds until the
                // answer, and an answer without it takes it back from the offerer too.
                let mux = relay::muxes(desc);
                self.media
                    .push(MediaOut::Peer(relay::peer(desc, side, mux)));
                match kind {
                    Kind::Offer => self.plain_offer = Some((side, desc.clone())),
                    Kind::Answer => {
                        if let Some((o, d)) = self.plain_offer.take().filter(|(o, _)| *o != side) {
                            if !mux && relay::muxes(&d) {
                                self.media.push(MediaOut::Peer(relay::peer(&d, o, false)));
                            }
                        }
                    }
                }
                let port = match side {
                    Side::X => a.s_port,
                    Side::S => a.x_port,
                };
                Some(relay::anchored(desc, a.ip, port))
            }
            (Mode::IceX, Side::X) => {
                let mut p = relay::peer(desc, Side::X, true);
                // XEP-0176: the Jingle initiator is the controlling agent; the relay
                // initiated when S called.
                p.ice = relay::remote_ice(desc, self.x_role == Role::Responder);
                p.rtp = None;
                p.rtcp = None;
                self.media.push(MediaOut::Peer(p));
                // The SIP side's SDES choice, or, before it has spoken, the configured offer.
                let crypto = match &self.s_sdes {
                    Some(Some(k)) => Some(relay::sdes_line(k.tag, k.suite, &a.sdes)),
                    Some(None) => None,
                    None => a
                        .offer_sdes
                        .then(|| relay::sdes_line(1, relay::srtp::Suite::Sha1_80, &a.sdes)),
                };
                Some(relay::plain_for_sip(desc, a.ip, a.s_port, crypto))
            }
            (Mode::IceX, Side::S) => {
                let inviting = matches!(self.state, State::Inviting { .. });
                if kind == Kind::Answer && inviting && !relay::relayable(desc) {
                    // Nothing for the relay: the call is about to go direct or end.
                    self.s_answer_unusable = true;
                    return None;
                }
                // The relay never agrees to rtcp-mux toward the phone (`plain_for_sip`).
                let mut p = relay::peer(desc, Side::S, false);
                let sdes = relay::sdes_choice(desc);
                p.srtp = sdes.clone().map(|theirs| relay::SipSrtp {
                    theirs,
                    ours: a.sdes.clone(),
                });
                self.s_sdes = Some(sdes);
                self.media.push(MediaOut::Peer(p));
                let me = a.ice.as_ref()?;
                let client_offer = self
                    .x_desc
                    .as_ref()
                    .and_then(|d| d.contents.first())
                    .and_then(|c| c.transport.fingerprint.as_ref())
                    .map(|f| f.setup);
                let setup = relay::setup_toward_xmpp(kind, client_offer);
                Some(relay::ice_for_xmpp(desc, a.ip, a.x_port, me, setup))
            }
        }
    }

    /// `auto`: the SIP side refused the XMPP caller's offer with `code`; whether the call goes
    /// on through the relay (the state is back to gathering, ready for a new INVITE).
    fn retry_through_relay(&mut self, code: u16) -> bool {
        let Anchoring::TryDirect(a) = &self.anchoring else {
            return false;
        };
        let relayable = self
            .x_desc
            .as_ref()
            .is_some_and(|d| relay::mode(d, Side::X, a).is_some());
        if !matches!(code, 488 | 606) || !relayable {
            return false;
        }
        tracing::info!(sid = %self.sid, code, "the SIP side refused the offer: again through the relay");
        let mut a = a.clone();
        a.auto = false;
        self.anchoring = Anchoring::Undecided(a);
        self.tried_direct = true;
        self.s_sdes = None;
        self.state = State::Gathering;
        // The next offer is a new session for the SIP side (a new INVITE, a new dialog).
        self.last_sdp = None;
        true
    }

    /// A relayed XMPP caller's INVITE (ICE + DTLS toward X) was refused with `code`: a phone
    /// that takes only SDES-SRTP refuses RTP/AVP with 488, one without SRTP refuses RTP/SAVP
    /// (RFC 4568 §7.1.2); the INVITE goes once more with the other choice. Whether it does.
    fn retry_other_srtp(&mut self, code: u16) -> bool {
        let Anchoring::On(a, Mode::IceX) = &mut self.anchoring else {
            return false;
        };
        if !matches!(code, 488 | 606) || self.srtp_retried || self.s_sdes.is_some() {
            return false;
        }
        a.offer_sdes = !a.offer_sdes;
        tracing::info!(sid = %self.sid, code, sdes = a.offer_sdes, "the SIP side refused the relayed offer: again with the other SRTP choice");
        self.srtp_retried = true;
        self.state = State::Gathering;
        self.last_sdp = None;
        true
    }

    /// `relay` mode: the phone refused the relayed offer both as plain RTP and as SDES-SRTP,
    /// as one that does ICE + DTLS-SRTP itself does. Whether the call goes direct
    /// ([`Call::fallback_direct`]).
    fn retry_direct(&mut self, code: u16) -> bool {
        matches!(code, 488 | 606)
            && self.srtp_retried
            && self.s_sdes.is_none()
            && self.fallback_direct()
    }

    /// The relayed offer cannot work with this phone: the XMPP caller's offer goes as it is
    /// in a new INVITE and the call is direct (in `auto` that was the first try, so not
    /// again). Whether it does.
    fn fallback_direct(&mut self) -> bool {
        if !matches!(self.anchoring, Anchoring::On(_, Mode::IceX)) || self.tried_direct {
            return false;
        }
        tracing::info!(sid = %self.sid, "the SIP side cannot take the relayed offer: the caller's offer as it is, direct");
        self.anchoring = Anchoring::Off;
        self.media.push(MediaOut::Direct);
        self.tried_direct = true;
        self.s_sdes = None;
        self.s_answer_unusable = false;
        self.state = State::Gathering;
        self.last_sdp = None;
        true
    }

    /// X trickled candidates into a call whose ICE leg the relay terminates: they go to the
    /// relay, not to the SIP side.
    fn trickled_to_relay(&mut self) -> bool {
        if !matches!(self.anchoring, Anchoring::On(_, Mode::IceX)) {
            return false;
        }
        if let Some(d) = &self.x_desc {
            let mut p = relay::peer(d, Side::X, true);
            p.ice = relay::remote_ice(d, self.x_role == Role::Responder);
            p.rtp = None;
            p.rtcp = None;
            self.media.push(MediaOut::Peer(p));
        }
        true
    }

    fn s_role(&self) -> Role {
        match self.x_role {
            Role::Initiator => Role::Responder,
            Role::Responder => Role::Initiator,
        }
    }

    fn initiator(&self) -> &str {
        match self.x_role {
            Role::Initiator => &self.x_jid,
            Role::Responder => &self.s_jid,
        }
    }

    fn responder(&self) -> &str {
        match self.x_role {
            Role::Initiator => &self.s_jid,
            Role::Responder => &self.x_jid,
        }
    }

    fn new_id(&mut self) -> String {
        self.next_id += 1;
        format!("{}-{}", self.sid, self.next_id)
    }

    /// An IQ set with a Jingle action to X; returns the IQ id.
    fn send_jingle(
        &mut self,
        action: &str,
        children: Vec<Element>,
        out: &mut Vec<Output>,
    ) -> String {
        let id = self.new_id();
        let responder = (action == "session-accept").then(|| self.responder().to_owned());
        let j = stanza::jingle(
            action,
            &self.sid,
            self.initiator(),
            responder.as_deref(),
            children,
        );
        out.push(Output::Xmpp(stanza::iq_set(
            &self.s_jid,
            &self.x_jid,
            &id,
            j,
        )));
        id
    }

    fn result(&self, id: &str, to: &str) -> Output {
        Output::Xmpp(stanza::iq_result(&self.s_jid, to, id))
    }

    fn error(&self, id: &str, to: &str, cond: DefinedCondition, jingle: Option<&str>) -> Output {
        Output::Xmpp(stanza::iq_error(
            &self.s_jid,
            to,
            id,
            XmppError::new(cond),
            jingle,
        ))
    }

    fn unknown_session(&self, id: &str, to: &str) -> Output {
        self.error(
            id,
            to,
            DefinedCondition::ItemNotFound,
            Some("unknown-session"),
        )
    }

    /// session-terminate to X and the end of the call.
    fn terminate(&mut self, reason: Reason, out: &mut Vec<Output>) {
        self.send_jingle("session-terminate", vec![reason.to_element(None)], out);
        self.end(reason, out);
    }

    fn end(&mut self, reason: Reason, out: &mut Vec<Output>) {
        self.state = State::Ended;
        out.push(Output::Ended(reason));
    }

    /// SDP written on X's behalf. The o= version goes up only when the description
    /// changed (RFC 3264 §8): a peer that sees a new version re-reads the session, and
    /// baresip then restarts its DTLS handshake mid-way.
    fn x_sdp(
        &mut self,
        desc: &Description,
        kind: Kind,
        offer: Option<&[MLine]>,
    ) -> Result<Vec<u8>, MediaError> {
        let user = self.x_jid.split('@').next().unwrap_or("-");
        let origin = SdpOrigin {
            username: if self.x_jid.contains('@') {
                user.to_owned()
            } else {
                "-".into()
            },
            session_id: session_id(&self.sid),
            version: self.sdp_version + 1,
            address: self.settings.origin,
        };
        let anchored = self.anchor(desc, Side::X, kind);
        let desc = anchored.as_ref().unwrap_or(desc);
        let mut s = sdp::to_sdp(desc, self.x_role, kind, &origin, offer)?;
        let text = s.to_string();
        let body: String = text.lines().filter(|l| !l.starts_with("o=")).collect();
        if self.last_sdp.as_deref() == Some(body.as_str()) {
            s.origin.sess_version = self.sdp_version;
            return Ok(s.to_string().into_bytes());
        }
        self.sdp_version += 1;
        self.last_sdp = Some(body);
        Ok(text.into_bytes())
    }

    /// Read SDP written by S; its streams are named after the session's contents by position.
    fn read_s_sdp(&mut self, body: &[u8], kind: Kind) -> Result<sdp::ReadSdp, MediaError> {
        let parsed = sdp::parse(body)?;
        let mut read = sdp::from_sdp(&parsed, self.s_role(), kind)?;
        // Once the session has its m= lines (our offer's, or the first SIP offer's), a SIP
        // answer or re-offer names its streams by position: a SIP UA need not repeat a=mid,
        // and X's content names are what both sides go by.
        if !self.layout.is_empty() {
            let mut contents = read.description.contents.iter_mut();
            for (i, line) in read.lines.iter_mut().enumerate() {
                if !line.used {
                    continue;
                }
                let Some(c) = contents.next() else { break };
                if let Some(ours) = self.layout.get(i) {
                    c.name = ours.name.clone();
                    line.name = ours.name.clone();
                }
            }
        }
        // MEDIA-12: a new ufrag/pwd from S is an ICE restart, the next generation.
        for c in &mut read.description.contents {
            if let Some(creds) = &c.transport.ice {
                let g = self.generations.observe(&c.name, creds);
                for (n, cand) in c.transport.candidates.iter_mut().enumerate() {
                    cand.generation = g;
                    cand.id = super::ice::candidate_id(0, g, n) + "-" + &c.name;
                }
            }
        }
        if let Some(d) = self.anchor(&read.description, Side::S, kind) {
            read.description = d;
        }
        Ok(read)
    }

    fn on_jingle(&mut self, id: &str, from: &str, j: &Element, out: &mut Vec<Output>) {
        if from != self.x_jid || j.attr("sid") != Some(self.sid.as_str()) {
            out.push(self.unknown_session(id, from));
            return;
        }
        let action = j.attr("action").unwrap_or("");
        match action {
            "session-terminate" => {
                out.push(self.result(id, from));
                let reason = j
                    .children()
                    .find(|c| c.name() == "reason")
                    .map(Reason::from_element)
                    .unwrap_or(Reason::Success);
                self.x_terminated(reason, out);
            }
            "transport-info" => match super::jingle::read_transport_info(j) {
                Ok(infos) => {
                    out.push(self.result(id, from));
                    self.on_transport_info(infos, out);
                }
                Err(e) => {
                    tracing::debug!(error = %e, "transport-info refused");
                    out.push(self.error(id, from, DefinedCondition::BadRequest, None));
                }
            },
            "session-info" => self.on_session_info(id, from, j, out),
            "content-modify" => self.on_content_modify(id, from, j, out),
            "session-accept" => self.on_session_accept(id, from, j, out),
            "session-initiate" => out.push(self.error(
                id,
                from,
                DefinedCondition::UnexpectedRequest,
                Some("out-of-order"),
            )),
            _ => out.push(self.error(
                id,
                from,
                DefinedCondition::FeatureNotImplemented,
                Some("unsupported-info"),
            )),
        }
    }

    fn on_transport_info(
        &mut self,
        infos: Vec<(String, super::model::Transport)>,
        out: &mut Vec<Output>,
    ) {
        let Some(desc) = self.x_desc.as_mut() else {
            return;
        };
        let mut restart = false;
        for (name, t) in infos {
            let known = desc.contents.iter().find(|c| c.name == name);
            restart |= t.ice.is_some() && known.is_some_and(|c| c.transport.ice != t.ice);
            // An unknown content name changes nothing; the IQ was well-formed.
            let _ = super::ice::apply_transport_info(desc, &name, t);
        }
        if self.state == State::Active && self.trickled_to_relay() {
            return;
        }
        match self.state {
            State::Gathering | State::Answering if self.gathered() => self.x_description_ready(out),
            // MEDIA-4: new credentials during the call are an ICE restart; the SIP side
            // (vanilla ICE) gets a re-INVITE once the new candidates are in.
            State::Active if restart => {
                self.restart_pending = true;
                out.push(Output::Start(Timer::Gather, self.settings.gather));
            }
            _ => {}
        }
    }

    /// Every content has an RTP candidate and no more are coming.
    fn gathered(&self) -> bool {
        self.x_desc.as_ref().is_some_and(|d| {
            d.contents.iter().all(|c| {
                c.transport.end_of_candidates
                    && c.transport.candidates.iter().any(|k| k.component == 1)
            })
        })
    }
}

/// The m= layout an SDP offer written from `desc` has (one line per content, in order).
fn sdp_layout(desc: &Description) -> Vec<MLine> {
    desc.contents
        .iter()
        .map(|c| MLine {
            name: c.name.clone(),
            media: c.media.clone(),
            proto: String::new(),
            first_fmt: c
                .payloads
                .first()
                .map(|p| p.id.to_string())
                .unwrap_or_default(),
            had_mid: true,
            used: true,
        })
        .collect()
}

/// A stable `o=` session id per call (RFC 4566 §5.2 wants it unique; the sid is).
fn session_id(sid: &str) -> u64 {
    // FNV-1a, kept below 2^62 so every SDP parser takes it as a number.
    let h = sid.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    h >> 2
}
