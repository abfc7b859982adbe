//! Operational messages (start, reloads, upstream health, denials). The
//! library never prints: the binary passes a sink, tests capture it.

use std::fmt;
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error,
    Warn,
    Info,
    Debug,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Error => "error",
            Level::Warn => "warning",
            Level::Info => "info",
            Level::Debug => "debug",
        })
    }
}

/// Where messages go. Never given passwords or Authorization headers.
pub type EventSink = Arc<dyn Fn(Level, &str) + Send + Sync>;

/// A sink that drops everything.
pub fn silent() -> EventSink {
    Arc::new(|_, _| {})
}

/// How the binary writes each event: one line of text, or one JSON object.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    #[default]
    Text,
    Json,
}

/// One event as exactly one line (no newline at the end). A message can
/// carry what a client sent (a path, a user name), so control characters
/// are escaped: a CR or LF in a request must not forge a line of its own.
pub fn line(format: Format, time: &str, level: Level, msg: &str) -> String {
    let mut out = String::with_capacity(time.len() + msg.len() + 40);
    match format {
        Format::Text => {
            out.push_str(time);
            out.push(' ');
            out.push_str(&level.to_string());
            out.push_str(": ");
            escape_into(msg, false, &mut out);
        }
        Format::Json => {
            out.push_str("{\"time\":\"");
            escape_into(time, true, &mut out);
            out.push_str("\",\"level\":\"");
            out.push_str(&level.to_string());
            out.push_str("\",\"message\":\"");
            escape_into(msg, true, &mut out);
            out.push_str("\"}");
        }
    }
    out
}

/// Control characters (and the Unicode line and paragraph separators) as
/// `\n`, `\r`, `\t` or `\u{..}`; in JSON also `"` and `\`.
fn escape_into(s: &str, json: bool, out: &mut String) {
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '"' | '\\' if json => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => {
                if json {
                    out.push_str(&format!("\\u{:04x}", u32::from(c)));
                } else {
                    out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
                }
            }
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_cannot_forge_an_event_line() {
        let msg = "deny GET /owa\r\n2026-01-01T00:00:00Z info: allow user=CONTOSO\\boss\u{85}\u{2028}";
        let text = line(Format::Text, "2026-12-02T10:00:00Z", Level::Info, msg);
        assert!(!text.chars().any(|c| c.is_control() || c == '\u{2028}'), "{text}");
        assert_eq!(text.lines().count(), 1);
        assert!(text.contains("/owa\\r\\n2026") && text.contains("CONTOSO\\boss\\u{85}\\u{2028}"), "{text}");
        let json = line(Format::Json, "t", Level::Warn, msg);
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["message"], msg, "JSON keeps the message exactly");
        assert_eq!(v["level"], "warning");
        assert_eq!(json.lines().count(), 1);
    }
}
