//! MUC-19: join refusals as SIP responses.

use super::*;
use xmpp_parsers::stanza_error::{DefinedCondition as C, ErrorType};

#[test]
fn muc_19_join_refusals() {
    let table = [
        (C::RegistrationRequired, 403),
        (C::NotAuthorized, 403),
        (C::Forbidden, 403),
        (C::ServiceUnavailable, 486),
        (C::ItemNotFound, 404),
        (C::NotAllowed, 403),
        (C::Conflict, 400),
    ];
    for (cond, code) in table {
        let e = StanzaError::new(ErrorType::Cancel, cond.clone(), "en", "");
        assert_eq!(join_refusal(&e).code, code, "{cond:?}");
    }
}
