//! Finding the PostgreSQL server binaries.

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// A directory that holds `initdb` and `postgres`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerBinaries {
    dir: PathBuf,
}

impl ServerBinaries {
    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of one of the binaries, e.g. `initdb`.
    pub fn tool(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

const REQUIRED: [&str; 2] = ["initdb", "postgres"];

fn holds_server(dir: &Path) -> bool {
    REQUIRED.iter().all(|tool| dir.join(tool).is_file())
}

/// Finds the server binaries: the first `PATH` entry that holds them, else the
/// newest `/usr/lib/postgresql/<version>/bin`.
pub fn find_server_binaries() -> Result<ServerBinaries> {
    let from_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    let found = from_path
        .into_iter()
        .find(|dir| holds_server(dir))
        .or_else(|| newest_versioned_dir(Path::new("/usr/lib/postgresql")));
    found
        .map(|dir| ServerBinaries { dir })
        .ok_or(Error::BinariesNotFound)
}

/// `<root>/<version>/bin` with the highest numeric version that holds the
/// server binaries.
fn newest_versioned_dir(root: &Path) -> Option<PathBuf> {
    let mut candidates: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir(root)
        .ok()?
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let version: Option<Vec<u32>> = name.split('.').map(|p| p.parse().ok()).collect();
            let bin = entry.path().join("bin");
            Some((version?, bin))
        })
        .filter(|(_, bin)| holds_server(bin))
        .collect();
    candidates.sort();
    candidates.pop().map(|(_, bin)| bin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_versioned_dir_prefers_the_highest_version_with_binaries() {
        let root = std::env::temp_dir().join(format!("airsync-pgbin-test-{}", std::process::id()));
        for (version, complete) in [("9.6", true), ("15", true), ("16", false), ("abc", true)] {
            let bin = root.join(version).join("bin");
            std::fs::create_dir_all(&bin).expect("create test dir");
            let tools: &[&str] = if complete { &REQUIRED } else { &["initdb"] };
            for tool in tools {
                std::fs::write(bin.join(tool), b"").expect("write test file");
            }
        }
        let found = newest_versioned_dir(&root);
        std::fs::remove_dir_all(&root).expect("remove test dir");
        assert_eq!(found, Some(root.join("15").join("bin")));
    }
}
