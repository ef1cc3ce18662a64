//! Small helpers over minidom's builder, whose attribute names are typed `NcName`s.

use tokio_xmpp::minidom::rxml::NcName;
use tokio_xmpp::minidom::{Element, ElementBuilder, IntoAttributeValue};

/// Attribute setting by a literal name.
pub trait BuilderExt {
    /// Set attribute `name` (a literal, always a valid NCName) to `value`.
    fn a<V: IntoAttributeValue>(self, name: &'static str, value: V) -> Self;
}

impl BuilderExt for ElementBuilder {
    fn a<V: IntoAttributeValue>(self, name: &'static str, value: V) -> Self {
        match NcName::try_from(name) {
            Ok(n) => self.attr(n, value),
            Err(_) => self,
        }
    }
}

/// Set an un-namespaced attribute on an element.
pub fn set_attr<V: IntoAttributeValue>(el: &mut Element, name: &'static str, value: V) {
    if let Ok(n) = NcName::try_from(name) {
        el.set_attr(tokio_xmpp::minidom::rxml::Namespace::NONE, n, value);
    }
}
