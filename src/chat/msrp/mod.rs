//! MSRP, RFC 4975, written for the gateway: [`frame`] (framing and incremental parsing,
//! §7 and §9), [`uri`] (session URIs, §6), [`chunk`] (chunking and bounded reassembly,
//! §5.1 and §7.3.1) and [`session`] (one session as a sans-IO machine). Relays (RFC 4976)
//! are handled by the transport in `crate::chat::transport`.

pub mod chunk;
pub mod frame;
pub mod session;
pub mod uri;

pub use frame::{ByteRange, Decoder, Flag, Frame, FrameError, StartLine};
pub use session::{Event, Output, Received, Session, Settings};
pub use uri::MsrpUri;

#[cfg(test)]
mod prop_tests;
#[cfg(test)]
mod session_tests;
#[cfg(test)]
mod tests;
