//! The TOML data files the crate reads (the client catalog, Exchange's
//! files, the exploit rules), whose errors name the line they are about;
//! the gateway reads its configuration file the same way.

use serde::de::DeserializeOwned;

/// The 1-based line of `text` that the byte at `offset` is on.
pub fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())].iter().filter(|&&b| b == b'\n').count() + 1
}

/// `text` read as TOML; a syntax or type error as its line (0 when the
/// parser names none) and its message.
pub fn parse<T: DeserializeOwned>(text: &str) -> Result<T, (usize, String)> {
    toml::from_str(text).map_err(|e| (e.span().map_or(0, |s| line_of(text, s.start)), e.message().trim().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_count_from_one_and_errors_name_theirs() {
        let text = "a = 1\nb = 2\n";
        assert_eq!([0, 5, 6, 99].map(|o| line_of(text, o)), [1, 1, 2, 3]);
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        struct Ab {
            a: u8,
            b: u8,
        }
        let (line, message) = parse::<Ab>("a = 1\nb = 'x'\n").err().unwrap();
        assert_eq!(line, 2, "{message}");
        assert!(!message.is_empty() && message == message.trim());
        assert!(parse::<Ab>(text).is_ok());
    }
}
