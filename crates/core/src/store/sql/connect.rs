//! Opening a results database: connect (per backend), refuse a newer schema, migrate, and
//! read the database's identity.

use super::{Dialect, SqlStore};
use crate::store::{DbLocation, PostgresUrl, StoreError};
use anyhow::{Context, Result};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::Connection as _;
use sqlx::{AnyPool, ConnectOptions, Executor};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

/// SQLite writers wait this long for the file lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections per process on a server: agents on many nodes share its connection limit
/// (PostgreSQL's default is 100), and no query holds one for long.
const POSTGRES_CONNECTIONS: u32 = 3;
/// An unreachable server is reported after this long rather than hanging a node.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

impl SqlStore {
    /// Opens (creating if missing) and migrates the database at `db`.
    pub async fn open(db: &DbLocation) -> Result<SqlStore> {
        let mut store = Self::connect(db, Access::ReadWrite).await?;
        store.migrate().await?;
        store.identity = store.load_identity().await?;
        Ok(store)
    }

    /// Opens an existing, migrated database for reading only (`sweep serve`): a SQLite
    /// file is opened read-only (WAL readers never block its writer), nothing is created or
    /// migrated, and a schema older or newer than this binary's is refused with a message.
    pub async fn open_read_only(db: &DbLocation) -> Result<SqlStore> {
        let mut store = Self::connect(db, Access::ReadOnly).await?;
        store.refuse_newer_schema().await?;
        let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM _sqlx_migrations")
            .fetch_all(&store.pool)
            .await
            .with_context(|| format!("results database {}: no schema", store.location))?;
        let missing = store
            .dialect
            .migrator()
            .iter()
            .filter(|m| !applied.contains(&m.version))
            .count();
        if missing > 0 {
            anyhow::bail!(
                "results database {} predates this sweep ({missing} migration(s) to apply): run \
                 `sweep status --db {}` once to migrate it, then serve it",
                store.location,
                store.location
            );
        }
        store.identity = sqlx::query_scalar("SELECT value FROM store_meta WHERE key = 'identity'")
            .fetch_one(&store.pool)
            .await
            .map_err(store.query_error("reading the database identity"))?;
        Ok(store)
    }

    async fn connect(db: &DbLocation, access: Access) -> Result<SqlStore> {
        sqlx::any::install_default_drivers();
        let (pool, dialect) = match db {
            DbLocation::Sqlite(path) => (connect_sqlite(path, access).await?, Dialect::Sqlite),
            DbLocation::Postgres(url) => (connect_postgres(url, access).await?, Dialect::Postgres),
        };
        Ok(SqlStore {
            pool,
            dialect,
            location: db.to_string(),
            identity: String::new(),
            writer: Default::default(),
            search_logs: Default::default(),
        })
    }

    async fn migrate(&self) -> Result<()> {
        // Several processes may open a fresh SQLite file at once; sqlx's SQLite migrator takes
        // no lock, so a loser sees "table already exists" and retries, finding it applied.
        // (PostgreSQL's migrator holds an advisory lock: the first try succeeds.)
        let mut last_err = None;
        for attempt in 0..5 {
            self.refuse_newer_schema().await?;
            match self.dialect.migrator().run(&self.pool).await {
                Ok(()) if self.dialect == Dialect::Sqlite => {
                    return self.widen_sqlite_statuses().await
                }
                Ok(()) => return Ok(()),
                Err(e) => {
                    last_err = Some(e);
                    tokio::time::sleep(Duration::from_millis(50 * (attempt + 1))).await;
                }
            }
        }
        let e = last_err.expect("loop ran");
        Err(anyhow::Error::new(e)).with_context(|| {
            format!(
                "results database {}: applying the schema migrations failed",
                self.location
            )
        })
    }

    /// SQLite keeps a column's CHECK in the table's definition and cannot change it in a
    /// migration's transaction without dropping the table, which with foreign keys on would
    /// cascade into every job's results. So the statuses of adaptive search ('paused',
    /// 'stopped') are added here, once, the way SQLite documents for such changes: foreign
    /// keys off on one connection, the table rebuilt from its own definition with the wider
    /// CHECK, the foreign keys checked, committed. Idempotent; concurrent openers serialise
    /// on `BEGIN IMMEDIATE` and the later ones find it done.
    async fn widen_sqlite_statuses(&self) -> Result<()> {
        const OLD: &str = "'diverged', 'interrupted')";
        const NEW: &str = "'diverged', 'interrupted', 'paused', 'stopped')";
        let widen = async {
            let mut conn = self.pool.acquire().await?;
            sqlx::query("PRAGMA foreign_keys = OFF")
                .execute(&mut *conn)
                .await?;
            let rebuilt = async {
                sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
                let table: String =
                    sqlx::query_scalar("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'jobs'")
                        .fetch_one(&mut *conn)
                        .await?;
                if table.contains(NEW) || !table.contains(OLD) {
                    sqlx::query("COMMIT").execute(&mut *conn).await?;
                    return Ok::<_, sqlx::Error>(());
                }
                let indexes: Vec<String> = sqlx::query_scalar(
                    "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'jobs' AND sql IS NOT NULL",
                )
                .fetch_all(&mut *conn)
                .await?;
                let create = table
                    .replacen("CREATE TABLE jobs", "CREATE TABLE jobs_widened", 1)
                    .replace(OLD, NEW);
                let mut steps = vec![
                    create,
                    "INSERT INTO jobs_widened SELECT * FROM jobs".to_string(),
                    "DROP TABLE jobs".to_string(),
                    "ALTER TABLE jobs_widened RENAME TO jobs".to_string(),
                ];
                steps.extend(indexes);
                for step in &steps {
                    sqlx::query(step).execute(&mut *conn).await?;
                }
                let broken: Vec<(String,)> = sqlx::query_as("SELECT \"table\" FROM pragma_foreign_key_check")
                    .fetch_all(&mut *conn)
                    .await?;
                if !broken.is_empty() {
                    return Err(sqlx::Error::Protocol(format!(
                        "foreign keys broken after the rebuild in {broken:?}; nothing was changed"
                    )));
                }
                sqlx::query("COMMIT").execute(&mut *conn).await?;
                Ok(())
            }
            .await;
            if rebuilt.is_err() {
                let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            }
            sqlx::query("PRAGMA foreign_keys = ON")
                .execute(&mut *conn)
                .await?;
            rebuilt
        };
        widen.await.with_context(|| {
            format!(
                "results database {}: adding the statuses 'paused' and 'stopped' to its jobs table",
                self.location
            )
        })
    }

    async fn refuse_newer_schema(&self) -> Result<()> {
        let has_table: Option<i64> = sqlx::query_scalar(self.dialect.migrations_table_query())
            .fetch_optional(&self.pool)
            .await
            .with_context(|| format!("cannot read results database {}", self.location))?;
        if has_table.is_none() {
            return Ok(());
        }
        let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM _sqlx_migrations")
            .fetch_all(&self.pool)
            .await
            .with_context(|| {
                format!(
                    "cannot read the schema version of results database {}",
                    self.location
                )
            })?;
        let known: Vec<i64> = self.dialect.migrator().iter().map(|m| m.version).collect();
        let mut unknown: Vec<i64> = applied.into_iter().filter(|v| !known.contains(v)).collect();
        if !unknown.is_empty() {
            unknown.sort_unstable();
            return Err(StoreError::NewerSchema {
                location: self.location.clone(),
                unknown,
                known_max: known.iter().copied().max().unwrap_or(0),
            }
            .into());
        }
        Ok(())
    }

    /// The identity row, made on first open (two processes racing both read the winner's).
    async fn load_identity(&self) -> Result<String> {
        let fresh = format!(
            "{:016x}{:016x}",
            rand::random::<u64>(),
            rand::random::<u64>()
        );
        sqlx::query(
            "INSERT INTO store_meta (key, value) VALUES ('identity', $1) ON CONFLICT (key) DO NOTHING",
        )
        .bind(&fresh)
        .execute(&self.pool)
        .await
        .map_err(self.query_error("recording the database identity"))?;
        sqlx::query_scalar("SELECT value FROM store_meta WHERE key = 'identity'")
            .fetch_one(&self.pool)
            .await
            .map_err(self.query_error("reading the database identity"))
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    ReadWrite,
    ReadOnly,
}

/// One file, WAL (readers never block the writer), creating its folder if needed; read-only
/// opens create nothing and never switch the journal mode (that needs the write lock).
async fn connect_sqlite(path: &Path, access: Access) -> Result<AnyPool> {
    if access == Access::ReadOnly && !path.is_file() {
        anyhow::bail!("no results database at {}", path.display());
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| {
            format!(
                "results database {}: cannot create its folder {}",
                path.display(),
                parent.display()
            )
        })?;
    }
    let url = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(access == Access::ReadWrite)
        .read_only(access == Access::ReadOnly)
        .to_url_lossy();
    let options = AnyConnectOptions::from_url(&url)
        .with_context(|| format!("results database {}: not a usable path", path.display()))?;
    // Retry while another process is creating the same file: switching a new file to WAL
    // takes an exclusive lock, and SQLite reports the loser busy at once.
    let mut attempt = 0;
    loop {
        let pool = AnyPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(BUSY_TIMEOUT * 2)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    conn.execute("PRAGMA busy_timeout = 10000").await?;
                    if access == Access::ReadWrite {
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                    }
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    Ok(())
                })
            })
            .connect_with(options.clone())
            .await;
        match pool {
            Err(e) if attempt < 20 && is_busy(&e) => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(25 * attempt)).await;
            }
            other => {
                return other
                    .with_context(|| format!("cannot open results database {}", path.display()))
            }
        }
    }
}

/// SQLITE_BUSY (5) or SQLITE_LOCKED (6), extended codes included: another connection holds
/// the lock.
fn is_busy(e: &sqlx::Error) -> bool {
    let code = e.as_database_error().and_then(|d| d.code());
    code.and_then(|c| c.parse::<i32>().ok())
        .is_some_and(|n| matches!(n & 0xff, 5 | 6))
}

/// A small pool per process (see [`POSTGRES_CONNECTIONS`]); errors name the server and the
/// database, never the password.
async fn connect_postgres(url: &PostgresUrl, access: Access) -> Result<AnyPool> {
    let fail = |reason: String| StoreError::Connect {
        location: format!(
            "PostgreSQL at {}:{} (database {:?}, user {:?})",
            url.host, url.port, url.database, url.user
        ),
        reason,
    };
    let options = AnyConnectOptions::from_str(url.secret())
        .map_err(|e| fail(format!("the URL is not valid: {}", scrub(&e, url))))?;
    // One direct connection first: the pool would retry a refused connection until its
    // timeout and then say only "timed out"; this says why, at once.
    let probe = tokio::time::timeout(CONNECT_TIMEOUT, sqlx::AnyConnection::connect_with(&options))
        .await
        .map_err(|_| fail(format!("no answer within {}s", CONNECT_TIMEOUT.as_secs())))?
        .map_err(|e| fail(scrub(&e, url)))?;
    let _ = sqlx::Connection::close(probe).await;
    AnyPoolOptions::new()
        .max_connections(POSTGRES_CONNECTIONS)
        .min_connections(0)
        .idle_timeout(Duration::from_secs(60))
        .acquire_timeout(CONNECT_TIMEOUT)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                // A node frozen inside a transaction (SIGSTOP, a partition) would hold its
                // job's row lock for as long as its connection lives, and no other agent
                // could take the job back when its lease runs out: the server ends such a
                // session instead. sweep's transactions never wait on anything but the
                // database, so 10 s idle inside one means the client is gone.
                conn.execute("SET idle_in_transaction_session_timeout = '10s'")
                    .await?;
                // A reader (`sweep serve`): the server itself refuses any write.
                if access == Access::ReadOnly {
                    conn.execute("SET default_transaction_read_only = on")
                        .await?;
                }
                Ok(())
            })
        })
        .connect_with(options)
        .await
        .map_err(|e| fail(scrub(&e, url)).into())
}

/// The driver's message, with the password removed should it ever quote the URL.
fn scrub(e: &sqlx::Error, url: &PostgresUrl) -> String {
    let msg = e.to_string().replace(url.secret(), &url.redacted());
    match url.password().filter(|pw| !pw.is_empty()) {
        Some(pw) => msg.replace(pw, "***"),
        None => msg,
    }
}
