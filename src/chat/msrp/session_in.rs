//! The receiving half of [`Session`]: SENDs from the peer (RFC 4975 §7.3.1), their
//! reassembly and limits, and the transaction responses they are due (§7.2).

use super::*;

impl Session {
    pub(super) fn on_send(&mut self, now: Instant, f: Frame) {
        let to_ok = f
            .header("To-Path")
            .and_then(MsrpUri::parse_path)
            .is_some_and(|p| p.len() == 1 && p[0].same(&self.local));
        if !to_ok {
            self.respond(&f, 481, "No Such Session");
            return;
        }
        let Some(mid) = f
            .header("Message-ID")
            .filter(|m| is_ident(m))
            .map(str::to_string)
        else {
            self.respond(&f, 400, "Bad Message-ID");
            return;
        };
        let Some(from_path) = f
            .header("From-Path")
            .filter(|p| MsrpUri::parse_path(p).is_some())
        else {
            self.respond(&f, 400, "Bad From-Path");
            return;
        };
        let from_path = from_path.to_string();
        let body = f.body.clone().unwrap_or_default();
        let range = match f.header("Byte-Range") {
            Some(v) => match ByteRange::parse(v) {
                Some(r) => r,
                None => {
                    self.respond(&f, 400, "Bad Byte-Range");
                    return;
                }
            },
            None => ByteRange {
                start: 1,
                end: Some(body.len() as u64),
                total: Some(body.len() as u64),
            },
        };
        if self.refused.contains(&mid) || f.oversized {
            self.refuse(&f, &mid);
            return;
        }
        let content_type = f.header("Content-Type");
        if f.body.is_none() || (body.is_empty() && range.start == 1 && f.flag == Flag::End) {
            // A bodiless SEND (§7.1.1): it only binds the connection.
            self.respond(&f, 200, "OK");
            return;
        }
        if range.start == 1 {
            let acceptable = content_type.is_some_and(|ct| self.acceptable(ct));
            if !acceptable {
                self.respond(&f, 415, "Unsupported Media Type");
                return;
            }
            self.first_tid.insert(
                mid.clone(),
                (
                    f.tid.clone(),
                    f.header("Success-Report")
                        .is_some_and(|v| v.eq_ignore_ascii_case("yes")),
                ),
            );
        }
        let outcome = self.reasm.add(&Chunk {
            message_id: &mid,
            range,
            content_type,
            data: &body,
            last: f.flag == Flag::End,
            aborted: f.flag == Flag::Abort,
        });
        match outcome {
            Outcome::TooLarge | Outcome::NoRoom => {
                self.first_tid.remove(&mid);
                self.refuse(&f, &mid);
            }
            Outcome::BadRange => {
                // The message is broken: what was held is gone, and its later chunks are
                // refused (413 asks the sender to stop) instead of starting it over.
                self.first_tid.remove(&mid);
                self.remember_refused(&mid);
                self.respond(&f, 400, "Bad Byte-Range");
            }
            Outcome::Aborted => {
                self.first_tid.remove(&mid);
                self.respond(&f, 200, "OK");
            }
            Outcome::Partial => self.respond(&f, 200, "OK"),
            Outcome::Complete { content_type, body } => {
                let ct = content_type.unwrap_or_default();
                if let Some(Err(code)) = self.settings.validate.map(|v| v(&ct, &body)) {
                    self.first_tid.remove(&mid);
                    self.respond(&f, code, "Not Deliverable");
                    return;
                }
                if self.unavailable {
                    // Nowhere to deliver it now: say so rather than 200 and a loss. RFC 4975
                    // §10 has no code for this; an unknown 5xx reads as a failure (§10).
                    self.first_tid.remove(&mid);
                    self.respond(&f, 503, "Recipient Unavailable");
                    return;
                }
                let (tid, success_report) = self
                    .first_tid
                    .remove(&mid)
                    .unwrap_or_else(|| (f.tid.clone(), false));
                if !self.hold_answer(now, &tid, &f) {
                    self.respond(&f, 200, "OK");
                }
                let failure_report = f
                    .header("Failure-Report")
                    .is_none_or(|v| !v.eq_ignore_ascii_case("no"));
                if failure_report {
                    if self.failable.len() >= REPORTABLE {
                        self.failable.pop_front();
                    }
                    self.failable.push_back((
                        tid.clone(),
                        mid.clone(),
                        from_path.clone(),
                        body.len(),
                    ));
                }
                if success_report {
                    if self.reportable.len() >= REPORTABLE {
                        self.reportable.pop_front();
                    }
                    self.reportable
                        .push_back((mid.clone(), from_path, body.len()));
                }
                if self.first_tid.len() > REPORTABLE {
                    // Partial messages that never finished: forget their ids.
                    self.first_tid.clear();
                }
                self.out.push_back(Output::Event(Event::Message(Received {
                    message_id: mid,
                    tid,
                    content_type: ct,
                    body,
                    success_report,
                })));
            }
        }
    }

    fn remember_refused(&mut self, mid: &str) {
        if !self.refused.iter().any(|m| m == mid) {
            if self.refused.len() >= REFUSED {
                self.refused.pop_front();
            }
            self.refused.push_back(mid.to_string());
        }
    }

    fn refuse(&mut self, f: &Frame, mid: &str) {
        self.remember_refused(mid);
        self.reasm.drop_message(mid);
        // 413 is due even when Failure-Report is "partial" (it is an error).
        self.respond(f, 413, "Message Too Large");
    }

    fn acceptable(&self, ct: &str) -> bool {
        let t = ct.split(';').next().unwrap_or("").trim();
        self.settings.accept_types.iter().any(|a| {
            a == "*"
                || a.eq_ignore_ascii_case(t)
                || a.strip_suffix("/*").is_some_and(|p| {
                    t.split('/')
                        .next()
                        .is_some_and(|tp| tp.eq_ignore_ascii_case(p))
                })
        })
    }

    /// A transaction response, if the request's Failure-Report asks for one (§7.2).
    pub(super) fn respond(&mut self, req: &Frame, code: u16, comment: &str) {
        let fr = req
            .header("Failure-Report")
            .map(str::to_ascii_lowercase)
            .unwrap_or_else(|| "yes".into());
        let due = match fr.as_str() {
            "no" => false,
            "partial" => code != 200,
            _ => true,
        };
        if !due || req.method() == Some("REPORT") {
            return;
        }
        // §7.2: a SEND's response goes to the previous hop only.
        let Some(prev) = req
            .header("From-Path")
            .and_then(|p| p.split_ascii_whitespace().next())
            .filter(|u| MsrpUri::parse(u).is_some())
            .map(str::to_string)
        else {
            return;
        };
        let f = Frame::response(req.tid.clone(), code, Some(comment))
            .with("To-Path", prev)
            .with("From-Path", self.local.to_string());
        self.write(&f);
    }
}
