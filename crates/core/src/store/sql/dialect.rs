//! The few statements SQLite and PostgreSQL spell differently; everything else is shared SQL
//! with `$1..$n` placeholders (both engines number them the same way).

use sqlx::migrate::Migrator;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/postgres");

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// Each backend owns its migrations.
    pub fn migrator(self) -> &'static Migrator {
        match self {
            Dialect::Sqlite => &SQLITE_MIGRATIONS,
            Dialect::Postgres => &POSTGRES_MIGRATIONS,
        }
    }

    /// How a write transaction starts. SQLite: take the write lock up front, so a
    /// read-then-write never deadlocks; PostgreSQL locks rows as it goes.
    pub fn begin_write(self) -> Option<&'static str> {
        match self {
            Dialect::Sqlite => Some("BEGIN IMMEDIATE"),
            Dialect::Postgres => None,
        }
    }

    /// Appended to the claim's candidate query: concurrent claimers skip each other's rows
    /// instead of waiting on them. SQLite has one writer at a time and needs nothing.
    pub fn skip_locked(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => "FOR UPDATE OF j SKIP LOCKED",
        }
    }

    /// Locks the rows a read-then-write transaction reads (SQLite's write lock is whole-file).
    pub fn for_update(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => "FOR UPDATE",
        }
    }

    /// A subquery yielding the elements of the JSON array of strings bound at `param`.
    pub fn json_strings(self, param: &str) -> String {
        match self {
            Dialect::Sqlite => format!("SELECT value FROM json_each({param})"),
            Dialect::Postgres => {
                format!("SELECT jsonb_array_elements_text(CAST({param} AS jsonb))")
            }
        }
    }

    /// A subquery yielding the elements of the JSON array of integers bound at `param`.
    pub fn json_ids(self, param: &str) -> String {
        match self {
            Dialect::Sqlite => format!("SELECT value FROM json_each({param})"),
            Dialect::Postgres => {
                format!("SELECT CAST(jsonb_array_elements_text(CAST({param} AS jsonb)) AS BIGINT)")
            }
        }
    }

    /// The database's clock in unix milliseconds: leases are judged by one clock, whatever
    /// the nodes' clocks say.
    pub fn now_ms(self) -> &'static str {
        match self {
            Dialect::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000.0 AS BIGINT)",
            Dialect::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
        }
    }

    /// One row if sqlx's migrations table exists.
    pub fn migrations_table_query(self) -> &'static str {
        match self {
            Dialect::Sqlite => {
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'"
            }
            Dialect::Postgres => {
                "SELECT 1 FROM information_schema.tables WHERE table_name = '_sqlx_migrations'
                 AND table_schema = current_schema()"
            }
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Dialect::Sqlite => "SQLite",
            Dialect::Postgres => "PostgreSQL",
        }
    }
}
