//! Where a task hub's store lives: a redb file (a path) or a PostgreSQL database (a
//! `postgres://` or `postgresql://` URL), and how to open either behind the contract.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::{RedbStore, StoreError, TaskStore};

/// The lease a host holds on its partitions when the URL does not say otherwise.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(10);

/// A store's location, parsed from what an operator wrote (`--store`, `store = "..."`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreLocation {
    /// A redb file; the embedded default.
    Redb(PathBuf),
    /// A PostgreSQL database shared by any number of hosts.
    Postgres(PostgresLocation),
}

/// A PostgreSQL hub: the connection URL plus the options this host adds to it.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresLocation {
    /// The URL as tokio-postgres reads it: our own query options removed.
    pub(crate) url: String,
    /// The PostgreSQL schema holding the hub's tables, so several hubs share one database.
    pub schema: String,
    /// How long a host's partition leases last without renewal: a host that dies has its
    /// instances taken over this long after its last renewal.
    pub lease: Duration,
    /// This host's name in the lease table; unique per process unless given. A restarted
    /// host with the same name takes its own leases back at once instead of waiting for
    /// them to expire.
    pub host_id: Option<String>,
    /// At most this many connections in the pool.
    pub pool_size: usize,
}

impl std::fmt::Debug for PostgresLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self}")
    }
}

impl std::fmt::Display for PostgresLocation {
    /// The URL with its password hidden, for messages and logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&redact_password(&self.url))?;
        if self.schema != "public" {
            write!(f, " (schema {})", self.schema)?;
        }
        Ok(())
    }
}

impl std::fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreLocation::Redb(path) => write!(f, "{}", path.display()),
            StoreLocation::Postgres(location) => write!(f, "{location}"),
        }
    }
}

/// Why a store location was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid store {location:?}: {reason}")]
pub struct LocationError {
    /// What was given, password hidden.
    pub location: String,
    /// What is wrong with it.
    pub reason: String,
}

impl StoreLocation {
    /// Parses a location: `postgres://` and `postgresql://` URLs are PostgreSQL, anything
    /// else is the path of a redb file.
    ///
    /// Besides the options tokio-postgres knows (`sslmode`, `connect_timeout`,
    /// `application_name`, ...), a URL takes `schema=NAME` (or `search_path=NAME`),
    /// `lease=SECONDS`, `host_id=NAME` and `pool=CONNECTIONS`.
    pub fn parse(text: &str) -> Result<Self, LocationError> {
        let trimmed = text.trim();
        if !(trimmed.starts_with("postgres://") || trimmed.starts_with("postgresql://")) {
            if trimmed.is_empty() {
                return Err(LocationError {
                    location: text.to_owned(),
                    reason: "empty: give a file path or a postgres:// URL".into(),
                });
            }
            return Ok(StoreLocation::Redb(PathBuf::from(text)));
        }
        let error = |reason: String| LocationError {
            location: redact_password(trimmed),
            reason,
        };
        let (base, query) = match trimmed.split_once('?') {
            Some((base, query)) => (base, query),
            None => (trimmed, ""),
        };
        let mut location = PostgresLocation {
            url: String::new(),
            schema: "public".into(),
            lease: DEFAULT_LEASE,
            host_id: None,
            pool_size: 16,
        };
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "schema" | "search_path" => {
                    if !is_identifier(value) {
                        return Err(error(format!(
                            "{key}={value:?}: a schema name is letters, digits and '_', not starting with a digit"
                        )));
                    }
                    location.schema = value.to_owned();
                }
                "lease" => {
                    let seconds: f64 = value
                        .parse()
                        .ok()
                        .filter(|seconds: &f64| seconds.is_finite() && *seconds >= 0.5 && *seconds <= 3600.0)
                        .ok_or_else(|| error(format!("lease={value:?}: give seconds between 0.5 and 3600")))?;
                    location.lease = Duration::from_secs_f64(seconds);
                }
                "host_id" => {
                    if value.is_empty() || value.len() > 200 {
                        return Err(error("host_id: give 1 to 200 characters".into()));
                    }
                    location.host_id = Some(value.to_owned());
                }
                "pool" => {
                    location.pool_size = value
                        .parse()
                        .ok()
                        .filter(|size| (2..=1000).contains(size))
                        .ok_or_else(|| error(format!("pool={value:?}: give 2 to 1000 connections")))?;
                }
                _ => kept.push(pair),
            }
        }
        location.url = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        location.config().map_err(|cause| error(cause.to_string()))?;
        Ok(StoreLocation::Postgres(location))
    }
}

impl StoreLocation {
    /// What names the store itself, whatever the options: two hubs with one identity would
    /// share their tables.
    pub fn identity(&self) -> String {
        match self {
            StoreLocation::Redb(path) => path.display().to_string(),
            StoreLocation::Postgres(location) => {
                let base = location.url.split('?').next().unwrap_or_default();
                format!("{}#{}", redact_password(base), location.schema)
            }
        }
    }
}

impl PostgresLocation {
    /// The connection settings, as tokio-postgres reads the URL.
    pub(crate) fn config(&self) -> Result<tokio_postgres::Config, tokio_postgres::Error> {
        self.url.parse()
    }
}

/// Opens the store at `location`: the redb file (created if missing), or the PostgreSQL hub
/// (its schema created or migrated, this host registered for a share of its partitions).
pub async fn open(location: &StoreLocation) -> Result<Arc<dyn TaskStore>, StoreError> {
    Ok(match location {
        StoreLocation::Redb(path) => Arc::new(RedbStore::open(path)?),
        StoreLocation::Postgres(location) => crate::PostgresStore::connect(location).await?,
    })
}

/// Opens the store at `location` to read it beside the hosts that serve it (`durable
/// check`): a PostgreSQL hub is joined without taking any of its work.
pub async fn open_reader(location: &StoreLocation) -> Result<Arc<dyn TaskStore>, StoreError> {
    Ok(match location {
        StoreLocation::Redb(path) => Arc::new(RedbStore::open(path)?),
        StoreLocation::Postgres(location) => crate::PostgresStore::connect_reader(location).await?,
    })
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 63
}

/// `postgres://user:secret@host/db` -> `postgres://user:***@host/db`.
fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((credentials, host)) => match credentials.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn postgres(text: &str) -> PostgresLocation {
        match StoreLocation::parse(text).unwrap() {
            StoreLocation::Postgres(location) => location,
            other => panic!("{text} parsed as {other:?}"),
        }
    }

    #[test]
    fn a_path_is_redb_and_both_url_schemes_are_postgres() {
        assert_eq!(
            StoreLocation::parse("data/hub.redb").unwrap(),
            StoreLocation::Redb("data/hub.redb".into())
        );
        assert_eq!(postgres("postgres://u@localhost/db").schema, "public");
        assert_eq!(
            postgres("postgresql://u@localhost:5433/db").url,
            "postgresql://u@localhost:5433/db"
        );
    }

    #[test]
    fn our_options_are_taken_out_of_the_url_and_the_rest_kept() {
        let location = postgres("postgres://u:pw@h/db?sslmode=disable&schema=tenant_a&lease=3&host_id=h1&pool=4");
        assert_eq!(location.url, "postgres://u:pw@h/db?sslmode=disable");
        assert_eq!(location.schema, "tenant_a");
        assert_eq!(location.lease, Duration::from_secs(3));
        assert_eq!(location.host_id.as_deref(), Some("h1"));
        assert_eq!(location.pool_size, 4);
        assert_eq!(postgres("postgres://h/db?search_path=b").schema, "b");
    }

    #[test]
    fn the_password_never_shows_in_messages() {
        let location = postgres("postgres://u:secret@h:5432/db?schema=s");
        assert_eq!(location.to_string(), "postgres://u:***@h:5432/db (schema s)");
        let error = StoreLocation::parse("postgres://u:secret@h/db?sslmode=bogus").unwrap_err();
        assert!(!error.to_string().contains("secret"), "{error}");
    }

    #[test]
    fn bad_options_name_the_option() {
        for (text, names) in [
            ("postgres://h/db?schema=1x", "schema"),
            ("postgres://h/db?schema=a;drop", "schema"),
            ("postgres://h/db?lease=0", "lease"),
            ("postgres://h/db?pool=1", "pool"),
            ("postgres://h/db?sslmode=sometimes", "sslmode"),
            ("postgres://h:notaport/db", "port"),
        ] {
            let error = StoreLocation::parse(text).unwrap_err().to_string();
            assert!(error.contains(names), "{text}: {error}");
        }
        assert!(StoreLocation::parse("  ").is_err());
    }
}
