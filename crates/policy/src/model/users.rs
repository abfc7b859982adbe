//! User sets, matched as Active Directory signs a name in.

use std::collections::HashSet;

use exchange::text::Glob;

/// A set of users: exact keys (lower-case) and `*` patterns.
#[derive(Clone, Debug, Default)]
pub struct UserSet {
    pub exact: HashSet<String>,
    /// The exact names beyond ASCII as Active Directory folds them (see
    /// [`fold_user_key`]): `jürgen` is `jurgen` to a sign-in.
    pub folded: HashSet<String>,
    pub patterns: Vec<Glob>,
    /// What the file said, for display: patterns, names, `@file`.
    pub shown: Vec<String>,
}

impl UserSet {
    pub(super) fn matches(&self, user: &str) -> bool {
        if user.is_empty() {
            return false;
        }
        if self.exact.contains(user) || self.folded.contains(user) || self.patterns.iter().any(|p| p.matches(user)) {
            return true;
        }
        // Allocates for a name beyond ASCII only.
        fold_user_key(user).is_some_and(|f| {
            self.exact.contains(&f) || self.folded.contains(&f) || self.patterns.iter().any(|p| p.matches(&f))
        })
    }
    /// Plain user names only (no patterns, no group file), for emitters.
    pub fn plain_names(&self) -> Option<Vec<&str>> {
        if self.patterns.is_empty() && self.shown.iter().all(|s| !s.starts_with('@')) {
            let mut v: Vec<&str> = self.exact.iter().map(String::as_str).collect();
            v.sort_unstable();
            Some(v)
        } else {
            None
        }
    }
}

/// Letters Active Directory reads as their base letter in a user name.
const FOLDS: [(char, &str); 21] = [
    ('a', "àáâãäåāăąǎǟǡǻȁȃȧ"),
    ('c', "çćĉċč"),
    ('d', "ďđ"),
    ('e', "èéêëēĕėęěȅȇȩ"),
    ('g', "ĝğġģǧǵ"),
    ('h', "ĥħȟ"),
    ('i', "ìíîïĩīĭįıǐȉȋ"),
    ('j', "ĵǰ"),
    ('k', "ķǩ"),
    ('l', "ĺļľŀł"),
    ('n', "ñńņňǹ"),
    ('o', "òóôõöøōŏőǒǫǭǿȍȏȫȭȯȱ"),
    ('r', "ŕŗřȑȓ"),
    ('s', "śŝşšșſ"),
    ('t', "ţťŧț"),
    ('u', "ùúûüũūŭůűųǔǖǘǚǜȕȗ"),
    ('w', "ŵ"),
    ('y', "ýÿŷȳ"),
    ('z', "źżžƶ"),
    ('e', "ǝ"),
    ('o', "ɵ"),
];

/// A user key beyond ASCII as Active Directory would match it at sign-in,
/// if that differs: full-width forms as ASCII (KB 2656984), diacritics and
/// combining marks dropped, `ß` as `ss` (KB 938447, Samba bug 14847: `björn`
/// signs in `bjorn`), then cut to the account key again (`baduser＠contoso`).
/// A partial fold: Active Directory's own rules are not published. `None`
/// for ASCII, without allocating.
pub fn fold_user_key(key: &str) -> Option<String> {
    if key.is_ascii() {
        return None;
    }
    let mut out = String::with_capacity(key.len());
    for c in key.chars().flat_map(char::to_lowercase) {
        match c {
            '\u{FF01}'..='\u{FF5E}' => out.extend(char::from_u32(c as u32 - 0xFEE0).map(|a| a.to_ascii_lowercase())),
            '\u{0300}'..='\u{036F}' => {}
            'ß' => out.push_str("ss"),
            _ => out.push(FOLDS.iter().find(|(_, from)| from.contains(c)).map_or(c, |(to, _)| *to)),
        }
    }
    let name = out.rsplit_once('\\').map_or(out.as_str(), |(_, u)| u);
    let name = name.split_once('@').map_or(name, |(u, _)| u).trim();
    (name != key).then(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_keys_fold_as_active_directory_signs_in() {
        for (key, want) in [
            ("ｂａｄｕｓｅｒ", Some("baduser")),
            ("bāduser", Some("baduser")),
            ("ba\u{301}duser", Some("baduser")),
            ("meißner", Some("meissner")),
            ("baduser＠contoso.com", Some("baduser")),
            ("contoso＼baduser", Some("baduser")),
            ("jürgen", Some("jurgen")),
            ("baduser", None),
            ("山田", None),
        ] {
            assert_eq!(fold_user_key(key).as_deref(), want, "{key}");
        }
        let mut set = UserSet::default();
        set.exact.insert("jürgen".into());
        set.folded.insert("jurgen".into());
        assert!(set.matches("jurgen") && set.matches("jürgen") && set.matches("ｊüｒｇｅｎ"));
        assert!(!set.matches("juergen") && !set.matches(""));
    }
}
