//! Text matching written once for every crate: ASCII case-insensitive
//! search, prefixes and suffixes, `*` globs, and Exchange's user-agent
//! patterns. Allocation-free: they run on the evaluation hot path of the
//! log reader, simulate and the gateway. (Percent-decoding and hex live in
//! [`crate::url`].)

/// ASCII case-insensitive substring search.
pub fn contains_ci(hay: &str, needle: &str) -> bool {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    let Some((&first, rest)) = n.split_first() else { return true };
    if h.len() < n.len() {
        return false;
    }
    let last_start = h.len() - n.len();
    // Jump between candidates with memchr rather than comparing at every offset,
    // on a byte without case when the needle has one (`=` in `clientApplication=`):
    // one byte to look for, and rarer than a letter.
    if let Some(k) = n.iter().position(|c| !c.is_ascii_alphabetic()) {
        // The byte after the rare one first: most candidates fail there.
        let after = n.get(k + 1);
        return memchr::memchr_iter(n[k], &h[k..=last_start + k]).any(|i| {
            after.is_none_or(|a| h[i + k + 1].eq_ignore_ascii_case(a)) && h[i..i + n.len()].eq_ignore_ascii_case(n)
        });
    }
    memchr::memchr2_iter(first.to_ascii_lowercase(), first.to_ascii_uppercase(), &h[..=last_start])
        .any(|i| h[i + 1..i + n.len()].eq_ignore_ascii_case(rest))
}

/// The ASCII letter that ICU's simple upper case takes a letter beyond
/// ASCII for: `ı` (U+0131) is `I` and `ſ` (U+017F) is `S`; ASCII as itself.
/// .NET's `OrdinalIgnoreCase` on Windows, where Exchange runs, does not
/// (dotnet/runtime#32247: `"adminiſtrator"` is not `"administrator"` there),
/// so Exchange finds no parameter under such a name; see [`NameMatch`]. Not
/// IIS's path comparison (`url::fold`), which also takes the Kelvin sign for
/// `K` and `İ` for `I`.
pub fn dotnet_ascii_upper(c: char) -> Option<u8> {
    match c {
        '\u{131}' => Some(b'I'),
        '\u{17F}' => Some(b'S'),
        c if c.is_ascii() => Some(c as u8),
        _ => None,
    }
}

/// How a parameter's name (decoded) compares with an ASCII name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameMatch {
    /// Another name.
    No,
    /// The name in any ASCII case: what ASP.NET's `Request.QueryString` and
    /// `Request.Form` find (`HttpValueCollection`, `OrdinalIgnoreCase`).
    Exact,
    /// The name only with `ı` taken for `I` or `ſ` for `S`
    /// ([`dotnet_ascii_upper`]): no name to Exchange on Windows, the name
    /// where .NET cases through ICU. Only an evasion spells a name so, so
    /// casguard reads it as the name where that can only deny more (a
    /// device's type), and refuses it where it would name a user (a token,
    /// a sign-in form), as no reading is safe there.
    LookAlike,
}

/// Whether a parameter `name` (decoded) is the ASCII name `ascii`; see
/// [`NameMatch`]. `U\u{17F}er` is a look-alike of `User`.
pub fn name_match(name: &str, ascii: &str) -> NameMatch {
    if name.is_ascii() {
        return if name.eq_ignore_ascii_case(ascii) { NameMatch::Exact } else { NameMatch::No };
    }
    let mut want = ascii.bytes();
    let same = name
        .chars()
        .all(|c| dotnet_ascii_upper(c).zip(want.next()).is_some_and(|(got, want)| got.eq_ignore_ascii_case(&want)))
        && want.next().is_none();
    if same {
        NameMatch::LookAlike
    } else {
        NameMatch::No
    }
}

/// ASCII case-insensitive prefix test.
pub fn starts_with_ci(hay: &str, prefix: &str) -> bool {
    hay.len() >= prefix.len() && hay.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// ASCII case-insensitive suffix test.
pub fn ends_with_ci(hay: &str, suffix: &str) -> bool {
    hay.len() >= suffix.len() && hay.as_bytes()[hay.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
}

/// Whether a path names a file with `extension` (`.asmx`), either as its last
/// segment or before PATH_INFO: `/EWS/Exchange.asmx/GetFolder` runs
/// Exchange.asmx, so a rule scoped to `.asmx` must see it.
pub fn path_has_extension_ci(path: &str, extension: &str) -> bool {
    path.split('/').any(|segment| ends_with_ci(segment, extension))
}

/// Substring test over `a` immediately followed by `b`, without joining them:
/// IIS scans a whole header line (`Name: value`), not the value only.
pub fn concat_contains_ci(a: &str, b: &str, needle: &str) -> bool {
    if contains_ci(a, needle) || contains_ci(b, needle) {
        return true;
    }
    let n = needle.as_bytes();
    (1..n.len()).any(|k| {
        let (head, tail) = n.split_at(k);
        a.len() >= head.len()
            && b.len() >= tail.len()
            && a.as_bytes()[a.len() - head.len()..].eq_ignore_ascii_case(head)
            && b.as_bytes()[..tail.len()].eq_ignore_ascii_case(tail)
    })
}

/// Glob with `*` (any run of characters), ASCII case-insensitive.
pub fn glob_ci(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi].eq_ignore_ascii_case(&t[ti]) {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// A `*` pattern compiled when it is loaded (a policy's user and path
/// patterns): which test it needs is decided once, not at each match. ASCII
/// case-insensitive; `*` matches any run of characters, as [`glob_ci`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Glob {
    pattern: String,
    /// `pattern` without the `*` around it, for the simple shapes.
    needle: String,
    shape: GlobShape,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GlobShape {
    Exact,
    Prefix,
    Suffix,
    Contains,
    Any,
    /// A `*` inside: the general matcher.
    Inner,
}

impl Glob {
    pub fn new(pattern: &str) -> Glob {
        let needle = pattern.trim_matches('*');
        let shape = match (pattern.starts_with('*'), pattern.ends_with('*')) {
            _ if needle.contains('*') => GlobShape::Inner,
            _ if needle.is_empty() && !pattern.is_empty() => GlobShape::Any,
            (false, false) => GlobShape::Exact,
            (false, true) => GlobShape::Prefix,
            (true, false) => GlobShape::Suffix,
            (true, true) => GlobShape::Contains,
        };
        Glob { pattern: pattern.to_owned(), needle: needle.to_owned(), shape }
    }

    /// A path pattern: without `*` it is a prefix (`/EWS` covers `/EWS/x`).
    pub fn path(pattern: &str) -> Glob {
        if pattern.contains('*') {
            return Glob::new(pattern);
        }
        Glob { pattern: pattern.to_owned(), needle: pattern.to_owned(), shape: GlobShape::Prefix }
    }

    #[inline]
    pub fn matches(&self, text: &str) -> bool {
        match self.shape {
            GlobShape::Exact => text.eq_ignore_ascii_case(&self.needle),
            GlobShape::Prefix => starts_with_ci(text, &self.needle),
            GlobShape::Suffix => ends_with_ci(text, &self.needle),
            GlobShape::Contains => contains_ci(text, &self.needle),
            GlobShape::Any => true,
            GlobShape::Inner => glob_ci(&self.pattern, text),
        }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// The pattern has a `*` (a path pattern without one is a prefix).
    pub fn has_wildcard(&self) -> bool {
        self.pattern.contains('*')
    }
}

impl std::fmt::Display for Glob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.pattern)
    }
}

/// Exchange's `UserAgentPattern.IsMatch` (exchange.md §3a): `*`/`**` match
/// anything; `*X*` contains, `*X` ends with, `X*` starts with (all
/// case-sensitive); anything else is an exact, case-insensitive comparison.
/// An empty user agent matches no wildcard pattern.
pub fn ews_pattern_matches(pattern: &str, user_agent: &str) -> bool {
    let (shape, needle) = EwsShape::of(pattern);
    shape.matches(&pattern[needle], user_agent)
}

/// An EWS application list pattern ([`ews_pattern_matches`]) compiled when
/// the policy loads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EwsPattern {
    pattern: String,
    needle: std::ops::Range<usize>,
    shape: EwsShape,
    blocking: bool,
}

impl EwsPattern {
    /// A pattern of an allow list: it matches only as written.
    pub fn new(pattern: &str) -> EwsPattern {
        let (shape, needle) = EwsShape::of(pattern);
        EwsPattern { pattern: pattern.to_owned(), needle, shape, blocking: false }
    }

    /// A pattern of a block list. Exchange tests `X*` and `*X` with
    /// culture-sensitive `StartsWith`/`EndsWith`, which skip characters of no
    /// weight (a soft hyphen, zero-width and direction marks), so
    /// `Soft\u{AD}ware` meets `Software*` there. This one also matches the
    /// user agent without them, and without bytes that were not UTF-8 (one
    /// may be a Latin-1 soft hyphen): a block list never matches less than
    /// Exchange's would.
    pub fn blocking(pattern: &str) -> EwsPattern {
        EwsPattern { blocking: true, ..EwsPattern::new(pattern) }
    }

    #[inline]
    pub fn matches(&self, user_agent: &str) -> bool {
        let needle = &self.pattern[self.needle.clone()];
        self.shape.matches(needle, user_agent)
            || (self.blocking
                && matches!(self.shape, EwsShape::Prefix | EwsShape::Suffix)
                && !user_agent.is_ascii()
                && self.shape.matches(needle, &without_ignorable(user_agent)))
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }
}

impl std::fmt::Display for EwsPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.pattern)
    }
}

/// `text` without the characters a culture-sensitive comparison on Windows
/// gives no weight, nor U+FFFD (a byte that was not UTF-8).
fn without_ignorable(text: &str) -> String {
    text.chars()
        .filter(|&c| {
            !matches!(c,
                '\u{AD}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}'
                    | '\u{FEFF}' | '\u{FFFD}')
        })
        .collect()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EwsShape {
    Any,
    Contains,
    Suffix,
    Prefix,
    Exact,
}

impl EwsShape {
    /// The shape of `pattern` and where its text is, without the `*`.
    fn of(pattern: &str) -> (EwsShape, std::ops::Range<usize>) {
        let len = pattern.len();
        if pattern == "*" || pattern == "**" {
            return (EwsShape::Any, 0..0);
        }
        match (pattern.starts_with('*'), len > 1 && pattern.ends_with('*')) {
            (true, true) => (EwsShape::Contains, 1..len - 1),
            (true, false) => (EwsShape::Suffix, 1..len),
            (false, true) => (EwsShape::Prefix, 0..len - 1),
            (false, false) => (EwsShape::Exact, 0..len),
        }
    }

    fn matches(self, needle: &str, user_agent: &str) -> bool {
        match self {
            EwsShape::Any => true,
            _ if user_agent.is_empty() => false,
            EwsShape::Contains => user_agent.contains(needle),
            EwsShape::Suffix => user_agent.ends_with(needle),
            EwsShape::Prefix => user_agent.starts_with(needle),
            EwsShape::Exact => {
                needle.chars().flat_map(char::to_uppercase).eq(user_agent.chars().flat_map(char::to_uppercase))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_compare_as_asp_net_finds_parameters() {
        for (name, ascii, want) in [
            ("User", "user", NameMatch::Exact),
            ("DEVICETYPE", "DeviceType", NameMatch::Exact),
            ("U\u{17F}er", "User", NameMatch::LookAlike),
            ("Dev\u{131}ceType", "DEVICETYPE", NameMatch::LookAlike),
            ("acce\u{17F}s_token", "access_token", NameMatch::LookAlike),
            ("Use", "User", NameMatch::No),
            ("Users", "User", NameMatch::No),
            ("U\u{17F}ers", "User", NameMatch::No),
            ("\u{212A}ey", "key", NameMatch::No),
            ("Us\u{E9}r", "User", NameMatch::No),
            ("Dev\u{130}ceId", "DeviceId", NameMatch::No),
        ] {
            assert_eq!(super::name_match(name, ascii), want, "{name}");
        }
    }

    use super::*;

    #[test]
    fn contains_ci_matches_naive() {
        let naive = |h: &str, n: &str| h.to_ascii_lowercase().contains(&n.to_ascii_lowercase());
        let hays = [
            "",
            "a",
            "clientApplication=ActiveMonitor",
            "x=CLIENTAPPLICATION=ACTIVEMONITOR;",
            "/Proxy",
            "/a/proxy/b",
            "==",
            "ab=c",
        ];
        let needles = ["", "=", "b=", "clientApplication=ActiveMonitor", "/Proxy", "proxy", "=c", "a"];
        for h in hays {
            for n in needles {
                assert_eq!(contains_ci(h, n), naive(h, n), "{h:?} {n:?}");
            }
        }
    }

    #[test]
    fn prefixes_suffixes_and_short_needles() {
        assert!(contains_ci("abcDEF", "cdE") && contains_ci("x", "") && !contains_ci("ab", "abc"));
        assert!(!contains_ci("abcab", "aba") && contains_ci("aXbA", "ba"));
        assert!(ends_with_ci("EX$", "$") && !ends_with_ci("$", "EX$"));
        assert!(starts_with_ci("/EWS/x", "/ews") && !starts_with_ci("/ew", "/ews"));
    }

    #[test]
    fn glob() {
        assert!(glob_ci("*jeff*", "bigjeffrey"));
        assert!(!glob_ci("jeff*", "bigjeff"));
        assert!(glob_ci("/ews/*", "/EWS/Exchange.asmx"));
        assert!(glob_ci("a*b*c", "aXXbYc"));
        assert!(!glob_ci("a*b*c", "aXXbY"));
    }

    #[test]
    fn compiled_patterns_match_as_the_plain_functions() {
        let patterns = ["", "*", "**", "a", "A*", "*b", "*ab*", "a*b", "*a*b*", "/ews", "/EWS/*", "x**", "**y", "é*"];
        let texts = ["", "a", "A", "ab", "AB", "xaby", "b", "/EWS/Exchange.asmx", "/ews", "xx", "yy", "É", "é!"];
        for p in patterns {
            for t in texts {
                assert_eq!(Glob::new(p).matches(t), glob_ci(p, t), "glob {p:?} {t:?}");
                assert_eq!(EwsPattern::new(p).matches(t), ews_pattern_matches(p, t), "ews {p:?} {t:?}");
                let path = if p.contains('*') { glob_ci(p, t) } else { starts_with_ci(t, p) };
                assert_eq!(Glob::path(p).matches(t), path, "path {p:?} {t:?}");
            }
        }
    }

    #[test]
    fn concat() {
        assert!(concat_contains_ci("User-Agent: ", "Foo", "agent: foo"));
        assert!(!concat_contains_ci("User-Agent: ", "Foo", "agent:foo"));
        assert!(concat_contains_ci("User-Agent: ", "xOutlook-iOS-Android/1.0", "outlook-ios"));
    }
}
