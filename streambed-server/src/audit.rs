//! The audit trail: one line per produce request and per consumer stream opened, saying who
//! did what, logged at `info` level under the target [`TARGET`].
//!
//! Every line is a JSON object in printable ASCII: each string a client chose (a group
//! name, a principal's name from a certificate) is escaped, non-ASCII and control
//! characters included, so that no client can end a line early, start a forged one, or
//! hide text from a terminal.
//!
//! ```text
//! {"event":"produce","principal":"sensor-7","peer":"192.0.2.7:40000","topic":"default:readings","records":2,"first_offset":10,"last_offset":11,"status":200}
//! {"event":"consume","principal":null,"peer":"127.0.0.1:51000","group":"g","topics":["default:readings"],"offsets":1}
//! ```
//!
//! With identities on, a request refused for want of a valid identity (401, or 429 once
//! its address has failed too often) gets a line too, naming its peer and what it asked:
//!
//! ```text
//! {"event":"unauthenticated","principal":null,"peer":"192.0.2.9:41000","method":"POST","path":"/topics/default:readings","reason":"invalid_token","status":401}
//! ```
//!
//! With identities off `principal` is `null` and `peer` says who asked.

use std::{fmt, net::SocketAddr};

use streambed::commit_log::Topic;

use crate::principal::Principal;

/// The log target of audit lines, for a logger to route or filter them.
///
/// ```
/// assert_eq!(streambed_server::audit::TARGET, "audit");
/// ```
pub const TARGET: &str = "audit";

/// Who a request came from, as the audit trail names them.
pub(crate) struct Who<'a> {
    pub(crate) principal: Option<&'a Principal>,
    pub(crate) peer: Option<SocketAddr>,
}

impl fmt::Display for Who<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"principal\":")?;
        match self.principal {
            Some(principal) => Quoted(principal.as_str()).fmt(f)?,
            None => f.write_str("null")?,
        }
        f.write_str(",\"peer\":")?;
        match self.peer {
            Some(peer) => write!(f, "\"{peer}\""),
            None => f.write_str("null"),
        }
    }
}

/// What a produce request did.
pub(crate) struct Produced<'a> {
    pub(crate) who: Who<'a>,
    /// `None` when the path named no valid topic.
    pub(crate) topic: Option<&'a Topic>,
    pub(crate) records: usize,
    /// The offsets of the first and last record appended, if any was.
    pub(crate) appended: Option<(u64, u64)>,
    pub(crate) status: u16,
}

/// Logs the audit line of a produce request.
pub(crate) fn produce(produced: &Produced<'_>) {
    if !log::log_enabled!(target: TARGET, log::Level::Info) {
        return;
    }
    log::info!(target: TARGET, "{}", ProduceLine(produced));
}

struct ProduceLine<'a, 'b>(&'a Produced<'b>);

impl fmt::Display for ProduceLine<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.0;
        write!(f, "{{\"event\":\"produce\",{},\"topic\":", p.who)?;
        match p.topic {
            Some(topic) => Quoted(topic.as_str()).fmt(f)?,
            None => f.write_str("null")?,
        }
        write!(f, ",\"records\":{}", p.records)?;
        match p.appended {
            Some((first, last)) => write!(f, ",\"first_offset\":{first},\"last_offset\":{last}")?,
            None => f.write_str(",\"first_offset\":null,\"last_offset\":null")?,
        }
        write!(f, ",\"status\":{}}}", p.status)
    }
}

/// A request refused for want of a valid identity.
pub(crate) struct Unidentified<'a> {
    pub(crate) peer: Option<SocketAddr>,
    pub(crate) method: &'a str,
    /// The request's path as the client sent it (cut to [`MAX_PATH`] bytes).
    pub(crate) path: &'a str,
    /// Why: `missing`, `malformed` or `invalid_token`.
    pub(crate) reason: &'static str,
    pub(crate) status: u16,
}

/// The most of a path an audit line repeats: enough to see what was asked, not so much
/// that a client can make each of its refusals cost a long line.
const MAX_PATH: usize = 256;

/// Logs the audit line of a request refused for want of a valid identity.
pub(crate) fn unidentified(refused: &Unidentified<'_>) {
    if !log::log_enabled!(target: TARGET, log::Level::Info) {
        return;
    }
    log::info!(target: TARGET, "{}", UnidentifiedLine(refused));
}

struct UnidentifiedLine<'a, 'b>(&'a Unidentified<'b>);

impl fmt::Display for UnidentifiedLine<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let u = self.0;
        let who = Who {
            principal: None,
            peer: u.peer,
        };
        let mut end = u.path.len().min(MAX_PATH);
        while !u.path.is_char_boundary(end) {
            end -= 1;
        }
        write!(f, "{{\"event\":\"unauthenticated\",{who},\"method\":")?;
        Quoted(u.method).fmt(f)?;
        f.write_str(",\"path\":")?;
        Quoted(&u.path[..end]).fmt(f)?;
        write!(f, ",\"reason\":\"{}\",\"status\":{}}}", u.reason, u.status)
    }
}

/// A consumer stream that was opened.
pub(crate) struct Consumed<'a> {
    pub(crate) who: Who<'a>,
    pub(crate) group: &'a str,
    pub(crate) topics: Vec<&'a str>,
    pub(crate) offsets: usize,
}

/// Logs the audit line of a consumer stream opened.
pub(crate) fn consume(consumed: &Consumed<'_>) {
    if !log::log_enabled!(target: TARGET, log::Level::Info) {
        return;
    }
    log::info!(target: TARGET, "{}", ConsumeLine(consumed));
}

struct ConsumeLine<'a, 'b>(&'a Consumed<'b>);

impl fmt::Display for ConsumeLine<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self.0;
        write!(f, "{{\"event\":\"consume\",{},\"group\":", c.who)?;
        Quoted(c.group).fmt(f)?;
        f.write_str(",\"topics\":[")?;
        for (i, topic) in c.topics.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            Quoted(topic).fmt(f)?;
        }
        write!(f, "],\"offsets\":{}}}", c.offsets)
    }
}

/// A JSON string whose text is printable ASCII only: quotes, backslashes, control
/// characters and everything beyond ASCII are `\` escapes (non-BMP characters as surrogate
/// pairs), so that a logger or terminal sees nothing a client could use to forge a line.
struct Quoted<'a>(&'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for c in self.0.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                ' '..='~' => fmt::Write::write_char(f, c)?,
                _ => {
                    let mut units = [0u16; 2];
                    for unit in c.encode_utf16(&mut units) {
                        write!(f, "\\u{unit:04x}")?;
                    }
                }
            }
        }
        f.write_str("\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(principal: Option<&Principal>) -> Who<'_> {
        Who {
            principal,
            peer: Some("192.0.2.7:40000".parse().unwrap()),
        }
    }

    #[test]
    fn strings_are_printable_ascii_json_that_decodes_back_to_the_original() {
        for text in [
            "plain",
            "line\nbreak",
            "\r\u{1b}[2J\u{7f}",
            "quote\" and \\ backslash",
            "unicode line separator \u{2028} and \u{85}",
            "emoji 🦀 and é",
        ] {
            let quoted = Quoted(text).to_string();
            assert!(quoted.chars().all(|c| (' '..='~').contains(&c)), "{quoted}");
            let decoded: String = serde_json::from_str(&quoted).unwrap();
            assert_eq!(decoded, text);
        }
    }

    #[test]
    fn a_group_or_principal_with_a_newline_cannot_forge_a_second_line() {
        let forger = Principal::new("eve\n{\"event\":\"produce\",\"principal\":\"admin\"}");
        let line = ConsumeLine(&Consumed {
            who: who(Some(&forger)),
            group: "g\"},\n{\"event\":\"fake\"",
            topics: vec!["default:t"],
            offsets: 2,
        })
        .to_string();
        assert!(!line.contains('\n'), "{line}");
        let parsed: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(parsed["event"], "consume");
        assert_eq!(parsed["principal"], forger.as_str());
        assert_eq!(parsed["group"], "g\"},\n{\"event\":\"fake\"");
        assert_eq!(parsed["topics"][0], "default:t");
        assert_eq!(parsed["offsets"], 2);
    }

    #[test]
    fn an_unidentified_line_escapes_and_cuts_the_path_the_client_sent() {
        let path = format!("/topics/a\n{{\"event\":\"produce\"}}{}", "é".repeat(300));
        let line = UnidentifiedLine(&Unidentified {
            peer: Some("192.0.2.9:41000".parse().unwrap()),
            method: "POST",
            path: &path,
            reason: "invalid_token",
            status: 401,
        })
        .to_string();
        assert!(line.chars().all(|c| (' '..='~').contains(&c)), "{line}");
        let parsed: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(parsed["event"], "unauthenticated");
        assert_eq!(parsed["principal"], serde_json::Value::Null);
        assert_eq!(parsed["peer"], "192.0.2.9:41000");
        assert_eq!(parsed["reason"], "invalid_token");
        assert_eq!(parsed["status"], 401);
        let logged = parsed["path"].as_str().unwrap();
        assert!(
            path.starts_with(logged) && logged.len() <= MAX_PATH,
            "{logged}"
        );
        assert!(
            logged.len() > MAX_PATH - 2,
            "cut at a character boundary near the limit"
        );
    }

    #[test]
    fn a_produce_line_says_who_what_where_and_how_it_ended() {
        let topic = Topic::from("default:readings");
        let line = ProduceLine(&Produced {
            who: who(None),
            topic: Some(&topic),
            records: 2,
            appended: Some((10, 11)),
            status: 200,
        })
        .to_string();
        assert_eq!(
            line,
            r#"{"event":"produce","principal":null,"peer":"192.0.2.7:40000","topic":"default:readings","records":2,"first_offset":10,"last_offset":11,"status":200}"#
        );
    }
}
