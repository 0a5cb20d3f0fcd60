//! The host's configuration file (`durable serve --config FILE.toml`): the task hubs a host
//! serves, with their stores, keys, apps, limits and activity grants.
//!
//! Parsing is strict (unknown keys are errors, so a typo never silently drops a limit) and
//! every relative path is resolved against the file's directory, so a config means the same
//! thing whatever directory the host is started from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use durable_store::StoreLocation;
use durable_wasm::{ActivityGrants, DirGrant, GuestLimits, Sandbox};

/// The name of a hub's storage connection when the config names none (Durable Functions'
/// default connection setting).
pub const DEFAULT_CONNECTION: &str = "Storage";
/// The hub `durable serve` runs when no config file is given.
pub const DEFAULT_HUB: &str = "default";

/// Why a config file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {file}: {source}")]
    Read {
        /// The file.
        file: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("{file}: {message}")]
    Syntax {
        /// The file.
        file: PathBuf,
        /// The parser's message (it names the line and key).
        message: String,
    },
    /// The file parses but says something impossible.
    #[error("{file}: {message}")]
    Invalid {
        /// The file.
        file: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// Limits of one hub or app; every field is optional so an app overrides only what it names.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LimitsFile {
    /// Wall-clock budget of one orchestrator episode or entity batch, in milliseconds.
    pub call_timeout_ms: Option<u64>,
    /// Budget of one activity run, in milliseconds.
    pub activity_timeout_ms: Option<u64>,
    /// Linear memory of one wasm instance, in bytes.
    pub memory_bytes: Option<u64>,
    /// Largest input, output, event, entity state or custom status, in bytes.
    pub payload_bytes: Option<u64>,
    /// Most history events one execution may have.
    pub history_events: Option<u64>,
    /// Activities of the hub running at the same time.
    pub activity_concurrency: Option<usize>,
    /// Orchestration starts accepted per second through the API; 0 means unlimited.
    pub starts_per_second: Option<u32>,
    /// An instance whose linear memory grew past this many bytes is not kept between calls.
    pub idle_instance_bytes: Option<u64>,
    /// An idle activity instance unused this many milliseconds is dropped.
    pub instance_idle_ms: Option<u64>,
    /// Linear memory the hub's idle instances (pooled activity instances, live
    /// orchestrations) may hold together, in bytes.
    pub idle_memory_bytes: Option<u64>,
}

impl LimitsFile {
    /// `self` where it says something, `base` elsewhere.
    fn over(&self, base: &Limits) -> Limits {
        Limits {
            call_timeout: self.call_timeout_ms.map_or(base.call_timeout, Duration::from_millis),
            activity_timeout: self
                .activity_timeout_ms
                .map_or(base.activity_timeout, Duration::from_millis),
            memory_bytes: self.memory_bytes.map_or(base.memory_bytes, |bytes| bytes as usize),
            payload_bytes: self.payload_bytes.map_or(base.payload_bytes, |bytes| bytes as usize),
            history_events: self
                .history_events
                .map_or(base.history_events, |events| events as usize),
            activity_concurrency: self.activity_concurrency.unwrap_or(base.activity_concurrency),
            starts_per_second: self.starts_per_second.unwrap_or(base.starts_per_second),
            idle_instance_bytes: self
                .idle_instance_bytes
                .map_or(base.idle_instance_bytes, |bytes| bytes as usize),
            instance_idle: self.instance_idle_ms.map_or(base.instance_idle, Duration::from_millis),
            idle_memory_bytes: self
                .idle_memory_bytes
                .map_or(base.idle_memory_bytes, |bytes| bytes as usize),
        }
    }
}

/// Effective limits of a hub or app.
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    /// Wall-clock budget of one orchestrator episode or entity batch.
    pub call_timeout: Duration,
    /// Budget of one activity run.
    pub activity_timeout: Duration,
    /// Linear memory of one wasm instance.
    pub memory_bytes: usize,
    /// Largest input, output, event, entity state or custom status.
    pub payload_bytes: usize,
    /// Most history events one execution may have.
    pub history_events: usize,
    /// Activities of the hub running at the same time.
    pub activity_concurrency: usize,
    /// Orchestration starts accepted per second through the API; 0 means unlimited.
    pub starts_per_second: u32,
    /// An instance whose linear memory grew past this is not kept between calls.
    pub idle_instance_bytes: usize,
    /// An idle activity instance unused this long is dropped.
    pub instance_idle: Duration,
    /// Linear memory the hub's idle instances may hold together.
    pub idle_memory_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        let guest = GuestLimits::default();
        Limits {
            call_timeout: guest.call_timeout,
            activity_timeout: guest.activity_timeout,
            memory_bytes: guest.memory_bytes,
            payload_bytes: 16 << 20,
            history_events: 1_000_000,
            activity_concurrency: 16,
            starts_per_second: 0,
            idle_instance_bytes: guest.idle_instance_bytes,
            instance_idle: guest.instance_idle,
            idle_memory_bytes: 2 << 30,
        }
    }
}

impl Limits {
    /// The part the wasm layer enforces.
    pub fn guest(&self) -> GuestLimits {
        GuestLimits {
            call_timeout: self.call_timeout,
            activity_timeout: self.activity_timeout,
            memory_bytes: self.memory_bytes,
            idle_instance_bytes: self.idle_instance_bytes,
            instance_idle: self.instance_idle,
        }
    }
}

/// Totals of the whole host (the `[host]` table).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HostLimits {
    /// Linear memory all idle instances of all hubs may hold together, in bytes.
    pub idle_memory_bytes: usize,
}

impl Default for HostLimits {
    fn default() -> Self {
        HostLimits {
            idle_memory_bytes: durable_wasm::DEFAULT_HOST_IDLE_MEMORY_BYTES,
        }
    }
}

/// HTTP server limits.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpLimits {
    /// Largest request body of the admin API (a `.wasm` upload); API bodies are also held
    /// to their hub's `payload_bytes`.
    pub max_body_bytes: usize,
    /// Time a client has to send its request headers, and a new connection its first
    /// request.
    pub header_timeout_ms: u64,
    /// Time a client has to send a whole request body, from the end of its headers.
    pub body_timeout_ms: u64,
    /// Bytes of request bodies the host holds at once, over every connection; a body that
    /// would go over it is refused with 503.
    pub max_inflight_body_bytes: usize,
    /// A connection with no request in flight for this long is closed.
    pub idle_timeout_ms: u64,
    /// Connections served at once. At the cap a new connection closes the one that has gone
    /// longest idle or sending its request; when every one has a request being answered,
    /// new ones wait in the kernel's accept queue.
    pub max_connections: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_body_bytes: 64 << 20,
            header_timeout_ms: 10_000,
            body_timeout_ms: 60_000,
            max_inflight_body_bytes: 512 << 20,
            idle_timeout_ms: 60_000,
            max_connections: 1024,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HostFile {
    #[serde(default)]
    admin_keys: Vec<String>,
    #[serde(default)]
    http: HttpLimits,
    #[serde(default)]
    host: HostLimits,
    #[serde(default)]
    limits: LimitsFile,
    #[serde(default)]
    hubs: BTreeMap<String, HubFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HubFile {
    #[serde(default)]
    keys: Vec<String>,
    store: Option<String>,
    #[serde(default)]
    connections: BTreeMap<String, String>,
    apps_dir: Option<PathBuf>,
    #[serde(default)]
    limits: LimitsFile,
    #[serde(default)]
    apps: BTreeMap<String, AppFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AppFile {
    path: Option<PathBuf>,
    #[serde(default)]
    allowed_hosts: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    dirs: Vec<DirFile>,
    #[serde(default)]
    limits: LimitsFile,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DirFile {
    host: PathBuf,
    guest: String,
    #[serde(default)]
    read_only: bool,
}

/// What a host serves: its hubs and who may administer it.
#[derive(Clone, Debug)]
pub struct HostConfigFile {
    /// Keys for the `/admin/...` endpoints.
    pub admin_keys: Vec<String>,
    /// HTTP server limits.
    pub http: HttpLimits,
    /// Totals of the whole host.
    pub host: HostLimits,
    /// The hubs by name.
    pub hubs: BTreeMap<String, HubConfig>,
}

/// One task hub (tenant).
#[derive(Clone, Debug)]
pub struct HubConfig {
    /// Its name, as requests give it in `taskHub=`.
    pub name: String,
    /// System keys; a request must carry one of them (when any key exists in the host).
    pub keys: Vec<String>,
    /// Storage connections by name: each is its own store (a redb file or a PostgreSQL
    /// hub).
    pub connections: BTreeMap<String, StoreLocation>,
    /// The connection used when a request names none.
    pub default_connection: String,
    /// Where deployed apps and their retained versions are kept.
    pub apps_dir: PathBuf,
    /// The hub's limits.
    pub limits: Limits,
    /// Apps declared in the file, by app name.
    pub apps: BTreeMap<String, AppConfig>,
}

/// An app of a hub: where it comes from (if the file says) and what it may do.
#[derive(Clone, Debug)]
pub struct AppConfig {
    /// The `.wasm` loaded at start; `None` for an app that only gets deployed over HTTP.
    pub path: Option<PathBuf>,
    /// Its limits (the hub's, overridden).
    pub limits: Limits,
    /// What its activities may reach.
    pub grants: ActivityGrants,
}

impl AppConfig {
    /// The sandbox its components run in.
    pub fn sandbox(&self) -> Sandbox {
        Sandbox {
            limits: self.limits.guest(),
            grants: self.grants.clone(),
        }
    }
}

impl HubConfig {
    /// The settings of app `name`: its own section, or the hub's limits and no grants.
    pub fn app(&self, name: &str) -> AppConfig {
        self.apps.get(name).cloned().unwrap_or_else(|| AppConfig {
            path: None,
            limits: self.limits.clone(),
            grants: ActivityGrants::default(),
        })
    }

    /// The hub `durable serve` runs without a config file: one store, the given apps, no keys.
    /// A PostgreSQL hub caches its apps (kept in the database) in `.durable/apps` unless
    /// told otherwise.
    pub fn single(store: StoreLocation, apps: &[PathBuf], limits: Limits) -> HubConfig {
        let apps_dir = default_apps_dir(&store, Path::new(".durable"), "apps");
        let mut declared = BTreeMap::new();
        for path in apps {
            let name = app_name_of(path);
            let mut unique = name.clone();
            let mut counter = 2;
            while declared.contains_key(&unique) {
                unique = format!("{name}-{counter}");
                counter += 1;
            }
            declared.insert(
                unique,
                AppConfig {
                    path: Some(path.clone()),
                    limits: limits.clone(),
                    grants: ActivityGrants::default(),
                },
            );
        }
        HubConfig {
            name: DEFAULT_HUB.to_owned(),
            keys: Vec::new(),
            connections: BTreeMap::from([(DEFAULT_CONNECTION.to_owned(), store)]),
            default_connection: DEFAULT_CONNECTION.to_owned(),
            apps_dir,
            limits,
            apps: declared,
        }
    }
}

/// Where a hub keeps its deployed apps when the config does not say: beside its redb file,
/// or under the working directory for a PostgreSQL hub.
fn default_apps_dir(store: &StoreLocation, base: &Path, name: &str) -> PathBuf {
    match store {
        StoreLocation::Redb(path) => path.parent().unwrap_or(Path::new(".")).join(name),
        StoreLocation::Postgres(_) => base.join(name),
    }
}

/// An app's name from its file: the file stem.
pub fn app_name_of(path: &Path) -> String {
    path.file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_else(|| "app".to_owned())
}

/// Whether `name` may name a hub, an app or a connection: it appears in URLs and paths.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        && !name.starts_with('.')
}

impl HostConfigFile {
    /// Reads and checks a config file.
    pub fn load(file: &Path) -> Result<HostConfigFile, ConfigError> {
        let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Read {
            file: file.to_owned(),
            source,
        })?;
        let base = file.parent().unwrap_or(Path::new("."));
        let base = if base.as_os_str().is_empty() {
            Path::new(".")
        } else {
            base
        };
        HostConfigFile::parse(&text, base).map_err(|error| match error {
            ParseError::Syntax(message) => ConfigError::Syntax {
                file: file.to_owned(),
                message,
            },
            ParseError::Invalid(message) => ConfigError::Invalid {
                file: file.to_owned(),
                message,
            },
        })
    }

    /// Parses config text; relative paths are taken relative to `base`.
    pub fn parse(text: &str, base: &Path) -> Result<HostConfigFile, ParseError> {
        let parsed: HostFile = toml::from_str(text).map_err(|error| ParseError::Syntax(error.to_string()))?;
        let invalid = |message: String| Err(ParseError::Invalid(message));
        if parsed.hubs.is_empty() {
            return invalid("declares no hub: add a [hubs.NAME] section".to_owned());
        }
        let resolve = |path: &Path| {
            if path.is_absolute() {
                path.to_owned()
            } else {
                base.join(path)
            }
        };
        let host_limits = parsed.limits.over(&Limits::default());
        let mut every_key: BTreeMap<String, String> = BTreeMap::new();
        for key in &parsed.admin_keys {
            check_key(key, "admin_keys")?;
            every_key.insert(key.clone(), "admin_keys".to_owned());
        }
        let mut stores: BTreeMap<String, String> = BTreeMap::new();
        let location = |hub: &str, text: &str| -> Result<StoreLocation, ParseError> {
            match StoreLocation::parse(text) {
                Ok(StoreLocation::Redb(path)) => Ok(StoreLocation::Redb(resolve(&path))),
                Ok(postgres) => Ok(postgres),
                Err(error) => Err(ParseError::Invalid(format!("hubs.{hub}: {error}"))),
            }
        };
        let mut hubs = BTreeMap::new();
        for (name, hub) in parsed.hubs {
            if !is_valid_name(&name) {
                return invalid(format!(
                    "hub name {name:?}: use letters, digits, '-', '_' and '.' (at most 64)"
                ));
            }
            for key in &hub.keys {
                check_key(key, &format!("hubs.{name}.keys"))?;
                if let Some(owner) = every_key.insert(key.clone(), format!("hubs.{name}.keys")) {
                    return invalid(format!(
                        "hubs.{name}.keys repeats a key of {owner}: every key must open one hub only"
                    ));
                }
            }
            let mut connections = BTreeMap::new();
            if let Some(store) = &hub.store {
                connections.insert(DEFAULT_CONNECTION.to_owned(), location(&name, store)?);
            }
            for (connection, store) in &hub.connections {
                if !is_valid_name(connection) {
                    return invalid(format!(
                        "hubs.{name}.connections: invalid connection name {connection:?}"
                    ));
                }
                if connections
                    .insert(connection.clone(), location(&name, store)?)
                    .is_some()
                {
                    return invalid(format!(
                        "hubs.{name}: connection {connection:?} is given twice (store = ... is the {DEFAULT_CONNECTION:?} connection)"
                    ));
                }
            }
            if connections.is_empty() {
                return invalid(format!(
                    "hubs.{name} has no store: add store = \"PATH.redb\" (or a [hubs.{name}.connections] table)"
                ));
            }
            for store in connections.values() {
                if let Some(other) = stores.insert(store.identity(), name.clone()) {
                    return invalid(format!(
                        "hubs.{name} and hubs.{other} share the store {store}: every hub needs its own \
                         (PostgreSQL hubs can share a database with schema=NAME)"
                    ));
                }
            }
            let default_connection = if connections.contains_key(DEFAULT_CONNECTION) {
                DEFAULT_CONNECTION.to_owned()
            } else {
                connections.keys().next().expect("not empty").clone()
            };
            let apps_dir = match &hub.apps_dir {
                Some(dir) => resolve(dir),
                None => default_apps_dir(&connections[&default_connection], base, &format!("{name}-apps")),
            };
            let limits = hub.limits.over(&host_limits);
            let mut apps = BTreeMap::new();
            for (app_name, app) in hub.apps {
                if !is_valid_name(&app_name) {
                    return invalid(format!("hubs.{name}.apps: invalid app name {app_name:?}"));
                }
                if app.limits.activity_concurrency.is_some()
                    || app.limits.starts_per_second.is_some()
                    || app.limits.idle_memory_bytes.is_some()
                {
                    return invalid(format!(
                        "hubs.{name}.apps.{app_name}.limits: activity_concurrency, starts_per_second and idle_memory_bytes are limits of the whole hub; set them in [hubs.{name}.limits]"
                    ));
                }
                let app_limits = app.limits.over(&limits);
                let mut grants = ActivityGrants {
                    allowed_hosts: Vec::new(),
                    env: app.env.into_iter().collect(),
                    dirs: Vec::new(),
                };
                for allowed in app.allowed_hosts {
                    if allowed.is_empty() || allowed.contains('/') || allowed.contains('*') {
                        return invalid(format!(
                            "hubs.{name}.apps.{app_name}.allowed_hosts: {allowed:?} must be HOST or HOST:PORT"
                        ));
                    }
                    grants.allowed_hosts.push(allowed.to_ascii_lowercase());
                }
                for dir in app.dirs {
                    if !dir.guest.starts_with('/') {
                        return invalid(format!(
                            "hubs.{name}.apps.{app_name}.dirs: guest path {:?} must be absolute",
                            dir.guest
                        ));
                    }
                    grants.dirs.push(DirGrant {
                        host: resolve(&dir.host),
                        guest: dir.guest,
                        read_only: dir.read_only,
                    });
                }
                apps.insert(
                    app_name,
                    AppConfig {
                        path: app.path.as_deref().map(resolve),
                        limits: app_limits,
                        grants,
                    },
                );
            }
            hubs.insert(
                name.clone(),
                HubConfig {
                    name,
                    keys: hub.keys,
                    connections,
                    default_connection,
                    apps_dir,
                    limits,
                    apps,
                },
            );
        }
        Ok(HostConfigFile {
            admin_keys: parsed.admin_keys,
            http: parsed.http,
            host: parsed.host,
            hubs,
        })
    }
}

/// Why config text was refused (without the file name).
#[derive(Debug, PartialEq)]
pub enum ParseError {
    /// Not TOML, or not this schema.
    Syntax(String),
    /// Valid TOML saying something impossible.
    Invalid(String),
}

fn check_key(key: &str, field: &str) -> Result<(), ParseError> {
    if key.len() < 16 {
        return Err(ParseError::Invalid(format!(
            "{field}: a key must be at least 16 characters long"
        )));
    }
    if !key.chars().all(|c| c.is_ascii_graphic()) || key.contains('&') || key.contains('#') {
        return Err(ParseError::Invalid(format!(
            "{field}: a key must be printable ASCII without spaces, '&' or '#' (it travels in URLs)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<HostConfigFile, ParseError> {
        HostConfigFile::parse(text, Path::new("/etc/durable"))
    }

    #[test]
    fn idle_instance_bounds_come_from_host_hub_and_app_and_the_hub_budget_is_refused_on_apps() {
        let config = parse(
            r#"
            [host]
            idle_memory_bytes = 5000
            [limits]
            instance_idle_ms = 2000
            [hubs.alpha]
            store = "alpha.redb"
            [hubs.alpha.limits]
            idle_memory_bytes = 3000
            [hubs.alpha.apps.shop]
            path = "shop.wasm"
            [hubs.alpha.apps.shop.limits]
            idle_instance_bytes = 1000
            "#,
        )
        .unwrap();
        assert_eq!(config.host.idle_memory_bytes, 5000);
        let hub = &config.hubs["alpha"];
        assert_eq!(hub.limits.idle_memory_bytes, 3000);
        let shop = hub.app("shop").sandbox().limits;
        assert_eq!(shop.idle_instance_bytes, 1000);
        assert_eq!(shop.instance_idle, Duration::from_millis(2000));
        let refused = parse(
            r#"
            [hubs.alpha]
            store = "alpha.redb"
            [hubs.alpha.apps.shop.limits]
            idle_memory_bytes = 1000
            "#,
        );
        assert!(
            matches!(&refused, Err(ParseError::Invalid(message)) if message.contains("idle_memory_bytes")),
            "{refused:?}"
        );
    }

    #[test]
    fn app_limits_override_hub_limits_which_override_host_limits() {
        let config = parse(
            r#"
            [limits]
            payload_bytes = 1000
            call_timeout_ms = 300
            [hubs.alpha]
            store = "alpha.redb"
            keys = ["alpha-key-0123456789"]
            [hubs.alpha.limits]
            payload_bytes = 2000
            [hubs.alpha.apps.shop]
            path = "shop.wasm"
            allowed_hosts = ["Example.com:8080"]
            env = { GREETING = "hi" }
            dirs = [{ host = "data", guest = "/data", read_only = true }]
            [hubs.alpha.apps.shop.limits]
            call_timeout_ms = 100
            "#,
        )
        .unwrap();
        let hub = &config.hubs["alpha"];
        assert_eq!(hub.limits.payload_bytes, 2000);
        assert_eq!(hub.limits.call_timeout, Duration::from_millis(300));
        let shop = hub.app("shop");
        assert_eq!(shop.limits.call_timeout, Duration::from_millis(100));
        assert_eq!(shop.limits.payload_bytes, 2000);
        assert_eq!(shop.path.as_deref(), Some(Path::new("/etc/durable/shop.wasm")));
        assert_eq!(shop.grants.allowed_hosts, ["example.com:8080"]);
        assert_eq!(shop.grants.env, [("GREETING".to_owned(), "hi".to_owned())]);
        assert_eq!(shop.grants.dirs[0].host, Path::new("/etc/durable/data"));
        assert_eq!(
            hub.connections["Storage"],
            StoreLocation::Redb("/etc/durable/alpha.redb".into())
        );
        assert_eq!(hub.apps_dir, Path::new("/etc/durable/alpha-apps"));
        let undeclared = hub.app("other");
        assert_eq!(undeclared.limits, hub.limits);
        assert!(undeclared.grants.allowed_hosts.is_empty());
    }

    #[test]
    fn unknown_keys_are_refused_with_their_name() {
        let Err(ParseError::Syntax(message)) = parse("[hubs.a]\nstore = \"a\"\npayload = 3\n") else {
            panic!("an unknown key must be refused");
        };
        assert!(message.contains("payload"), "{message}");
    }

    #[test]
    fn a_key_shared_by_two_hubs_is_refused() {
        let error = parse(
            r#"
            [hubs.a]
            store = "a.redb"
            keys = ["shared-key-0123456789"]
            [hubs.b]
            store = "b.redb"
            keys = ["shared-key-0123456789"]
            "#,
        )
        .err()
        .unwrap();
        assert!(
            matches!(&error, ParseError::Invalid(message) if message.contains("one hub only")),
            "{error:?}"
        );
    }

    #[test]
    fn hubs_sharing_a_store_short_keys_and_storeless_hubs_are_refused() {
        for text in [
            "[hubs.a]\nstore = \"s.redb\"\n[hubs.b]\nstore = \"s.redb\"\n",
            "[hubs.a]\nstore = \"a.redb\"\nkeys = [\"short\"]\n",
            "[hubs.a]\nkeys = []\n",
            "[hubs.\"a b\"]\nstore = \"a.redb\"\n",
            "[hubs.a]\nstore = \"a.redb\"\n[hubs.a.apps.x.limits]\nstarts_per_second = 3\n",
            "",
        ] {
            assert!(
                matches!(parse(text), Err(ParseError::Invalid(_))),
                "{text:?} was accepted"
            );
        }
    }

    #[test]
    fn extra_connections_are_stores_of_their_own() {
        let config = parse(
            r#"
            [hubs.a]
            store = "a.redb"
            connections = { Archive = "/data/archive.redb" }
            "#,
        )
        .unwrap();
        let hub = &config.hubs["a"];
        assert_eq!(hub.default_connection, "Storage");
        assert_eq!(
            hub.connections["Archive"],
            StoreLocation::Redb("/data/archive.redb".into())
        );
    }
}
