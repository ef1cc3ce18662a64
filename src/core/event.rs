//! What the router task reacts to: the adapters' events and the session tasks' reports.

use super::{admin, chat_session};
use crate::presence::subscription as presub;
use crate::sip::SipEvent;
use crate::xmpp::LinkEvent;

/// Everything the router reacts to.
#[derive(Debug)]
pub enum Event {
    /// From the XMPP link.
    Xmpp(LinkEvent),
    /// From the SIP layer (boxed: a request with its transaction is large).
    Sip(Box<SipEvent>),
    /// The final response to a presence request the router sent.
    PresenceResponse(presub::ReqId, presub::SipResponseIn),
    /// Reload the configuration file (SIGHUP); the outcome goes back on the channel.
    Reload(tokio::sync::oneshot::Sender<admin::ReloadResult>),
    /// A call ended.
    CallEnded {
        /// Its (XMPP user, sid) key.
        key: (String, String),
    },
    /// A SIP user's membership in an XMPP room ended.
    RoomEnded {
        /// Its occupant JID.
        key: String,
        /// Its id.
        id: u64,
    },
    /// An XMPP user's presence in a SIP room ended.
    GuestEnded {
        /// Its (user's full JID, room JID).
        key: (String, String),
        /// Its id.
        id: u64,
    },
    /// A chat session ended.
    ChatEnded {
        /// Its key.
        key: (String, String),
        /// Its id.
        id: u64,
        /// What it leaves behind.
        ended: chat_session::Ended,
    },
}
