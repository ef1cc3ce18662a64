//! XEP-0050 ad-hoc commands on the wire: reading a `<command/>` request and writing the
//! replies (a form to fill in, a completed result, a cancel). Pure; which commands exist and
//! what they do is the router's business (`core::admin`).
//!
//! Every command here takes at most one form: the first request gets the form
//! (`status='executing'`), the submission gets the result (`status='completed'`). A request
//! that already carries a submitted form completes at once, so scripts need one round trip.
//! No session state is kept between the two steps (the form holds everything), so the
//! `sessionid` only echoes what the client sent.

use super::xml::BuilderExt;
use tokio_xmpp::minidom::Element;

/// XEP-0050 namespace (also the disco node listing the commands).
pub const NS_COMMANDS: &str = "http://jabber.org/protocol/commands";
/// XEP-0004 data forms.
pub const NS_DATA: &str = "jabber:x:data";

/// What the client asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Start, or go on with a submitted form.
    Execute,
    /// Abandon the command.
    Cancel,
}

/// A parsed `<command/>` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The command's node.
    pub node: String,
    /// What to do.
    pub action: Action,
    /// Echoed session id, if any.
    pub sessionid: Option<String>,
    /// Fields of a submitted form (`None`: no form came).
    pub form: Option<Vec<(String, String)>>,
}

impl Request {
    /// The value of a submitted field (multi-value fields joined by newlines).
    pub fn field(&self, var: &str) -> Option<&str> {
        self.form
            .as_ref()?
            .iter()
            .find(|(v, _)| v == var)
            .map(|(_, val)| val.as_str())
    }
}

/// Read a `<command/>` payload. `Err` is the text of a bad-request.
pub fn parse(cmd: &Element) -> Result<Request, &'static str> {
    let node = cmd
        .attr("node")
        .filter(|n| !n.is_empty())
        .ok_or("no node")?;
    let action = match cmd.attr("action").unwrap_or("execute") {
        "execute" | "complete" | "next" => Action::Execute,
        "cancel" => Action::Cancel,
        _ => return Err("unknown action"),
    };
    let form = cmd
        .children()
        .find(|c| c.is("x", NS_DATA) && c.attr("type") == Some("submit"))
        .map(|x| {
            x.children()
                .filter(|f| f.is("field", NS_DATA))
                .filter_map(|f| {
                    let var = f.attr("var")?.to_string();
                    let values: Vec<String> = f
                        .children()
                        .filter(|v| v.is("value", NS_DATA))
                        .map(|v| v.text())
                        .collect();
                    Some((var, values.join("\n")))
                })
                .collect()
        });
    Ok(Request {
        node: node.to_string(),
        action,
        sessionid: cmd.attr("sessionid").map(str::to_string),
        form,
    })
}

/// A field of a form to fill in.
#[derive(Debug, Clone)]
pub struct Input {
    /// Field name.
    pub var: &'static str,
    /// What the admin sees.
    pub label: &'static str,
    /// Must be filled in.
    pub required: bool,
}

fn command(req: &Request, status: &str, sessionid: &str) -> tokio_xmpp::minidom::ElementBuilder {
    Element::builder("command", NS_COMMANDS)
        .a("node", req.node.as_str())
        .a("sessionid", sessionid)
        .a("status", status)
}

/// The form to fill in (first step).
pub fn form(req: &Request, sessionid: &str, title: &str, inputs: &[Input]) -> Element {
    let mut x = Element::builder("x", NS_DATA)
        .a("type", "form")
        .append(Element::builder("title", NS_DATA).append(title).build());
    for i in inputs {
        let mut f = Element::builder("field", NS_DATA)
            .a("var", i.var)
            .a("type", "text-single")
            .a("label", i.label);
        if i.required {
            f = f.append(Element::builder("required", NS_DATA).build());
        }
        x = x.append(f.build());
    }
    command(req, "executing", sessionid)
        .append(
            Element::builder("actions", NS_COMMANDS)
                .a("execute", "complete")
                .append(Element::builder("complete", NS_COMMANDS).build())
                .build(),
        )
        .append(x.build())
        .build()
}

/// The result of a command: a note and `(label, value)` rows. Multi-line values become
/// `text-multi` fields.
pub fn completed(
    req: &Request,
    note: Option<(&str, &str)>,
    title: &str,
    rows: &[(String, String)],
) -> Element {
    let sessionid = req.sessionid.clone().unwrap_or_else(new_sessionid);
    let mut c = command(req, "completed", &sessionid);
    if let Some((kind, text)) = note {
        c = c.append(
            Element::builder("note", NS_COMMANDS)
                .a("type", kind)
                .append(text)
                .build(),
        );
    }
    if !rows.is_empty() {
        let mut x = Element::builder("x", NS_DATA)
            .a("type", "result")
            .append(Element::builder("title", NS_DATA).append(title).build());
        for (i, (label, value)) in rows.iter().enumerate() {
            let multi = value.contains('\n');
            let mut f = Element::builder("field", NS_DATA)
                .a("var", format!("f{i}"))
                .a("label", label.as_str())
                .a("type", if multi { "text-multi" } else { "text-single" });
            for line in value.split('\n') {
                f = f.append(Element::builder("value", NS_DATA).append(line).build());
            }
            x = x.append(f.build());
        }
        c = c.append(x.build());
    }
    c.build()
}

/// The reply to a cancel.
pub fn canceled(req: &Request) -> Element {
    let sessionid = req.sessionid.clone().unwrap_or_else(new_sessionid);
    command(req, "canceled", &sessionid).build()
}

/// A fresh session id.
pub fn new_sessionid() -> String {
    crate::sip::inbound::random_token()
}

/// The disco#items list of commands: `(node, name)` pairs on `jid`.
pub fn items(jid: &str, commands: &[(&str, &str)]) -> Element {
    let ns = "http://jabber.org/protocol/disco#items";
    let mut q = Element::builder("query", ns).a("node", NS_COMMANDS);
    for (node, name) in commands {
        q = q.append(
            Element::builder("item", ns)
                .a("jid", jid)
                .a("node", *node)
                .a("name", *name)
                .build(),
        );
    }
    q.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn el(s: &str) -> Element {
        s.parse().unwrap()
    }

    #[test]
    fn parses_execute_submit_and_cancel() {
        let r = parse(&el(&format!(
            "<command xmlns='{NS_COMMANDS}' node='translate'/>"
        )))
        .unwrap();
        assert_eq!(r.action, Action::Execute);
        assert!(r.form.is_none());
        let r = parse(&el(&format!(
            "<command xmlns='{NS_COMMANDS}' node='translate' action='complete' sessionid='s1'>\
             <x xmlns='{NS_DATA}' type='submit'><field var='address'><value>sip:a@b</value></field></x>\
             </command>"
        )))
        .unwrap();
        assert_eq!(r.field("address"), Some("sip:a@b"));
        assert_eq!(r.sessionid.as_deref(), Some("s1"));
        let r = parse(&el(&format!(
            "<command xmlns='{NS_COMMANDS}' node='x' action='cancel'/>"
        )))
        .unwrap();
        assert_eq!(r.action, Action::Cancel);
        assert_eq!(canceled(&r).attr("status"), Some("canceled"));
        assert!(parse(&el(&format!("<command xmlns='{NS_COMMANDS}'/>"))).is_err());
        assert!(parse(&el(&format!(
            "<command xmlns='{NS_COMMANDS}' node='x' action='prev'/>"
        )))
        .is_err());
    }

    #[test]
    fn form_then_result() {
        let r = parse(&el(&format!("<command xmlns='{NS_COMMANDS}' node='n'/>"))).unwrap();
        let f = form(
            &r,
            "s9",
            "T",
            &[Input {
                var: "address",
                label: "Address",
                required: true,
            }],
        );
        assert_eq!(f.attr("status"), Some("executing"));
        assert_eq!(f.attr("sessionid"), Some("s9"));
        let x = f.get_child("x", NS_DATA).unwrap();
        assert_eq!(x.attr("type"), Some("form"));
        assert!(x.children().any(|c| c.attr("var") == Some("address")));
        let done = completed(
            &r,
            Some(("info", "ok")),
            "R",
            &[("a".into(), "1".into()), ("b".into(), "x\ny".into())],
        );
        assert_eq!(done.attr("status"), Some("completed"));
        let x = done.get_child("x", NS_DATA).unwrap();
        let multi = x.children().find(|c| c.attr("label") == Some("b")).unwrap();
        assert_eq!(multi.attr("type"), Some("text-multi"));
        assert_eq!(multi.children().count(), 2);
    }
}
