//! The crate's error type.

use std::path::PathBuf;

/// Errors that stop a file from being read. Malformed lines are not errors; they are
/// counted in [`crate::FileStats`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Opening, mapping, reading or listing `path` failed (a missing path included).
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// `path` is neither a regular file nor a folder (a FIFO, socket or
    /// device): it is refused before it is opened, as opening a FIFO waits
    /// for a writer and a device may never end.
    #[error("{}: not a log file but {kind}: only regular files and folders of them are read", path.display())]
    NotAFile {
        /// The path given or found.
        path: PathBuf,
        /// What it is instead (`a FIFO`, `a socket`, `a device`).
        kind: &'static str,
    },
    /// `path` is a symbolic link to `target`, where there is nothing: a
    /// share not mounted, a log moved or deleted. Refused like a missing
    /// path, as a log named to be read that cannot be.
    #[error("{}: a broken link: it points to {}, which does not exist", path.display(), target.display())]
    BrokenLink {
        /// The link given or found.
        path: PathBuf,
        /// Where it points.
        target: PathBuf,
    },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    /// The path the error is about.
    pub fn path(&self) -> &std::path::Path {
        match self {
            Error::Io { path, .. } | Error::NotAFile { path, .. } | Error::BrokenLink { path, .. } => path,
        }
    }
}
