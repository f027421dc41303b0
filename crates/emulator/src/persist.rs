//! Persistence to `--data-dir`: one JSON snapshot, written atomically
//! (temporary file, then rename), shortly after changes and at shutdown.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::app::Shared;
use crate::error::Error;
use crate::model::State;

const FILE: &str = "airtable-emulator.json";

/// The snapshot file's layout.
#[derive(Serialize, Deserialize)]
struct Snapshot {
    version: u32,
    state: State,
}

fn file(dir: &Path) -> PathBuf {
    dir.join(FILE)
}

/// Reads the snapshot of a data directory, if there is one.
pub(crate) fn load(dir: &Path) -> Result<Option<State>, Error> {
    let path = file(dir);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(Error::DataDir { path, source }),
    };
    let snapshot: Snapshot =
        serde_json::from_slice(&bytes).map_err(|source| Error::Snapshot { path, source })?;
    let mut state = snapshot.state;
    state.rebuild_indexes();
    Ok(Some(state))
}

/// Writes the current state to the data directory.
pub(crate) fn save(app: &Shared) -> Result<(), Error> {
    let Some(dir) = app.config.data_dir.as_ref() else {
        return Ok(());
    };
    let bytes = {
        let state = app.state.read();
        #[derive(Serialize)]
        struct SnapshotRef<'a> {
            version: u32,
            state: &'a State,
        }
        serde_json::to_vec(&SnapshotRef {
            version: 1,
            state: &state,
        })
        .map_err(|source| Error::Snapshot {
            path: file(dir),
            source,
        })?
    };
    std::fs::create_dir_all(dir).map_err(|source| Error::DataDir {
        path: dir.clone(),
        source,
    })?;
    let tmp = dir.join(format!("{FILE}.tmp"));
    std::fs::write(&tmp, &bytes).map_err(|source| Error::DataDir {
        path: tmp.clone(),
        source,
    })?;
    std::fs::rename(&tmp, file(dir)).map_err(|source| Error::DataDir {
        path: file(dir),
        source,
    })
}

/// Saves after each burst of changes until `stop`, then once more.
pub(crate) async fn run(app: Shared, mut stop: watch::Receiver<bool>) {
    if app.config.data_dir.is_none() {
        return;
    }
    loop {
        tokio::select! {
            _ = app.dirty.notified() => {
                tokio::time::sleep(app.config.persist_debounce).await;
                save_logged(&app).await;
            }
            _ = stop.changed() => {
                save_logged(&app).await;
                return;
            }
        }
    }
}

async fn save_logged(app: &Shared) {
    let app = app.clone();
    let outcome = tokio::task::spawn_blocking(move || save(&app)).await;
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!("cannot persist the emulator's state: {e}"),
        Err(e) => tracing::error!("the snapshot writer stopped: {e}"),
    }
}
