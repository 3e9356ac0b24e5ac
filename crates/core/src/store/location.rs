//! Where the results database is: a SQLite file (one machine) or a PostgreSQL server (many).
//!
//! `--db` / `SWEEP_DB` takes a path, `sqlite:PATH`, or `postgres://user[:password]@host[:port]/db`.
//! A location displays without its password: every message, log line and report prints the
//! [`Display`](std::fmt::Display) form, never the URL as given.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// A parsed `--db` value.
#[derive(Clone, PartialEq, Eq)]
pub enum DbLocation {
    Sqlite(PathBuf),
    /// The URL as given (password included: only for connecting, never for printing).
    Postgres(PostgresUrl),
}

/// A `postgres://` URL, split into the parts messages name.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresUrl {
    url: String,
    pub user: String,
    pub host: String,
    pub port: u16,
    pub database: String,
    has_password: bool,
}

impl PostgresUrl {
    /// The URL to connect with (holds the password, if any).
    pub fn secret(&self) -> &str {
        &self.url
    }

    pub fn has_password(&self) -> bool {
        self.has_password
    }

    /// The password as given (None without one), so messages can be scrubbed of it.
    pub fn password(&self) -> Option<&str> {
        let rest = self.url.split_once("://")?.1;
        let authority = rest.split('/').next()?;
        let userinfo = authority.rsplit_once('@')?.0;
        userinfo.split_once(':').map(|(_, pw)| pw)
    }

    /// `postgres://user@host:port/db`: what may be printed.
    pub fn redacted(&self) -> String {
        let pw = if self.has_password { ":***" } else { "" };
        format!(
            "postgres://{}{pw}@{}:{}/{}",
            self.user, self.host, self.port, self.database
        )
    }

    fn parse(url: &str) -> Result<PostgresUrl, String> {
        let rest = url
            .split_once("://")
            .map(|(_, r)| r)
            .ok_or("expected postgres://user@host:port/database")?;
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let database = path.split('?').next().unwrap_or("").to_string();
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (user, has_password) = match userinfo {
            Some(u) => match u.split_once(':') {
                Some((name, _)) => (name.to_string(), true),
                None => (u.to_string(), false),
            },
            None => (String::new(), false),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (
                h.to_string(),
                p.parse::<u16>()
                    .map_err(|_| format!("port {p:?} is not a number"))?,
            ),
            None => (hostport.to_string(), 5432),
        };
        if host.is_empty() {
            return Err("no host (expected postgres://user@host:port/database)".into());
        }
        if database.is_empty() {
            return Err("no database name (expected postgres://user@host:port/database)".into());
        }
        Ok(PostgresUrl {
            url: url.to_string(),
            user: if user.is_empty() {
                "postgres".into()
            } else {
                user
            },
            host,
            port,
            database,
            has_password,
        })
    }
}

impl DbLocation {
    /// The file of a SQLite database (None for a server).
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            DbLocation::Sqlite(p) => Some(p),
            DbLocation::Postgres(_) => None,
        }
    }

    /// The value to hand to another process (`SWEEP_DB` of an agent): holds the password.
    pub fn secret(&self) -> String {
        match self {
            DbLocation::Sqlite(p) => p.display().to_string(),
            DbLocation::Postgres(u) => u.secret().to_string(),
        }
    }
}

impl FromStr for DbLocation {
    type Err = String;

    fn from_str(s: &str) -> Result<DbLocation, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("empty database location".into());
        }
        if let Some((scheme, _)) = s.split_once("://") {
            return match scheme.to_ascii_lowercase().as_str() {
                "postgres" | "postgresql" => PostgresUrl::parse(s)
                    .map(DbLocation::Postgres)
                    .map_err(|e| format!("PostgreSQL URL {}: {e}", redact_any(s))),
                "sqlite" => Ok(DbLocation::Sqlite(PathBuf::from(&s["sqlite://".len()..]))),
                other => Err(format!(
                    "unknown database scheme {other:?} in {}: give a file path (SQLite) or \
                     postgres://user@host:port/database",
                    redact_any(s)
                )),
            };
        }
        match s.strip_prefix("sqlite:") {
            Some(path) => Ok(DbLocation::Sqlite(PathBuf::from(path))),
            None => Ok(DbLocation::Sqlite(PathBuf::from(s))),
        }
    }
}

/// Every URL's password in `text` replaced by `***` (for messages that quote what a user
/// typed, such as the command-line parser's).
pub fn redact_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c == '/' || c.is_whitespace() || c == '\'' || c == '"')
            .unwrap_or(tail.len());
        let (authority, after) = tail.split_at(end);
        match authority.rsplit_once('@') {
            Some((userinfo, host)) if userinfo.contains(':') => {
                let user = userinfo.split(':').next().unwrap_or("");
                out.push_str(&format!("{user}:***@{host}"));
            }
            _ => out.push_str(authority),
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// `scheme://user:secret@host` -> `scheme://user:***@host`, for URLs that failed to parse.
fn redact_any(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, tail) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            let pw = if userinfo.contains(':') { ":***" } else { "" };
            format!("{scheme}://{user}{pw}@{host}{tail}")
        }
        None => url.to_string(),
    }
}

impl fmt::Display for DbLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbLocation::Sqlite(p) => write!(f, "{}", p.display()),
            DbLocation::Postgres(u) => f.write_str(&u.redacted()),
        }
    }
}

/// Debug prints the redacted form too: a `{:?}` in a log must not leak the password.
impl fmt::Debug for DbLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DbLocation({self})")
    }
}

impl fmt::Debug for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl From<&Path> for DbLocation {
    fn from(p: &Path) -> DbLocation {
        DbLocation::Sqlite(p.to_path_buf())
    }
}

impl From<&PathBuf> for DbLocation {
    fn from(p: &PathBuf) -> DbLocation {
        DbLocation::Sqlite(p.clone())
    }
}

impl From<PathBuf> for DbLocation {
    fn from(p: PathBuf) -> DbLocation {
        DbLocation::Sqlite(p)
    }
}

impl From<&DbLocation> for DbLocation {
    fn from(l: &DbLocation) -> DbLocation {
        l.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_sqlite_urls_are_files() {
        let l: DbLocation = "runs/sweep.db".parse().unwrap();
        assert_eq!(l.sqlite_path(), Some(Path::new("runs/sweep.db")));
        let l: DbLocation = "sqlite:///tmp/a.db".parse().unwrap();
        assert_eq!(l.sqlite_path(), Some(Path::new("/tmp/a.db")));
        let l: DbLocation = "sqlite:a.db".parse().unwrap();
        assert_eq!(l.sqlite_path(), Some(Path::new("a.db")));
    }

    #[test]
    fn postgres_urls_split_and_never_print_the_password() {
        let l: DbLocation = "postgres://alice:s3cret@db.lab:6543/sweeps"
            .parse()
            .unwrap();
        let DbLocation::Postgres(u) = &l else {
            panic!("expected postgres")
        };
        assert_eq!(
            (
                u.user.as_str(),
                u.host.as_str(),
                u.port,
                u.database.as_str()
            ),
            ("alice", "db.lab", 6543, "sweeps")
        );
        assert!(u.secret().contains("s3cret"));
        for shown in [l.to_string(), format!("{l:?}"), format!("{u:?}")] {
            assert!(!shown.contains("s3cret"), "{shown}");
            assert!(shown.contains("db.lab:6543/sweeps"), "{shown}");
        }
        let l: DbLocation = "postgresql://bob@h/d".parse().unwrap();
        assert_eq!(l.to_string(), "postgres://bob@h:5432/d");
    }

    #[test]
    fn passwords_are_cut_out_of_any_text() {
        let t =
            "invalid value 'postgres://u:pw@h:1/d' for '--db', also mysql://a:b@c/d and http://x/y";
        assert_eq!(
            redact_urls(t),
            "invalid value 'postgres://u:***@h:1/d' for '--db', also mysql://a:***@c/d and http://x/y"
        );
    }

    #[test]
    fn bad_urls_say_why_without_the_password() {
        let e = "mysql://u:pw@h/d".parse::<DbLocation>().unwrap_err();
        assert!(e.contains("unknown database scheme \"mysql\""), "{e}");
        assert!(!e.contains("pw@"), "{e}");
        let e = "postgres://u:pw@h:notaport/d"
            .parse::<DbLocation>()
            .unwrap_err();
        assert!(e.contains("port") && !e.contains(":pw@"), "{e}");
        let e = "postgres://u@h:5432".parse::<DbLocation>().unwrap_err();
        assert!(e.contains("no database name"), "{e}");
    }
}
