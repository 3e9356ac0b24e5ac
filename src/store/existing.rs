//! Opening a database that must already exist (`status`, `report`): reading commands
//! never create an empty database where the user mistyped a path.

use super::Store;
use anyhow::{bail, Result};
use std::path::Path;

impl Store {
    pub async fn open_existing(path: &Path) -> Result<Store> {
        if !path.exists() {
            bail!("no results database at {} (run `sweep run FILE --db {}` first, or pass --db / SWEEP_DB)", path.display(), path.display());
        }
        Store::open(path).await
    }
}
