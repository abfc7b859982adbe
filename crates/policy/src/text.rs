//! Allocation-free string matching used on the evaluation hot path.

/// ASCII case-insensitive substring test.
pub(crate) fn contains_ci(hay: &str, needle: &str) -> bool {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    if n.is_empty() {
        return true;
    }
    if n.len() > h.len() {
        return false;
    }
    h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

pub(crate) fn starts_with_ci(hay: &str, prefix: &str) -> bool {
    hay.len() >= prefix.len() && hay.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

pub(crate) fn ends_with_ci(hay: &str, suffix: &str) -> bool {
    hay.len() >= suffix.len() && hay.as_bytes()[hay.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
}

/// Substring test over `a` immediately followed by `b`, without joining them:
/// IIS scans a whole header line (`Name: value`), not the value only.
pub(crate) fn concat_contains_ci(a: &str, b: &str, needle: &str) -> bool {
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
pub(crate) fn glob_ci(pattern: &str, text: &str) -> bool {
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
