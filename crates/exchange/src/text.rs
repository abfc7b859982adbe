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

/// ASCII case-insensitive prefix test.
pub fn starts_with_ci(hay: &str, prefix: &str) -> bool {
    hay.len() >= prefix.len() && hay.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// ASCII case-insensitive suffix test.
pub fn ends_with_ci(hay: &str, suffix: &str) -> bool {
    hay.len() >= suffix.len() && hay.as_bytes()[hay.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
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

/// Exchange's `UserAgentPattern.IsMatch` (exchange.md §3a): `*`/`**` match
/// anything; `*X*` contains, `*X` ends with, `X*` starts with (all
/// case-sensitive); anything else is an exact, case-insensitive comparison.
/// An empty user agent matches no wildcard pattern.
pub fn ews_pattern_matches(pattern: &str, user_agent: &str) -> bool {
    if pattern == "*" || pattern == "**" {
        return true;
    }
    if user_agent.is_empty() {
        return false;
    }
    let starts = pattern.starts_with('*');
    let ends = pattern.len() > 1 && pattern.ends_with('*');
    match (starts, ends) {
        (true, true) => user_agent.contains(&pattern[1..pattern.len() - 1]),
        (true, false) => user_agent.ends_with(&pattern[1..]),
        (false, true) => user_agent.starts_with(&pattern[..pattern.len() - 1]),
        (false, false) => {
            pattern.chars().flat_map(char::to_uppercase).eq(user_agent.chars().flat_map(char::to_uppercase))
        }
    }
}

#[cfg(test)]
mod tests {
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
    fn concat() {
        assert!(concat_contains_ci("User-Agent: ", "Foo", "agent: foo"));
        assert!(!concat_contains_ci("User-Agent: ", "Foo", "agent:foo"));
        assert!(concat_contains_ci("User-Agent: ", "xOutlook-iOS-Android/1.0", "outlook-ios"));
    }
}
