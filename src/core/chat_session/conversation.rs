//! The established phase of a chat session: one loop over the XMPP stanzas of the
//! conversation, the MSRP frames, the INVITE dialog and the timers (RFC 7573 §4-§7).

use super::*;

impl Task {
    #[allow(clippy::too_many_lines)]
    pub(super) async fn established(
        &mut self,
        mut dialog: Established,
        remote: sdp::Remote,
        role: Role,
        relay_conn: Option<Conn>,
        cmds: &mut mpsc::Receiver<Cmd>,
        frames: &mut mpsc::Receiver<Box<Inbound>>,
    ) -> Ended {
        let mut session = Session::new(
            self.local.clone(),
            remote.path.clone(),
            self.ctx.settings.msrp.clone(),
            self.ctx.budget.clone(),
        );
        // ---- the connection (CHAT-5: the active side connects and sends first)
        // Behind a relay (RFC 4976) the peer's frames reach us over the relay connection,
        // and ours go straight to the first hop of the peer's path: relays such as
        // Kamailio's only forward toward the client that AUTHed a Use-Path.
        // A peer behind its own relay (a path of more than one URI) is reached through that
        // relay, never over the connection the relay's peer side opened to us.
        let active = relay_conn.is_some() || role == Role::Active || remote.path.len() > 1;
        let mut conn: Option<Conn> = match active {
            true => match self.ctx.transport.connect(&remote.path[0]).await {
                Ok(c) => Some(c),
                Err(e) => {
                    info!(error = %e, "cannot reach the MSRP peer: BYE");
                    Box::pin(dialog.bye()).await;
                    return Ended::Closed(self.queue.drain(..).collect());
                }
            },
            false => None,
        };
        if conn.is_some() {
            session.send_bodiless(Instant::now().into_std());
        }
        let mut st = State {
            session,
            inflight: HashMap::new(),
            next_token: 0,
            received_ids: VecDeque::new(),
            composing_sent: false,
            composing_refresh: None,
            peer_composing_until: None,
            last_activity: Instant::now(),
            remote_max: remote.max_size,
            remote_states: remote.accepts(iscomposing::CONTENT_TYPE)
                || remote.accept_types.iter().any(|t| t == "*"),
            bye: false,
        };
        let connect_deadline = Instant::now() + self.ctx.settings.connect_wait;
        // Queued stanzas go out once a connection exists (for the passive side, after the
        // peer's first frame; the MSRP machine holds its frames until then).
        let queued: Vec<Item> = self.queue.drain(..).collect();
        for i in queued {
            Box::pin(self.on_xmpp(&mut st, i)).await;
        }
        let mut pending_writes: VecDeque<Bytes> = VecDeque::new();
        let outcome = loop {
            // Carry out what the machine decided.
            while let Some(o) = st.session.poll_output() {
                match o {
                    msrp::Output::Write(b) => pending_writes.push_back(b),
                    msrp::Output::Event(e) => Box::pin(self.on_msrp_event(&mut st, e)).await,
                }
            }
            if let Some(c) = &conn {
                let mut lost = false;
                while let Some(b) = pending_writes.pop_front() {
                    if !c.write(b).await {
                        lost = true;
                        break;
                    }
                }
                if lost {
                    break Outcome::ConnectionLost;
                }
            }
            if st.bye {
                break Outcome::LocalEnd;
            }
            let mut wake = st.last_activity + self.ctx.settings.idle;
            if conn.is_none() {
                wake = wake.min(connect_deadline);
            }
            for t in [
                st.session.poll_timeout().map(Instant::from_std),
                st.composing_refresh,
                st.peer_composing_until,
            ]
            .into_iter()
            .flatten()
            {
                wake = wake.min(t);
            }
            let watch_conn = conn.clone();
            let closed = async move {
                match watch_conn {
                    Some(mut c) => c.closed().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                c = cmds.recv() => match c {
                    Some(Cmd::Xmpp(i)) => Box::pin(self.on_xmpp(&mut st, *i)).await,
                    Some(Cmd::Bind(j)) => {
                        debug!(jid = %j, "session bound to a resource");
                        self.parties.xmpp_user = j;
                    }
                    Some(Cmd::ResourceGone) => break Outcome::LocalEnd,
                    Some(Cmd::Bounced { id, code }) => {
                        // Delivered to the XMPP server but refused there: the SIP sender
                        // learns it from a failure REPORT (it already had its 200).
                        if st.session.report_failed(&id, code) {
                            info!(id, code, "XMPP bounced a session message: failure REPORT");
                        }
                    }
                    Some(Cmd::Stop) | None => break Outcome::LocalEnd,
                },
                f = frames.recv() => match f {
                    Some(inbound) => {
                        let Inbound { frame, conn: c } = *inbound;
                        if conn.is_none() {
                            conn = Some(c);
                        }
                        // Messages the XMPP link cannot take now are refused, not lost.
                        st.session.set_unavailable(!self.ctx.xmpp.is_up());
                        st.session.handle_frame(Instant::now().into_std(), frame);
                    }
                    None => break Outcome::LocalEnd,
                },
                ev = dialog.events.recv() => match ev {
                    Some(InDialog::Bye) => break Outcome::RemoteBye,
                    Some(
                        InDialog::Ack
                        | InDialog::Subscribe(_)
                        | InDialog::Refer(_)
                        | InDialog::ConferenceNotify { .. },
                    ) => {}
                    None => break Outcome::RemoteBye,
                },
                _ = closed => {
                    let now = Instant::now().into_std();
                    for f in crate::chat::transport::already_received(frames) {
                        st.session.handle_frame(now, f);
                    }
                    // Only the events count now: nothing can be written on this connection.
                    while let Some(o) = st.session.poll_output() {
                        if let msrp::Output::Event(e) = o {
                            Box::pin(self.on_msrp_event(&mut st, e)).await;
                        }
                    }
                    break Outcome::ConnectionLost;
                }
                _ = tokio::time::sleep_until(wake) => {
                    let now2 = Instant::now();
                    st.session.handle_timeout(now2.into_std());
                    if conn.is_none() && now2 >= connect_deadline {
                        info!("the MSRP peer never connected: BYE");
                        break Outcome::ConnectionLost;
                    }
                    if now2 >= st.last_activity + self.ctx.settings.idle {
                        info!("chat session idle: BYE (CHAT-12)");
                        break Outcome::LocalEnd;
                    }
                    if st.composing_refresh.is_some_and(|t| now2 >= t) {
                        // CHAT-16: still composing; refresh before the peer's timer runs out.
                        self.send_state(&mut st, true);
                    }
                    if st.peer_composing_until.is_some_and(|t| now2 >= t) {
                        st.peer_composing_until = None;
                        self.deliver(translate::chat_state(&self.parties.sip_user, &self.parties.xmpp_user, &self.thread, ChatState::Active)).await;
                    }
                }
            }
        };
        // ---- teardown
        let requeue = match outcome {
            Outcome::RemoteBye => {
                // CHAT-11, CHAT-14: the SIP user left; tell the XMPP user.
                self.deliver(translate::chat_state(
                    &self.parties.sip_user,
                    &self.parties.xmpp_user,
                    &self.thread,
                    ChatState::Gone,
                ))
                .await;
                self.unsent(&mut st)
            }
            Outcome::LocalEnd => {
                // A message sent just before <gone/> (a chat window closed) is usually still
                // waiting for its 200: give it a moment rather than re-send it in a new session.
                if let Some(c) = &conn {
                    Box::pin(self.settle(&mut st, c, frames)).await;
                }
                Box::pin(dialog.bye()).await;
                self.unsent(&mut st)
            }
            Outcome::ConnectionLost => {
                Box::pin(dialog.bye()).await;
                self.unsent(&mut st)
            }
        };
        Ended::Closed(requeue)
    }

    /// Before a local BYE: wait (at most 2 s) for the responses to messages in flight.
    async fn settle(
        &mut self,
        st: &mut State,
        conn: &Conn,
        frames: &mut mpsc::Receiver<Box<Inbound>>,
    ) {
        let deadline = Instant::now() + Duration::from_secs(2);
        while st.inflight.values().any(|f| f.item.is_some()) {
            tokio::select! {
                f = frames.recv() => match f {
                    Some(inbound) => st.session.handle_frame(Instant::now().into_std(), inbound.frame),
                    None => return,
                },
                _ = tokio::time::sleep_until(deadline) => return,
            }
            while let Some(o) = st.session.poll_output() {
                match o {
                    msrp::Output::Write(b) => {
                        if !conn.write(b).await {
                            return;
                        }
                    }
                    msrp::Output::Event(e) => Box::pin(self.on_msrp_event(st, e)).await,
                }
            }
        }
    }

    /// Messages of ours without an MSRP 200: re-offered once in a new session; a second
    /// loss answers the sender with an error (never a silent drop).
    fn unsent(&mut self, st: &mut State) -> Vec<Item> {
        let mut out = Vec::new();
        let mut tokens: Vec<u64> = st.inflight.keys().copied().collect();
        tokens.sort_unstable();
        for t in tokens {
            if let Some(InFlight { item: Some(i), .. }) = st.inflight.remove(&t) {
                out.push(i);
            }
        }
        out
    }

    async fn on_xmpp(&mut self, st: &mut State, item: Item) {
        let chat = translate::read_xmpp(&item.msg);
        st.last_activity = Instant::now();
        let now = Instant::now().into_std();
        if let Some(id) = &chat.received {
            // CHAT-18: the XMPP user's receipt -> REPORT for the SIP sender's message.
            if let Some(pos) = st.received_ids.iter().position(|(x, _)| x == id) {
                let (_, mid) = st.received_ids.remove(pos).expect("found");
                st.session.report_delivered(&mid);
            }
        }
        if let Some(body) = &chat.body {
            let limit = st
                .remote_max
                .unwrap_or(usize::MAX)
                .min(self.ctx.settings.msrp.max_message);
            if body.len() > limit {
                let err =
                    crate::errmap::XmppError::new(crate::errmap::DefinedCondition::PolicyViolation)
                        .with_text(format!(
                            "message too large for the SIP user's client ({} bytes, limit {limit})",
                            body.len()
                        ));
                self.reply_error(&item, err).await;
            } else {
                st.next_token += 1;
                let token = st.next_token;
                let receipt_for = chat.receipt_request.then(|| chat.id.clone()).flatten();
                st.session.send(
                    now,
                    token,
                    "text/plain;charset=UTF-8",
                    body.as_bytes(),
                    receipt_for.is_some(),
                );
                st.inflight.insert(
                    token,
                    InFlight {
                        item: Some(item.clone()),
                        receipt_for,
                    },
                );
                // RFC 3994 §3.3: a message ends the composing state at the receiver.
                st.composing_sent = false;
                st.composing_refresh = None;
            }
        } else if let Some(state) = &chat.chat_state {
            match iscomposing::from_chat_state(state) {
                Some(true) if !st.composing_sent => self.send_state(st, true),
                Some(false) if st.composing_sent => self.send_state(st, false),
                _ => {}
            }
        }
        if chat.chat_state == Some(ChatState::Gone) {
            // CHAT-14: the XMPP user closed the conversation.
            st.bye = true;
        }
    }

    fn send_state(&self, st: &mut State, active: bool) {
        st.composing_sent = active;
        st.composing_refresh = active.then(|| Instant::now() + Duration::from_secs(60));
        if !st.remote_states {
            return;
        }
        st.next_token += 1;
        let doc = iscomposing::build(active, 90);
        st.session.send(
            Instant::now().into_std(),
            st.next_token,
            iscomposing::CONTENT_TYPE,
            doc.as_bytes(),
            false,
        );
        st.inflight.insert(
            st.next_token,
            InFlight {
                item: None,
                receipt_for: None,
            },
        );
    }

    async fn on_msrp_event(&mut self, st: &mut State, e: msrp::Event) {
        match e {
            msrp::Event::Message(r) => {
                st.last_activity = Instant::now();
                match translate::to_xmpp(
                    &r,
                    &self.parties.sip_user,
                    &self.parties.xmpp_user,
                    &self.thread,
                ) {
                    Ok(translate::ToXmpp::Text(m)) => {
                        st.peer_composing_until = None;
                        if r.success_report {
                            if st.received_ids.len() >= 256 {
                                st.received_ids.pop_front();
                            }
                            st.received_ids
                                .push_back((r.tid.clone(), r.message_id.clone()));
                        }
                        self.deliver(m).await;
                    }
                    Ok(translate::ToXmpp::State {
                        message,
                        composing,
                        refresh,
                    }) => {
                        // RFC 3994 §4: without a refresh, "active" lapses after 120 s.
                        st.peer_composing_until = composing.then(|| {
                            Instant::now() + Duration::from_secs(u64::from(refresh.unwrap_or(120)))
                        });
                        self.deliver(message).await;
                    }
                    Err(code) => debug!(code, "MSRP message not deliverable"),
                }
            }
            msrp::Event::Sent(token) => {
                if let Some(f) = st.inflight.get_mut(&token) {
                    if f.receipt_for.is_none() {
                        st.inflight.remove(&token);
                    } else {
                        // Delivered to the next hop; the receipt waits for the REPORT.
                        f.item = None;
                    }
                }
            }
            msrp::Event::Delivered(token) => {
                if let Some(InFlight {
                    receipt_for: Some(id),
                    ..
                }) = st.inflight.remove(&token)
                {
                    // CHAT-17: only a REPORT makes a receipt, never a bare 200.
                    self.deliver(translate::receipt(
                        &self.parties.sip_user,
                        &self.parties.xmpp_user,
                        &id,
                    ))
                    .await;
                }
            }
            msrp::Event::Failed { token, code } => {
                if let Some(InFlight { item: Some(i), .. }) = st.inflight.remove(&token) {
                    self.reply_error(&i, translate::msrp_failure(code)).await;
                }
            }
            // Only chat-room sessions see NICKNAME; a 1:1 session answers it 501.
            msrp::Event::Nickname { .. } | msrp::Event::NicknameAnswer { .. } => {}
        }
    }

    async fn deliver(&self, m: Message) {
        if self.ctx.xmpp.send(Element::from(m)).await.is_err() {
            debug!("XMPP link down: chat stanza not delivered");
        }
    }

    pub(super) async fn reply_error(&self, item: &Item, err: crate::errmap::XmppError) {
        let reply = service::error_reply(&item.stanza, err, self.ctx.map.component());
        let _ = self.ctx.xmpp.send(reply).await;
    }
}

enum Outcome {
    RemoteBye,
    LocalEnd,
    ConnectionLost,
}

struct State {
    session: Session,
    inflight: HashMap<u64, InFlight>,
    next_token: u64,
    /// XMPP id (= MSRP tid, CHAT-7) -> Message-ID of received messages that asked for a
    /// report.
    received_ids: VecDeque<(String, String)>,
    composing_sent: bool,
    composing_refresh: Option<Instant>,
    peer_composing_until: Option<Instant>,
    last_activity: Instant,
    remote_max: Option<usize>,
    remote_states: bool,
    bye: bool,
}
