//! Building an interpreter from files: a client catalog instead of the
//! built-in one, and range files naming networks (`--ranges`). The one place
//! the command line and the gateway load them.

use std::path::{Path, PathBuf};

use crate::catalog::{Catalog, CatalogError};
use crate::classify::Interpreter;
use crate::networks::{NetworkError, Networks};

/// Why an interpreter could not be built from its files.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {}: {source}", path.display())]
    ReadCatalog {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `file:line: message`, as the policy loader names its errors.
    #[error("{}: {source}", located(path, source.line()))]
    Catalog {
        path: PathBuf,
        #[source]
        source: CatalogError,
    },
    #[error(transparent)]
    Networks(#[from] NetworkError),
}

/// `path:line`, or `path` when there is no line.
fn located(path: &Path, line: Option<usize>) -> String {
    match line {
        Some(line) => format!("{}:{line}", path.display()),
        None => path.display().to_string(),
    }
}

impl Networks {
    /// The built-in networks, then each range file in order (at equal
    /// prefixes, later files win).
    pub fn builtin_with(files: &[PathBuf]) -> Result<Networks, NetworkError> {
        let mut networks = Networks::builtin();
        for path in files {
            networks.add_file(path)?;
        }
        Ok(networks)
    }
}

impl Interpreter {
    /// The catalog from `catalog` (the built-in one when `None`) and the
    /// built-in networks with the `ranges` files added.
    pub fn load(catalog: Option<&Path>, ranges: &[PathBuf]) -> Result<Interpreter, LoadError> {
        let catalog = match catalog {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|source| LoadError::ReadCatalog { path: path.to_path_buf(), source })?;
                Catalog::from_toml(&text).map_err(|source| LoadError::Catalog { path: path.to_path_buf(), source })?
            }
            None => Catalog::builtin(),
        };
        Ok(Interpreter::new(catalog, Networks::builtin_with(ranges)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_names_the_file_that_fails() {
        let dir = tempfile::tempdir().unwrap();
        let ranges = dir.path().join("ranges.txt");
        std::fs::write(&ranges, "203.0.113.0/24 branch-office\n").unwrap();
        let interpreter = Interpreter::load(None, std::slice::from_ref(&ranges)).unwrap();
        assert!(interpreter.networks().id_of("branch-office").is_some());

        let catalog = dir.path().join("clients.toml");
        std::fs::write(&catalog, "not toml [").unwrap();
        let err = Interpreter::load(Some(&catalog), &[]).unwrap_err();
        assert!(matches!(err, LoadError::Catalog { .. }) && err.to_string().contains("clients.toml:1: "), "{err}");
        std::fs::write(&catalog, "[[client]]\nid = \"a\"\nname = \"A\"\n[[client.when]]\nprotocol = [\"smtp\"]\n")
            .unwrap();
        let err = Interpreter::load(Some(&catalog), &[]).unwrap_err().to_string();
        assert_eq!(err, format!("{}:5: unknown protocol `smtp`", catalog.display()));
        let err = Interpreter::load(Some(&dir.path().join("none.toml")), &[]).unwrap_err();
        assert!(matches!(err, LoadError::ReadCatalog { .. }) && err.to_string().contains("none.toml"), "{err}");
        std::fs::write(&ranges, "# offices\n203.0.113.0/33 nowhere\n").unwrap();
        let err = Interpreter::load(None, std::slice::from_ref(&ranges)).unwrap_err().to_string();
        assert_eq!(err, format!("{}:2: bad prefix `203.0.113.0/33`", ranges.display()));
    }
}
