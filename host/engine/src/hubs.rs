//! Task hubs as tenants: the hubs one host serves, who may open each, and the apps deployed
//! to each while it runs.
//!
//! A hub owns its stores (one per storage connection), its keys, its limits and its apps.
//! Nothing is shared between hubs but the wasm engine: a key of one hub opens nothing of
//! another, and a guest of one hub runs under its own hub's limits.
//!
//! Deployed apps live in the hub's apps directory as `<sha256>.wasm` files plus a
//! `deployments.json` naming the current version of each app. A replaced version stays
//! (file and compiled component) while unfinished orchestrations are pinned to it.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::client::{HubPolicy, StartRate, TaskHub};
use crate::config::{ConfigError, HostConfigFile, HttpLimits, HubConfig, is_valid_name};
use crate::dispatch::DispatchConfig;
use crate::runtime::{Apps, Deployment};
use crate::shared_apps;
use durable_core::history::RuntimeStatus;
use durable_store::{ListFilter, StoreError, StoreLocation, TaskStore};
use durable_wasm::{FunctionKind, LoadError, WasmRuntime};

/// Why a host, a hub or one of its task hubs could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The wasm engine could not be created.
    #[error(transparent)]
    Engine(#[from] durable_wasm::EngineError),
    /// A store could not be opened or recovered.
    #[error("store {location}: {source}")]
    Store {
        /// The store's location (a path, or a URL without its password).
        location: String,
        /// What the store said.
        source: StoreError,
    },
    /// The hub's directories or manifest could not be set up.
    #[error(transparent)]
    Hub(#[from] HubError),
    /// One hub of the host failed to start.
    #[error("hub '{hub}': {source}")]
    InHub {
        /// The hub.
        hub: String,
        /// Why.
        source: Box<StartError>,
    },
}

/// Why a hub-level or admin operation failed.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// The request names no hub and the host has several: their names for an admin,
    /// `None` for anybody else.
    #[error("this host serves several task hubs{}: name one with taskHub=", listed(.0.as_deref()))]
    HubNotNamed(Option<String>),
    /// No hub of that name.
    #[error("no task hub named '{0}'")]
    UnknownHub(String),
    /// The hub has no connection of that name.
    #[error("task hub '{hub}' has no connection '{connection}' (it has: {known})")]
    UnknownConnection {
        /// The hub.
        hub: String,
        /// The connection asked for.
        connection: String,
        /// The hub's connections.
        known: String,
    },
    /// No key was presented where one is required.
    #[error("this endpoint needs a key: pass it as code=KEY or in the x-functions-key header")]
    KeyMissing,
    /// The key presented opens nothing here. For a hub, the same whether the hub exists
    /// or not: hub names are told to admin keys only.
    #[error("the key does not open {0}")]
    KeyRejected(String),
    /// The admin API has no key configured and the host is not open.
    #[error("the admin API is disabled: configure admin_keys in the host's config file")]
    AdminDisabled,
    /// An app name is not acceptable.
    #[error("invalid app name {0:?}: use letters, digits, '-', '_' and '.' (at most 64)")]
    InvalidAppName(String),
    /// No app of that name in the hub.
    #[error("task hub '{hub}' has no app '{app}'")]
    UnknownApp {
        /// The hub.
        hub: String,
        /// The app.
        app: String,
    },
    /// The uploaded component was refused.
    #[error("{0}")]
    Load(#[from] LoadError),
    /// Reading or writing the apps directory failed.
    #[error("apps directory {dir}: {source}")]
    Io {
        /// The directory.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The store failed.
    #[error("storage failure: {0}")]
    Store(#[from] durable_store::StoreError),
    /// Reloading the config failed.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// A key reload was refused.
    #[error("{0}")]
    Reload(String),
    /// Reloading needs a config file.
    #[error("this host was started without --config: there is nothing to reload")]
    NoConfigFile,
}

impl HubError {
    /// Whether the store was out of reach: the same request may succeed later.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, HubError::Store(error) if error.is_unavailable())
    }
}

/// What a refused key did not open when it was meant for a hub, known or not.
const NAMED_HUB: &str = "the task hub this request names";

/// ` (a, b)` for the hub names an admin may see, nothing otherwise.
fn listed(names: Option<&str>) -> String {
    names.map(|names| format!(" ({names})")).unwrap_or_default()
}

/// A key kept as its SHA-256, so comparing takes the same time whatever the key's length
/// and contents.
#[derive(Clone)]
struct KeyDigest([u8; 32]);

impl KeyDigest {
    fn of(key: &str) -> KeyDigest {
        KeyDigest(Sha256::digest(key.as_bytes()).into())
    }
}

/// Whether `presented` is one of `keys`, in time independent of which (if any) matches.
fn key_matches(keys: &[KeyDigest], presented: &str) -> bool {
    let presented = KeyDigest::of(presented);
    let mut found = subtle::Choice::from(0);
    for key in keys {
        found |= key.0.ct_eq(&presented.0);
    }
    found.into()
}

/// A set of keys that can be replaced while requests check them (key rotation).
struct KeyRing(RwLock<Vec<KeyDigest>>);

impl KeyRing {
    fn new(keys: &[String]) -> KeyRing {
        KeyRing(RwLock::new(keys.iter().map(|key| KeyDigest::of(key)).collect()))
    }

    fn digests(&self) -> std::sync::RwLockReadGuard<'_, Vec<KeyDigest>> {
        self.0.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn is_empty(&self) -> bool {
        self.digests().is_empty()
    }

    fn opens(&self, key: &str) -> bool {
        key_matches(&self.digests(), key)
    }

    fn replace(&self, keys: &[String]) {
        *self.0.write().unwrap_or_else(|poisoned| poisoned.into_inner()) =
            keys.iter().map(|key| KeyDigest::of(key)).collect();
    }
}

/// An app as the admin API lists it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AppInfo {
    /// The app's name in its hub.
    pub name: String,
    /// SHA-256 of its component: its version.
    pub version: String,
    /// Its functions.
    pub functions: Vec<FunctionInfo>,
    /// The version it replaced, on a deploy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaced: Option<String>,
}

/// A function of an app.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FunctionInfo {
    /// Its name.
    pub name: String,
    /// `orchestrator`, `activity` or `entity`.
    pub kind: String,
}

/// The apps of a hub: current ones and older versions kept for running orchestrations.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AppList {
    /// The hub.
    pub task_hub: String,
    /// The current apps.
    pub apps: Vec<AppInfo>,
    /// Versions no longer current, kept while orchestrations started on them run.
    pub retained_versions: Vec<String>,
}

fn app_info(deployment: &Deployment, replaced: Option<String>) -> AppInfo {
    AppInfo {
        name: deployment.name.clone(),
        version: deployment.app.hash.clone(),
        functions: deployment
            .app
            .functions
            .iter()
            .map(|(name, kind)| FunctionInfo {
                name: name.clone(),
                kind: match kind {
                    FunctionKind::Orchestrator => "orchestrator",
                    FunctionKind::Activity => "activity",
                    FunctionKind::Entity => "entity",
                }
                .to_owned(),
            })
            .collect(),
        replaced,
    }
}

/// The current version of each app as deployed over the admin API (`None` marks an app of
/// the config file that was removed), and which app each kept version belongs to, so a
/// version kept across a restart runs with its own app's limits and grants.
#[derive(Default, Serialize, Deserialize)]
struct Manifest {
    apps: BTreeMap<String, Option<String>>,
    #[serde(default)]
    versions: BTreeMap<String, String>,
}

/// One tenant.
pub struct Hub {
    config: HubConfig,
    keys: KeyRing,
    connections: BTreeMap<String, Arc<TaskHub>>,
    apps: Arc<Apps>,
    wasm: Arc<WasmRuntime>,
    deploying: Arc<tokio::sync::Mutex<()>>,
    /// The store that keeps the hub's apps when several hosts share it.
    shared: Option<Arc<dyn TaskStore>>,
    /// Mirrors the changes other hosts make to the shared apps.
    app_sync: Option<tokio::task::JoinHandle<()>>,
}

impl Hub {
    /// Loads the hub's apps (declared and deployed) and opens its stores. Apps that fail
    /// to load are reported, not fatal.
    pub async fn start(
        config: HubConfig,
        wasm: Arc<WasmRuntime>,
        dispatch: DispatchConfig,
    ) -> Result<(Hub, Vec<String>), StartError> {
        let mut problems = Vec::new();
        std::fs::create_dir_all(&config.apps_dir).map_err(|source| HubError::Io {
            dir: config.apps_dir.clone(),
            source,
        })?;
        let in_hub = |source: StartError| StartError::InHub {
            hub: config.name.clone(),
            source: Box::new(source),
        };
        let mut stores = BTreeMap::new();
        for (name, location) in &config.connections {
            if let StoreLocation::Redb(path) = location
                && let Some(dir) = path.parent()
            {
                std::fs::create_dir_all(dir).map_err(|source| HubError::Io {
                    dir: dir.to_owned(),
                    source,
                })?;
            }
            let store = durable_store::open(location).await.map_err(|source| {
                in_hub(StartError::Store {
                    location: location.to_string(),
                    source,
                })
            })?;
            stores.insert(name.clone(), store);
        }
        // A store several hosts share keeps the hub's apps; otherwise the apps directory does.
        let shared = stores
            .get(&config.default_connection)
            .filter(|store| store.shares_apps())
            .cloned();
        let apps = match &shared {
            Some(store) => {
                let apps = Arc::new(Apps::deployed(Vec::new()).with_idle_memory_bytes(config.limits.idle_memory_bytes));
                shared_apps::declare(&config, &**store, &mut problems)
                    .await
                    .map_err(HubError::from)?;
                shared_apps::sync(&config, &wasm, &**store, &apps, &mut problems)
                    .await
                    .map_err(HubError::from)?;
                apps
            }
            None => Hub::load_local_apps(&config, &wasm, &mut problems).await?,
        };
        let starts = StartRate::new(config.limits.starts_per_second);
        let mut connections = BTreeMap::new();
        for (name, store) in stores {
            let policy = HubPolicy {
                payload_bytes: config.limits.payload_bytes,
                starts: starts.clone(),
            };
            let dispatch = DispatchConfig {
                activity_concurrency: config.limits.activity_concurrency,
                ..dispatch.clone()
            };
            let location = config.connections[&name].to_string();
            let task_hub = TaskHub::on_store(store, wasm.clone(), apps.clone(), dispatch, policy)
                .await
                .map_err(|source| in_hub(StartError::Store { location, source }))?;
            connections.insert(name, Arc::new(task_hub));
        }
        let deploying = Arc::new(tokio::sync::Mutex::new(()));
        let app_sync = shared.as_ref().and_then(|store| {
            shared_apps::follow(
                config.clone(),
                wasm.clone(),
                store.clone(),
                apps.clone(),
                deploying.clone(),
            )
        });
        let hub = Hub {
            keys: KeyRing::new(&config.keys),
            config,
            connections,
            apps,
            wasm,
            deploying,
            shared,
            app_sync,
        };
        hub.collect_unused_versions().await?;
        Ok((hub, problems))
    }

    /// The apps of a hub kept by this host alone: the declared ones and those deployed over
    /// the admin API (`deployments.json` in the apps directory), with the older versions
    /// still kept there.
    async fn load_local_apps(
        config: &HubConfig,
        wasm: &Arc<WasmRuntime>,
        problems: &mut Vec<String>,
    ) -> Result<Arc<Apps>, StartError> {
        let mut manifest = read_manifest(&config.apps_dir)?;
        let mut current = Vec::new();
        let mut names: Vec<String> = config
            .apps
            .iter()
            .filter(|(_, app)| app.path.is_some())
            .map(|(name, _)| name.clone())
            .collect();
        for name in manifest.apps.keys() {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
        for name in names {
            let settings = config.app(&name);
            let source = match manifest.apps.get(&name) {
                Some(None) => continue,
                Some(Some(hash)) => config.apps_dir.join(format!("{hash}.wasm")),
                None => settings.path.clone().expect("declared apps with a path only"),
            };
            match load_and_keep(wasm, &config.apps_dir, &source, &settings.sandbox()).await {
                Ok(app) => current.push(Deployment {
                    name,
                    app: Arc::new(app),
                    limits: settings.limits.clone(),
                }),
                Err(error) => problems.push(format!("hub '{}': app '{name}' rejected: {error}", config.name)),
            }
        }
        let apps = Arc::new(Apps::deployed(current).with_idle_memory_bytes(config.limits.idle_memory_bytes));
        // Older versions stay loadable for the orchestrations pinned to them; `collect`
        // drops those nothing uses.
        for hash in stored_versions(&config.apps_dir) {
            if apps.version(&hash).is_some() {
                continue;
            }
            let settings = config.app(manifest.versions.get(&hash).map_or("", String::as_str));
            let file = config.apps_dir.join(format!("{hash}.wasm"));
            match wasm.load(&file, settings.sandbox()).await {
                Ok(app) => apps.keep_version(Arc::new(app), settings.limits.clone()),
                Err(error) => problems.push(format!("hub '{}': kept version {hash}: {error}", config.name)),
            }
        }
        for deployment in apps.deployments() {
            manifest
                .versions
                .insert(deployment.app.hash.clone(), deployment.name.clone());
        }
        write_manifest(&config.apps_dir, &manifest)?;
        Ok(apps)
    }

    /// The hub's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Whether the hub has keys (requests without one are refused).
    pub fn has_keys(&self) -> bool {
        !self.keys.is_empty()
    }

    /// The largest payload its API accepts (`payload_bytes`), and so the largest body of a
    /// request to it.
    pub fn payload_bytes(&self) -> usize {
        self.config.limits.payload_bytes
    }

    /// The hub's apps.
    pub fn apps(&self) -> &Arc<Apps> {
        &self.apps
    }

    /// The task hub behind `connection` (the default one when `None`), with its name.
    pub fn connection(&self, connection: Option<&str>) -> Result<(&str, &Arc<TaskHub>), HubError> {
        let wanted = connection.unwrap_or(&self.config.default_connection);
        self.connections
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(wanted))
            .map(|(name, hub)| (name.as_str(), hub))
            .ok_or_else(|| HubError::UnknownConnection {
                hub: self.config.name.clone(),
                connection: wanted.to_owned(),
                known: self.connections.keys().cloned().collect::<Vec<_>>().join(", "),
            })
    }

    /// The current apps and the older versions kept.
    pub fn list_apps(&self) -> AppList {
        let deployments = self.apps.deployments();
        let current: HashSet<&str> = deployments
            .iter()
            .map(|deployment| deployment.app.hash.as_str())
            .collect();
        let mut retained: Vec<String> = self
            .apps
            .version_hashes()
            .into_iter()
            .filter(|hash| !current.contains(hash.as_str()))
            .collect();
        retained.sort();
        AppList {
            task_hub: self.config.name.clone(),
            apps: deployments
                .iter()
                .map(|deployment| app_info(deployment, None))
                .collect(),
            retained_versions: retained,
        }
    }

    /// Deploys `bytes` as app `name`, replacing its current version. Orchestrations already
    /// running keep the version they started on; new ones start on this one.
    pub async fn deploy(&self, name: &str, bytes: &[u8]) -> Result<AppInfo, HubError> {
        if !is_valid_name(name) {
            return Err(HubError::InvalidAppName(name.to_owned()));
        }
        let _deploying = self.deploying.lock().await;
        let hash = shared_apps::content_hash(bytes);
        let file = self.config.apps_dir.join(format!("{hash}.wasm"));
        let io = |source| HubError::Io {
            dir: self.config.apps_dir.clone(),
            source,
        };
        if !file.exists() {
            let temporary = self.config.apps_dir.join(format!("{hash}.wasm.{}", std::process::id()));
            std::fs::write(&temporary, bytes).map_err(io)?;
            std::fs::rename(&temporary, &file).map_err(io)?;
        }
        let settings = self.config.app(name);
        let app = match self.wasm.load_bytes(&file, bytes, settings.sandbox()).await {
            Ok(app) => app,
            Err(error) => {
                if self.apps.version(&hash).is_none() {
                    let _ = std::fs::remove_file(&file);
                }
                return Err(error.into());
            }
        };
        let replaced = self
            .apps
            .deployments()
            .into_iter()
            .find(|deployment| deployment.name == name)
            .map(|deployment| deployment.app.hash.clone())
            .filter(|previous| *previous != hash);
        let deployment = Deployment {
            name: name.to_owned(),
            app: Arc::new(app),
            limits: settings.limits.clone(),
        };
        let info = app_info(&deployment, replaced);
        let published = match &self.shared {
            Some(store) => Some(store.deploy_app(name, &hash, bytes, false).await?),
            None => None,
        };
        self.apps.deploy(deployment);
        if let (Some(store), Some(version)) = (&self.shared, published) {
            shared_apps::publish(&self.config, &self.wasm, &**store, &self.apps, version).await?;
        }
        self.update_manifest(name, Some(hash))?;
        self.collect_unused_versions().await?;
        Ok(info)
    }

    /// Replays the unfinished orchestrations of `connection` against `bytes`, a candidate
    /// component, and reports per instance whether it would diverge. Nothing is deployed.
    pub async fn check(&self, connection: Option<&str>, bytes: &[u8]) -> Result<crate::check::CheckReport, HubError> {
        let (_, task_hub) = self.connection(connection)?;
        let label = PathBuf::from("candidate.wasm");
        let candidate = self
            .wasm
            .load_bytes(&label, bytes, self.config.app("").sandbox())
            .await?;
        Ok(crate::check::check_candidate(task_hub.store(), &self.wasm, &candidate).await?)
    }

    /// Removes app `name`. Its running orchestrations finish on their version; new starts
    /// of its orchestrators are refused.
    pub async fn remove(&self, name: &str) -> Result<(), HubError> {
        let _deploying = self.deploying.lock().await;
        if !self.apps.remove(name) {
            return Err(HubError::UnknownApp {
                hub: self.config.name.clone(),
                app: name.to_owned(),
            });
        }
        if let Some(store) = &self.shared {
            let version = store.remove_app(name).await?;
            shared_apps::publish(&self.config, &self.wasm, &**store, &self.apps, version).await?;
        }
        self.update_manifest(name, None)?;
        self.collect_unused_versions().await?;
        Ok(())
    }

    fn update_manifest(&self, name: &str, hash: Option<String>) -> Result<(), HubError> {
        let mut manifest = read_manifest(&self.config.apps_dir)?;
        if let Some(hash) = &hash {
            manifest.versions.insert(hash.clone(), name.to_owned());
        }
        manifest.apps.insert(name.to_owned(), hash);
        write_manifest(&self.config.apps_dir, &manifest)
    }

    /// Drops the versions that are not current and that no unfinished orchestration of
    /// any connection is pinned to, and deletes their files.
    pub async fn collect_unused_versions(&self) -> Result<Vec<String>, HubError> {
        let mut in_use = HashSet::new();
        let filter = ListFilter {
            statuses: vec![RuntimeStatus::Pending, RuntimeStatus::Running, RuntimeStatus::Suspended],
            ..ListFilter::default()
        };
        for task_hub in self.connections.values() {
            let mut after = None;
            loop {
                let (records, next) = task_hub.store().list(&filter, after.as_ref(), 1000).await?;
                in_use.extend(records.into_iter().filter_map(|record| record.app_version));
                match next {
                    Some(cursor) => after = Some(cursor),
                    None => break,
                }
            }
        }
        let dropped = self.apps.retain_versions(&in_use);
        if let Some(store) = &self.shared
            && !dropped.is_empty()
        {
            store.drop_app_versions(&dropped).await?;
        }
        let current: HashSet<String> = self.apps.version_hashes().into_iter().collect();
        for hash in stored_versions(&self.config.apps_dir) {
            if !current.contains(&hash) {
                let _ = std::fs::remove_file(self.config.apps_dir.join(format!("{hash}.wasm")));
            }
        }
        Ok(dropped)
    }

    /// Stops the hub's loops once every submitted write is committed.
    pub async fn shutdown(self) {
        if let Some(app_sync) = &self.app_sync {
            app_sync.abort();
        }
        for (_, task_hub) in self.connections {
            match Arc::try_unwrap(task_hub) {
                Ok(task_hub) => task_hub.shutdown().await,
                Err(task_hub) => {
                    eprintln!(
                        "warning: requests still hold a task hub of '{}'; exiting without waiting",
                        self.config.name
                    );
                    task_hub.close_store().await;
                }
            }
        }
    }

    /// Hands the work of the hub's shared stores to the other hosts at once, while requests
    /// may still hold the hub (see [`TaskHub::close_store`]).
    pub async fn close_stores(&self) {
        for task_hub in self.connections.values() {
            task_hub.close_store().await;
        }
    }
}

/// Writes the manifest atomically, forgetting versions whose files are gone.
fn write_manifest(dir: &Path, manifest: &Manifest) -> Result<(), HubError> {
    let stored: HashSet<String> = stored_versions(dir).into_iter().collect();
    let manifest = Manifest {
        apps: manifest.apps.clone(),
        versions: manifest
            .versions
            .iter()
            .filter(|(hash, _)| stored.contains(*hash))
            .map(|(hash, name)| (hash.clone(), name.clone()))
            .collect(),
    };
    let io = |source| HubError::Io {
        dir: dir.to_owned(),
        source,
    };
    let temporary = dir.join("deployments.json.new");
    let text = serde_json::to_vec_pretty(&manifest).expect("the manifest serializes");
    std::fs::write(&temporary, text).map_err(io)?;
    std::fs::rename(&temporary, dir.join("deployments.json")).map_err(io)
}

fn read_manifest(dir: &Path) -> Result<Manifest, HubError> {
    match std::fs::read(dir.join("deployments.json")) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|error| HubError::Io {
            dir: dir.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, format!("deployments.json: {error}")),
        }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Manifest::default()),
        Err(source) => Err(HubError::Io {
            dir: dir.to_owned(),
            source,
        }),
    }
}

/// The content hashes of the `<hash>.wasm` files in `dir`.
fn stored_versions(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            let hash = name.strip_suffix(".wasm")?;
            (hash.len() == 64 && hash.bytes().all(|byte| byte.is_ascii_hexdigit())).then(|| hash.to_owned())
        })
        .collect()
}

/// Loads `source` and keeps a copy of it under its hash in `apps_dir`, so the version
/// survives the source file changing while orchestrations still run on it.
async fn load_and_keep(
    wasm: &WasmRuntime,
    apps_dir: &Path,
    source: &Path,
    sandbox: &durable_wasm::Sandbox,
) -> Result<durable_wasm::App, LoadError> {
    let app = wasm.load(source, sandbox.clone()).await?;
    let kept = apps_dir.join(format!("{}.wasm", app.hash));
    if !kept.exists()
        && let Err(error) = std::fs::copy(source, &kept)
    {
        eprintln!(
            "warning: cannot keep a copy of {} in {}: {error}",
            source.display(),
            apps_dir.display()
        );
    }
    Ok(app)
}

/// Every hub of a host, its admin keys and its HTTP limits.
pub struct Hosting {
    hubs: BTreeMap<String, Arc<Hub>>,
    admin_keys: KeyRing,
    /// Started without a config file: the one hub answers to any `taskHub` name.
    single: bool,
    config_file: Option<PathBuf>,
    /// The HTTP server's limits.
    pub http: HttpLimits,
}

impl Hosting {
    /// Starts every hub of `config`. `config_file` is where keys are reloaded from.
    pub async fn start(
        config: HostConfigFile,
        config_file: Option<PathBuf>,
        wasm: Arc<WasmRuntime>,
        dispatch: DispatchConfig,
    ) -> Result<(Hosting, Vec<String>), StartError> {
        let mut hubs = BTreeMap::new();
        let mut problems = Vec::new();
        for (name, hub_config) in config.hubs {
            let (hub, hub_problems) = Hub::start(hub_config, wasm.clone(), dispatch.clone()).await?;
            problems.extend(hub_problems);
            hubs.insert(name, Arc::new(hub));
        }
        Ok((
            Hosting {
                hubs,
                admin_keys: KeyRing::new(&config.admin_keys),
                single: config_file.is_none(),
                config_file,
                http: config.http,
            },
            problems,
        ))
    }

    /// The hubs by name.
    pub fn hubs(&self) -> &BTreeMap<String, Arc<Hub>> {
        &self.hubs
    }

    /// Whether any key is configured: without one, every endpoint is open (loopback use).
    pub fn has_keys(&self) -> bool {
        !self.admin_keys.is_empty() || self.hubs.values().any(|hub| hub.has_keys())
    }

    /// Whether some hub can be opened without a key.
    pub fn has_open_hub(&self) -> bool {
        self.hubs.values().any(|hub| !hub.has_keys())
    }

    /// The hub called `name` (any case); without a config file, the one hub whatever the name.
    fn find_hub(&self, name: &str) -> Option<&Arc<Hub>> {
        if self.single {
            return self.hubs.values().next();
        }
        self.hubs
            .iter()
            .find(|(hub, _)| hub.eq_ignore_ascii_case(name))
            .map(|(_, hub)| hub)
    }

    /// The hub a request names (`taskHub=`), opened with `key`.
    ///
    /// Hub names are told to admins only (or to anyone on a host without keys): for
    /// anybody else a hub that does not exist answers exactly as a keyed hub their key does
    /// not open, and a request naming no hub on a host of several is not told their names.
    pub fn open_hub(&self, task_hub: Option<&str>, key: Option<&str>) -> Result<&Arc<Hub>, HubError> {
        let hub = match task_hub {
            Some(name) => self.find_hub(name),
            None if self.single || self.hubs.len() == 1 => self.hubs.values().next(),
            None => {
                self.authorize_any(key)?;
                let names = self.hubs.keys().cloned().collect::<Vec<_>>().join(", ");
                return Err(HubError::HubNotNamed(self.is_admin(key).then_some(names)));
            }
        };
        let Some(hub) = hub else {
            if self.is_admin(key) {
                return Err(HubError::UnknownHub(task_hub.unwrap_or_default().to_owned()));
            }
            return Err(match key {
                None => HubError::KeyMissing,
                Some(_) => HubError::KeyRejected(NAMED_HUB.to_owned()),
            });
        };
        if !hub.has_keys() {
            return Ok(hub);
        }
        match key {
            None => Err(HubError::KeyMissing),
            Some(key) if hub.keys.opens(key) || self.admin_keys.opens(key) => Ok(hub),
            Some(_) => Err(HubError::KeyRejected(NAMED_HUB.to_owned())),
        }
    }

    /// Whether `key` may be told what hubs exist: an admin key, or any caller of a host
    /// without keys.
    fn is_admin(&self, key: Option<&str>) -> bool {
        !self.has_keys() || key.is_some_and(|key| self.admin_keys.opens(key))
    }

    fn authorize_any(&self, key: Option<&str>) -> Result<(), HubError> {
        if !self.has_keys() {
            return Ok(());
        }
        let key = key.ok_or(HubError::KeyMissing)?;
        if self.admin_keys.opens(key) || self.hubs.values().any(|hub| hub.keys.opens(key)) {
            Ok(())
        } else {
            Err(HubError::KeyRejected("anything on this host".to_owned()))
        }
    }

    /// Checks a key for the admin API. A host with no key at all (loopback development)
    /// is open; a host with hub keys but no admin key has the admin API disabled.
    pub fn authorize_admin(&self, key: Option<&str>) -> Result<(), HubError> {
        if !self.has_keys() {
            return Ok(());
        }
        if self.admin_keys.is_empty() {
            return Err(HubError::AdminDisabled);
        }
        match key {
            None => Err(HubError::KeyMissing),
            Some(key) if self.admin_keys.opens(key) => Ok(()),
            Some(_) => Err(HubError::KeyRejected("the admin API".to_owned())),
        }
    }

    /// The hub named `name`, for the admin API.
    pub fn hub(&self, name: &str) -> Result<&Arc<Hub>, HubError> {
        self.find_hub(name).ok_or_else(|| HubError::UnknownHub(name.to_owned()))
    }

    /// Re-reads the keys (admin and per hub) from the config file, so keys rotate without
    /// a restart. Hubs added to or removed from the file need a restart; they are reported.
    pub fn reload_keys(&self) -> Result<Vec<String>, HubError> {
        let file = self.config_file.as_ref().ok_or(HubError::NoConfigFile)?;
        let config = HostConfigFile::load(file)?;
        // A reload that would open a keyed hub (or drop every admin key) to anyone is
        // refused: that takes a restart, where the loopback rule is checked again.
        for (name, hub_config) in &config.hubs {
            if hub_config.keys.is_empty() && self.hubs.get(name).is_some_and(|hub| hub.has_keys()) {
                return Err(HubError::Reload(format!(
                    "hub '{name}' would have no keys left; keys not reloaded"
                )));
            }
        }
        if config.admin_keys.is_empty() && !self.admin_keys.is_empty() {
            return Err(HubError::Reload(
                "no admin key would be left; keys not reloaded".to_owned(),
            ));
        }
        let mut notes = Vec::new();
        self.admin_keys.replace(&config.admin_keys);
        for (name, hub_config) in &config.hubs {
            match self.hubs.get(name) {
                Some(hub) => {
                    hub.keys.replace(&hub_config.keys);
                }
                None => notes.push(format!(
                    "hub '{name}' is new in the file: it starts at the next restart"
                )),
            }
        }
        for name in self.hubs.keys() {
            if !config.hubs.contains_key(name) {
                notes.push(format!(
                    "hub '{name}' is gone from the file: it stops at the next restart"
                ));
            }
        }
        Ok(notes)
    }

    /// Stops every hub once its submitted writes are committed.
    pub async fn shutdown(self) {
        for (_, hub) in self.hubs {
            match Arc::try_unwrap(hub) {
                Ok(hub) => hub.shutdown().await,
                Err(hub) => {
                    eprintln!("warning: requests still hold a hub; exiting without waiting");
                    hub.close_stores().await;
                }
            }
        }
    }

    /// Hands the work of every shared store to the other hosts at once (a stop that cannot
    /// wait for the requests still running).
    pub async fn close_stores(&self) {
        for hub in self.hubs.values() {
            hub.close_stores().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_matches_only_itself() {
        let keys = vec![
            KeyDigest::of("first-key-0123456789"),
            KeyDigest::of("second-key-0123456789"),
        ];
        assert!(key_matches(&keys, "second-key-0123456789"));
        assert!(!key_matches(&keys, "second-key-012345678"));
        assert!(!key_matches(&keys, ""));
        assert!(!key_matches(&[], "first-key-0123456789"));
    }
}
