use std::fmt;

/// Why a policy (or an inventory) could not be loaded. Always names the file,
/// and the line when there is one.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("{}", Located(file, *line, message))]
    Invalid { file: String, line: Option<usize>, message: String },
    #[error("{file}: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
}

impl PolicyError {
    /// The 1-based line the error is about, when known.
    pub fn line(&self) -> Option<usize> {
        match self {
            PolicyError::Invalid { line, .. } => *line,
            PolicyError::Io { .. } => None,
        }
    }
}

struct Located<'a>(&'a String, Option<usize>, &'a String);

impl fmt::Display for Located<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self.1 {
            Some(l) => write!(f, "{}:{}: {}", self.0, l, self.2),
            None => write!(f, "{}: {}", self.0, self.2),
        }
    }
}
