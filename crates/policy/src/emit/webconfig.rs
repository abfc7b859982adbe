//! Merging emitted filtering rules into an existing web.config, as text:
//! comments, attribute order and formatting of the rest of the file are kept
//! byte for byte. A small tag scanner finds the
//! `configuration/system.webServer/security/requestFiltering/filteringRules`
//! path (outside any `<location>`), creating the missing elements.

use std::ops::Range;

/// Why a web.config could not be merged.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MergeError {
    #[error("web.config is not well-formed XML at byte {0}: {1}")]
    Malformed(usize, &'static str),
    /// [`MergeError::Malformed`] in the file given, by its line.
    #[error("web.config is not well-formed XML at line {0}: {1}")]
    MalformedLine(usize, &'static str),
    #[error("web.config has no <configuration> root element")]
    NoConfiguration,
}

#[derive(Debug)]
struct Elem {
    name: String,
    parent: Option<usize>,
    start: usize,
    /// The open tag, `<name ...>` or `<name .../>`.
    open: Range<usize>,
    /// Start of `</name>`; equals `open.end` for a self-closing element.
    close_start: usize,
    end: usize,
    self_closing: bool,
}

fn find(text: &str, from: usize, pat: &str) -> Option<usize> {
    text.get(from..)?.find(pat).map(|i| i + from)
}

fn scan(text: &str) -> Result<Vec<Elem>, MergeError> {
    let b = text.as_bytes();
    let mut elems: Vec<Elem> = Vec::new();
    let mut stack: Vec<usize> = Vec::new();
    let mut i = 0;
    while let Some(lt) = find(text, i, "<") {
        let rest = &text[lt..];
        if rest.starts_with("<!--") {
            i = find(text, lt + 4, "-->").ok_or(MergeError::Malformed(lt, "unterminated comment"))? + 3;
        } else if rest.starts_with("<![CDATA[") {
            i = find(text, lt, "]]>").ok_or(MergeError::Malformed(lt, "unterminated CDATA"))? + 3;
        } else if rest.starts_with("<?") {
            i = find(text, lt, "?>").ok_or(MergeError::Malformed(lt, "unterminated processing instruction"))? + 2;
        } else if rest.starts_with("<!") {
            i = find(text, lt, ">").ok_or(MergeError::Malformed(lt, "unterminated declaration"))? + 1;
        } else if rest.starts_with("</") {
            let gt = find(text, lt, ">").ok_or(MergeError::Malformed(lt, "unterminated end tag"))?;
            let name = text[lt + 2..gt].trim();
            let top = stack.pop().ok_or(MergeError::Malformed(lt, "end tag without start tag"))?;
            if elems[top].name != name {
                return Err(MergeError::Malformed(lt, "end tag does not match start tag"));
            }
            elems[top].close_start = lt;
            elems[top].end = gt + 1;
            i = gt + 1;
        } else {
            let mut j = lt + 1;
            while j < b.len() && !b[j].is_ascii_whitespace() && b[j] != b'>' && b[j] != b'/' {
                j += 1;
            }
            let name = text[lt + 1..j].to_string();
            if name.is_empty() {
                return Err(MergeError::Malformed(lt, "empty tag name"));
            }
            let mut quote = None;
            while j < b.len() {
                match (quote, b[j]) {
                    (None, b'"' | b'\'') => quote = Some(b[j]),
                    (Some(q), c) if c == q => quote = None,
                    (None, b'>') => break,
                    _ => {}
                }
                j += 1;
            }
            if j >= b.len() {
                return Err(MergeError::Malformed(lt, "unterminated start tag"));
            }
            let self_closing = b[j - 1] == b'/';
            let idx = elems.len();
            elems.push(Elem {
                name,
                parent: stack.last().copied(),
                start: lt,
                open: lt..j + 1,
                close_start: j + 1,
                end: j + 1,
                self_closing,
            });
            if !self_closing {
                stack.push(idx);
            }
            i = j + 1;
        }
    }
    if let Some(&open) = stack.last() {
        return Err(MergeError::Malformed(elems[open].start, "element never closed"));
    }
    Ok(elems)
}

fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let mut rest = tag;
    while let Some(p) = rest.find(name) {
        let before_ok = p > 0 && rest.as_bytes()[p - 1].is_ascii_whitespace();
        let after = rest[p + name.len()..].trim_start();
        if before_ok {
            if let Some(v) = after.strip_prefix('=') {
                let v = v.trim_start();
                let q = v.chars().next()?;
                if q == '"' || q == '\'' {
                    let end = v[1..].find(q)?;
                    return Some(&v[1..1 + end]);
                }
            }
        }
        rest = &rest[p + name.len()..];
    }
    None
}

fn line_indent(text: &str, pos: usize) -> &str {
    let line_start = text[..pos].rfind('\n').map_or(0, |i| i + 1);
    let ws = &text[line_start..pos];
    if ws.chars().all(|c| c == ' ' || c == '\t') {
        ws
    } else {
        ""
    }
}

/// Indentation step used by the file: the difference between the first
/// nested element's indent and its parent's; two spaces when unknown.
fn indent_unit(text: &str, elems: &[Elem]) -> String {
    for e in elems {
        if let Some(p) = e.parent {
            let (a, b) = (line_indent(text, elems[p].start), line_indent(text, e.start));
            if b.len() > a.len() && b.starts_with(a) {
                return b[a.len()..].to_string();
            }
        }
    }
    "  ".to_string()
}

fn reindent(block: &str, indent: &str, nl: &str) -> String {
    block.lines().map(|l| format!("{indent}{l}")).collect::<Vec<_>>().join(nl)
}

/// Nest `inner` (already formatted, unindented) in the `names` elements.
fn wrap(names: &[&str], inner: &str, unit: &str) -> String {
    let mut s = inner.to_string();
    for n in names.iter().rev() {
        s = format!("<{n}>\n{}\n</{n}>", reindent(&s, unit, "\n"));
    }
    s
}

/// Merge `rules` (each one `<filteringRule>` element, as emitted) into the
/// web.config text `existing`. A rule with the same name is replaced; others
/// are appended to `filteringRules`; missing parent elements are created.
/// Exchange's web.config files for the site, ActiveSync and EWS remove IIS's
/// `RequestFilteringModule`, which would leave the rules unused: the module
/// is added back after the removal.
pub fn merge_web_config(existing: &str, rules: &[String]) -> Result<String, MergeError> {
    // Read as given first, so that an error names its line in that file.
    scan(existing).map_err(|e| match e {
        MergeError::Malformed(at, what) => {
            MergeError::MalformedLine(existing.get(..at).unwrap_or(existing).matches('\n').count() + 1, what)
        }
        e => e,
    })?;
    let mut out = existing.to_string();
    for r in rules {
        out = merge_one(&out, r)?;
    }
    if !rules.is_empty() {
        out = keep_filtering_module(&out)?;
    }
    Ok(out)
}

const MODULE: &str = "RequestFilteringModule";

/// Add `<add name="RequestFilteringModule" />` to `configuration/system.webServer/modules`
/// when its last word on the module is a `<remove>`.
fn keep_filtering_module(text: &str) -> Result<String, MergeError> {
    let elems = scan(text)?;
    let child = |parent: Option<usize>, name: &str| elems.iter().position(|e| e.parent == parent && e.name == name);
    let Some(root) = child(None, "configuration") else { return Ok(text.to_string()) };
    let Some(modules) = child(Some(root), "system.webServer").and_then(|w| child(Some(w), "modules")) else {
        return Ok(text.to_string());
    };
    let last = elems
        .iter()
        .filter(|e| e.parent == Some(modules) && attr(&text[e.open.clone()], "name") == Some(MODULE))
        .map(|e| e.name.as_str())
        .next_back();
    if last != Some("remove") {
        return Ok(text.to_string());
    }
    let nl = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let unit = indent_unit(text, &elems);
    Ok(insert_child(text, &elems[modules], &format!("<add name=\"{MODULE}\" />"), &unit, nl))
}

fn merge_one(text: &str, rule: &str) -> Result<String, MergeError> {
    let elems = scan(text)?;
    let nl = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let unit = indent_unit(text, &elems);
    let child = |parent: Option<usize>, name: &str| elems.iter().position(|e| e.parent == parent && e.name == name);
    let root = child(None, "configuration").ok_or(MergeError::NoConfiguration)?;
    let path = ["system.webServer", "security", "requestFiltering", "filteringRules"];
    let mut at = root;
    let mut depth = 0;
    for name in path {
        match child(Some(at), name) {
            Some(c) => {
                at = c;
                depth += 1;
            }
            None => break,
        }
    }
    let rule_name = attr(rule, "name").unwrap_or_default();
    if depth == path.len() {
        // Same name: replace in place.
        if let Some(old) = elems.iter().find(|e| {
            e.parent == Some(at) && e.name == "filteringRule" && attr(&text[e.open.clone()], "name") == Some(rule_name)
        }) {
            let indent = line_indent(text, old.start);
            let new = reindent(rule, indent, nl);
            let new = new.strip_prefix(indent).unwrap_or(&new);
            return Ok(format!("{}{}{}", &text[..old.start], new, &text[old.end..]));
        }
    }
    let missing = &path[depth..];
    let snippet = wrap(missing, rule, &unit);
    Ok(insert_child(text, &elems[at], &snippet, &unit, nl))
}

/// Insert `snippet` as the last child of `parent`, indented one step deeper.
fn insert_child(text: &str, parent: &Elem, snippet: &str, unit: &str, nl: &str) -> String {
    let pindent = line_indent(text, parent.start);
    let cindent = format!("{pindent}{unit}");
    let body = reindent(snippet, &cindent, nl);
    if parent.self_closing {
        let open = &text[parent.open.clone()];
        let head = open[..open.len() - 2].trim_end();
        return format!(
            "{}{head}>{nl}{body}{nl}{pindent}</{}>{}",
            &text[..parent.start],
            parent.name,
            &text[parent.end..]
        );
    }
    let cs = parent.close_start;
    let line_start = text[..cs].rfind('\n').map_or(0, |i| i + 1);
    if text[line_start..cs].chars().all(|c| c == ' ' || c == '\t') && line_start > parent.open.end {
        format!("{}{body}{nl}{}", &text[..line_start], &text[line_start..])
    } else {
        format!("{}{nl}{body}{nl}{pindent}{}", &text[..cs], &text[cs..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: &str =
        "<filteringRule name=\"x\">\n  <denyStrings>\n    <add string=\"a\" />\n  </denyStrings>\n</filteringRule>";

    #[test]
    fn creates_missing_elements() {
        let t =
            "<?xml version=\"1.0\"?>\n<configuration>\n  <!-- <system.webServer> in a comment -->\n</configuration>\n";
        let m = merge_web_config(t, &[RULE.to_string()]).unwrap();
        assert!(m.contains("  <system.webServer>\n    <security>\n      <requestFiltering>\n        <filteringRules>\n          <filteringRule name=\"x\">"), "{m}");
        assert!(m.contains("<!-- <system.webServer> in a comment -->"));
    }

    #[test]
    fn replaces_same_name_and_opens_self_closing() {
        let t = "<configuration>\n  <system.webServer>\n    <security>\n      <requestFiltering allowDoubleEscaping=\"true\" />\n    </security>\n  </system.webServer>\n</configuration>";
        let once = merge_web_config(t, &[RULE.to_string()]).unwrap();
        assert!(once.contains("<requestFiltering allowDoubleEscaping=\"true\">"), "{once}");
        let twice = merge_web_config(&once, &[RULE.replace("\"a\"", "\"b\"")]).unwrap();
        assert_eq!(twice.matches("<filteringRule ").count(), 1, "{twice}");
        assert!(twice.contains("string=\"b\""));
    }

    #[test]
    fn adds_back_the_module_exchange_removes() {
        let t = "<configuration>\n  <system.webServer>\n    <modules>\n      <remove name=\"RequestFilteringModule\" />\n    </modules>\n  </system.webServer>\n</configuration>\n";
        let m = merge_web_config(t, &[RULE.to_string()]).unwrap();
        assert!(m.contains("      <remove name=\"RequestFilteringModule\" />\n      <add name=\"RequestFilteringModule\" />\n    </modules>"), "{m}");
        // Once is enough.
        assert_eq!(
            merge_web_config(&m, &[RULE.to_string()]).unwrap().matches("<add name=\"RequestFilteringModule\"").count(),
            1
        );
        // Nothing to merge, nothing changed.
        assert_eq!(merge_web_config(t, &[]).unwrap(), t);
    }

    #[test]
    fn rejects_malformed() {
        assert!(merge_web_config("<configuration><a></b></configuration>", &[RULE.to_string()]).is_err());
        assert_eq!(merge_web_config("<x/>", &[RULE.to_string()]), Err(MergeError::NoConfiguration));
        // An admin's file is read by lines: the error names the line of what is wrong.
        let cut = "<configuration>\n  <system.webServer>\n    <modules>\n  </system.webServer>\n</configuration>\n";
        let e = merge_web_config(cut, &[RULE.to_string()]).unwrap_err();
        assert_eq!(e.to_string(), "web.config is not well-formed XML at line 4: end tag does not match start tag");
        let open = "<configuration>\n  <system.webServer>\n  </system.webServer>\n  <location path=\"owa\">\n";
        let e = merge_web_config(open, &[RULE.to_string()]).unwrap_err();
        assert_eq!(e.to_string(), "web.config is not well-formed XML at line 4: element never closed");
    }
}
