//! One-to-one chat sessions over MSRP: RFC 7573 (CHAT-1..23).
//!
//! [`msrp`] is our RFC 4975 implementation (codec and sans-IO session).
pub mod iscomposing;
pub mod msrp;
pub mod page;
pub mod sdp;
pub mod translate;
pub mod transport;
