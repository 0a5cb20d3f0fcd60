//! The apps of a hub whose store several hosts share (PostgreSQL): the store's
//! [`AppCatalog`] is the truth, and each host mirrors it into its [`Apps`], keeping the
//! components in its apps directory as a cache checked by content hash.
//!
//! A deployment through any host writes the catalog and notifies the others, which load the
//! new version at once; every host keeps every version of the catalog loaded, so an
//! orchestration pinned to a version (invariant 11) runs on it whichever host steps it.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::config::{AppConfig, HubConfig};
use crate::runtime::{Apps, Deployment};
use durable_store::{StoreError, TaskStore};
use durable_wasm::{App, WasmRuntime};

/// The hex SHA-256 of `bytes`: an app version's name.
pub(crate) fn content_hash(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Puts the apps the config declares into the catalog, unless it already has them (a
/// deployment made through any host wins over a file given at start). Problems with single
/// apps are collected, not fatal.
pub(crate) async fn declare(
    config: &HubConfig,
    store: &dyn TaskStore,
    problems: &mut Vec<String>,
) -> Result<(), StoreError> {
    let catalog = store.app_catalog().await?;
    for (name, app) in &config.apps {
        let Some(path) = &app.path else { continue };
        if catalog.current.contains_key(name) {
            continue;
        }
        match std::fs::read(path) {
            Ok(bytes) => {
                store.deploy_app(name, &content_hash(&bytes), &bytes, true).await?;
            }
            Err(error) => problems.push(format!(
                "hub '{}': app '{name}' rejected: cannot read {}: {error}",
                config.name,
                path.display()
            )),
        }
    }
    Ok(())
}

/// Makes `apps` what the catalog says: current versions deployed, removed apps removed,
/// every kept version loaded, versions the catalog dropped dropped (unless still running
/// here). Then records in the store that this host runs the catalog as of the version read.
pub(crate) async fn sync(
    config: &HubConfig,
    wasm: &WasmRuntime,
    store: &dyn TaskStore,
    apps: &Apps,
    problems: &mut Vec<String>,
) -> Result<(), StoreError> {
    let catalog = store.app_catalog().await?;
    for (name, hash) in &catalog.current {
        let deployed = apps
            .deployments()
            .into_iter()
            .find(|deployment| deployment.name == *name)
            .map(|deployment| deployment.app.hash.clone());
        match hash {
            None => {
                if deployed.is_some() {
                    apps.remove(name);
                }
            }
            Some(hash) if deployed.as_ref() != Some(hash) => {
                let settings = config.app(name);
                match version(config, wasm, store, hash, &settings).await {
                    Ok(app) => apps.deploy(Deployment {
                        name: name.clone(),
                        app,
                        limits: settings.limits.clone(),
                    }),
                    Err(error) => problems.push(format!("hub '{}': app '{name}' rejected: {error}", config.name)),
                }
            }
            Some(_) => {}
        }
    }
    for (hash, name) in &catalog.versions {
        if apps.version(hash).is_some() {
            continue;
        }
        let settings = config.app(name);
        match version(config, wasm, store, hash, &settings).await {
            Ok(app) => apps.keep_version(app, settings.limits.clone()),
            Err(error) => problems.push(format!("hub '{}': kept version {hash}: {error}", config.name)),
        }
    }
    let kept: HashSet<String> = catalog.versions.keys().cloned().collect();
    apps.retain_versions(&kept);
    // Also after a version failed to load: it is reported, and waiting for it would not help.
    store.apps_loaded(catalog.version).await
}

/// How long a deployment waits for the other hosts to load it.
const DEPLOY_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// After this host changed the catalog (to `version`): mirrors the catalog here and waits
/// until every live host runs it, so that when a deployment returns every host serves it.
/// A host that does not follow within [`DEPLOY_WAIT`] is named in a warning.
pub(crate) async fn publish(
    config: &HubConfig,
    wasm: &WasmRuntime,
    store: &dyn TaskStore,
    apps: &Apps,
    version: u64,
) -> Result<(), StoreError> {
    let mut problems = Vec::new();
    sync(config, wasm, store, apps, &mut problems).await?;
    for problem in problems {
        eprintln!("error: {problem}");
    }
    let behind = store.await_apps_loaded(version, DEPLOY_WAIT).await?;
    if !behind.is_empty() {
        eprintln!(
            "warning: hub '{}': hosts {} have not loaded the apps' change within {DEPLOY_WAIT:?}",
            config.name,
            behind.join(", ")
        );
    }
    Ok(())
}

/// Version `hash`, loaded from the apps directory if the file there has that content, else
/// fetched from the store (and cached in the directory).
async fn version(
    config: &HubConfig,
    wasm: &WasmRuntime,
    store: &dyn TaskStore,
    hash: &str,
    settings: &AppConfig,
) -> Result<Arc<App>, String> {
    let file = config.apps_dir.join(format!("{hash}.wasm"));
    let bytes = match std::fs::read(&file) {
        Ok(bytes) if content_hash(&bytes) == hash => bytes,
        _ => {
            let bytes = store
                .app_version(hash)
                .await
                .map_err(|error| error.to_string())?
                .ok_or_else(|| format!("version {hash} is not in the store"))?;
            if content_hash(&bytes) != hash {
                return Err(format!("the store's copy of version {hash} has another content hash"));
            }
            cache(&config.apps_dir, &file, &bytes);
            bytes
        }
    };
    wasm.load_bytes(&file, &bytes, settings.sandbox())
        .await
        .map(Arc::new)
        .map_err(|error| error.to_string())
}

/// Writes a fetched version into the apps directory, atomically; a failure only costs a
/// fetch next time.
fn cache(dir: &Path, file: &Path, bytes: &[u8]) {
    let temporary = dir.join(format!(
        "{}.{}",
        file.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    let written = std::fs::write(&temporary, bytes).and_then(|()| std::fs::rename(&temporary, file));
    if let Err(error) = written {
        eprintln!("warning: cannot cache {} : {error}", file.display());
    }
}

/// Follows the catalog while the hub runs: each change another host announces is mirrored
/// (under the hub's deployment lock, so it never interleaves with a deployment here).
pub(crate) fn follow(
    config: HubConfig,
    wasm: Arc<WasmRuntime>,
    store: Arc<dyn TaskStore>,
    apps: Arc<Apps>,
    deploying: Arc<tokio::sync::Mutex<()>>,
) -> Option<tokio::task::JoinHandle<()>> {
    let mut changes = store.subscribe_apps()?;
    Some(tokio::spawn(async move {
        while changes.changed().await.is_ok() {
            let _deploying = deploying.lock().await;
            let mut problems = Vec::new();
            if let Err(error) = sync(&config, &wasm, &*store, &apps, &mut problems).await {
                eprintln!("error: hub '{}': reading the apps of the store: {error}", config.name);
            }
            for problem in problems {
                eprintln!("error: {problem}");
            }
        }
    }))
}
