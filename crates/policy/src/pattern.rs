//! URL Rewrite patterns: a rule's URL pattern or a condition on a server
//! variable, as the IIS URL Rewrite module tests them. Patterns are compiled
//! once; testing one allocates nothing.

use std::fmt;
use std::io::Write;

use exchange::Request;
use regex::bytes::{Regex, RegexBuilder};

/// What a pattern is tested against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RewriteInput {
    /// The rule's URL: the path below `base` (where the rule is defined),
    /// without its leading `/`, as URL Rewrite matches distributed rules.
    Url { base: String },
    /// `{HTTP_USER_AGENT}`
    UserAgent,
    /// `{QUERY_STRING}`: the query without `?`, as the client sent it
    /// ([`exchange::Request::client_query`]).
    QueryString,
    /// `{REMOTE_ADDR}`: the connection's address.
    RemoteAddr,
    /// `{HTTP_X_FORWARDED_FOR}`
    ForwardedFor,
    /// `{URL}` and `{PATH_INFO}`: the decoded path, with its leading `/`.
    Path,
    /// `{REQUEST_METHOD}`
    Method,
}

/// Server variables casguard can test, as written in `<add input="…">`.
const VARIABLES: [(&str, RewriteInput); 7] = [
    ("{HTTP_USER_AGENT}", RewriteInput::UserAgent),
    ("{QUERY_STRING}", RewriteInput::QueryString),
    ("{REMOTE_ADDR}", RewriteInput::RemoteAddr),
    ("{HTTP_X_FORWARDED_FOR}", RewriteInput::ForwardedFor),
    ("{URL}", RewriteInput::Path),
    ("{PATH_INFO}", RewriteInput::Path),
    ("{REQUEST_METHOD}", RewriteInput::Method),
];

impl RewriteInput {
    /// The input of a condition, `{HTTP_USER_AGENT}` and the like, any case.
    pub fn from_variable(text: &str) -> Option<RewriteInput> {
        let t = text.trim();
        VARIABLES.iter().find(|(name, _)| name.eq_ignore_ascii_case(t)).map(|(_, i)| i.clone())
    }

    /// The server variables casguard can test, for messages.
    pub fn supported() -> String {
        let v: Vec<&str> = VARIABLES.iter().map(|(n, _)| *n).collect();
        v.join(", ")
    }

    fn label(&self) -> String {
        match self {
            RewriteInput::Url { base } if base == "/" => "URL".to_string(),
            RewriteInput::Url { base } => format!("URL below {base}"),
            other => VARIABLES.iter().find(|(_, i)| i == other).map(|(n, _)| n.to_string()).unwrap_or_default(),
        }
    }
}

/// How a pattern is written (`patternSyntax`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PatternSyntax {
    #[default]
    EcmaScript,
    Wildcard,
    ExactMatch,
}

impl PatternSyntax {
    pub fn name(self) -> &'static str {
        match self {
            PatternSyntax::EcmaScript => "ECMAScript",
            PatternSyntax::Wildcard => "Wildcard",
            PatternSyntax::ExactMatch => "ExactMatch",
        }
    }

    pub fn from_name(s: &str) -> Option<PatternSyntax> {
        [PatternSyntax::EcmaScript, PatternSyntax::Wildcard, PatternSyntax::ExactMatch]
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s.trim()))
    }
}

/// One compiled test: `input` matches `pattern` (or does not, when negated).
#[derive(Clone, Debug)]
pub struct TextPattern {
    pub input: RewriteInput,
    pub pattern: String,
    pub syntax: PatternSyntax,
    pub ignore_case: bool,
    pub negate: bool,
    regex: Regex,
}

impl TextPattern {
    /// Compile a pattern. Regular expressions run in ASCII mode (`\d` is
    /// `[0-9]`, as in ECMAScript); look-around and back-references, which
    /// Rust's regex engine does not have, are refused with the reason.
    pub fn new(
        input: RewriteInput,
        pattern: &str,
        syntax: PatternSyntax,
        ignore_case: bool,
        negate: bool,
    ) -> Result<TextPattern, String> {
        let source = match syntax {
            PatternSyntax::EcmaScript => pattern.to_string(),
            PatternSyntax::ExactMatch => format!("^{}$", regex::escape(pattern)),
            PatternSyntax::Wildcard => {
                let parts: Vec<String> = pattern.split('*').map(regex::escape).collect();
                format!("^{}$", parts.join(".*"))
            }
        };
        let regex = RegexBuilder::new(&source)
            .case_insensitive(ignore_case)
            .unicode(false)
            .dot_matches_new_line(syntax == PatternSyntax::Wildcard)
            .build()
            .map_err(|e| {
                let text = e.to_string();
                let last = text.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("").trim().to_string();
                format!("pattern '{pattern}' is not a regular expression casguard can run ({last})")
            })?;
        Ok(TextPattern { input, pattern: pattern.to_string(), syntax, ignore_case, negate, regex })
    }

    pub(crate) fn matches(&self, req: &Request) -> bool {
        let hit = match &self.input {
            RewriteInput::Url { base } => self.regex.is_match(below(&req.stem, base).as_bytes()),
            RewriteInput::UserAgent => self.regex.is_match(req.user_agent.as_bytes()),
            RewriteInput::QueryString => crate::model::with_client_query(req, |q| self.regex.is_match(q.as_bytes())),
            RewriteInput::ForwardedFor => self.regex.is_match(req.forwarded_for_header().as_bytes()),
            RewriteInput::Path => self.regex.is_match(req.stem.as_bytes()),
            RewriteInput::Method => self.regex.is_match(req.method.as_bytes()),
            RewriteInput::RemoteAddr => {
                // An address is at most 45 bytes: written on the stack, not allocated.
                let mut buf = [0u8; 64];
                let len = match req.peer_ip {
                    Some(ip) => {
                        let mut cur = std::io::Cursor::new(&mut buf[..]);
                        let _ = write!(cur, "{ip}");
                        cur.position() as usize
                    }
                    None => 0,
                };
                self.regex.is_match(&buf[..len])
            }
        };
        hit != self.negate
    }
}

/// The path below `base`, without the leading `/`: what a distributed rule
/// defined at `base` sees. A path outside `base` is seen whole.
fn below<'a>(stem: &'a str, base: &str) -> &'a str {
    let base = base.trim_end_matches('/');
    let rest = if !base.is_empty()
        && stem.len() >= base.len()
        && stem.as_bytes()[..base.len()].eq_ignore_ascii_case(base.as_bytes())
        && matches!(stem.as_bytes().get(base.len()), None | Some(b'/'))
    {
        &stem[base.len()..]
    } else {
        stem
    };
    rest.strip_prefix('/').unwrap_or(rest)
}

impl fmt::Display for TextPattern {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let verb = if self.negate { "does not match" } else { "matches" };
        let case = if self.ignore_case { "" } else { ", case-sensitive" };
        let syntax = match self.syntax {
            PatternSyntax::EcmaScript => "",
            PatternSyntax::Wildcard => " (wildcard)",
            PatternSyntax::ExactMatch => " (exact)",
        };
        write!(f, "{} {verb} '{}'{syntax}{case}", self.input.label(), self.pattern)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(stem: &str, ua: &str) -> Request {
        Request { stem: stem.into(), user_agent: ua.into(), ..Request::default() }
    }

    #[test]
    fn urls_are_relative_to_where_the_rule_is_defined() {
        assert_eq!(below("/EWS/Exchange.asmx", "/"), "EWS/Exchange.asmx");
        assert_eq!(below("/EWS/Exchange.asmx", "/ews"), "Exchange.asmx");
        assert_eq!(below("/EWS", "/EWS"), "");
        assert_eq!(below("/EWSx/a", "/EWS"), "EWSx/a");
        let p = TextPattern::new(
            RewriteInput::Url { base: "/EWS".into() },
            "^exchange\\.asmx$",
            PatternSyntax::EcmaScript,
            true,
            false,
        )
        .unwrap();
        assert!(p.matches(&req("/EWS/Exchange.asmx", "")));
        assert!(!p.matches(&req("/owa/Exchange.asmx", "")));
    }

    #[test]
    fn syntaxes_case_and_negation() {
        let ua = |pattern: &str, syntax, ic, neg| {
            TextPattern::new(RewriteInput::UserAgent, pattern, syntax, ic, neg).unwrap()
        };
        let r = req("/", "Outlook-iOS/2.0");
        assert!(ua("^outlook-ios/", PatternSyntax::EcmaScript, true, false).matches(&r));
        assert!(!ua("^outlook-ios/", PatternSyntax::EcmaScript, false, false).matches(&r));
        assert!(ua("^outlook-ios/", PatternSyntax::EcmaScript, false, true).matches(&r));
        assert!(ua("Outlook-*", PatternSyntax::Wildcard, false, false).matches(&r));
        assert!(!ua("Outlook", PatternSyntax::Wildcard, false, false).matches(&r));
        assert!(ua("outlook-ios/2.0", PatternSyntax::ExactMatch, true, false).matches(&r));
        assert!(!ua("Outlook-iOS/2", PatternSyntax::ExactMatch, true, false).matches(&r));
        // ECMAScript's \d is ASCII.
        assert!(!ua("\\d", PatternSyntax::EcmaScript, true, false).matches(&req("/", "\u{0663}")));
        let e = TextPattern::new(RewriteInput::UserAgent, "(?=x)", PatternSyntax::EcmaScript, true, false);
        assert!(e.unwrap_err().contains("look-around"));
    }

    #[test]
    fn remote_addr_and_variables() {
        let p =
            TextPattern::new(RewriteInput::RemoteAddr, "^10\\.1\\.", PatternSyntax::EcmaScript, true, false).unwrap();
        let mut r = req("/", "");
        assert!(!p.matches(&r));
        r.peer_ip = Some("10.1.2.3".parse().unwrap());
        assert!(p.matches(&r));
        assert_eq!(RewriteInput::from_variable("{http_user_agent}"), Some(RewriteInput::UserAgent));
        assert_eq!(RewriteInput::from_variable("{HTTP_COOKIE}"), None);
        assert!(p.to_string().contains("{REMOTE_ADDR} matches '^10\\.1\\.'"));
    }
}
