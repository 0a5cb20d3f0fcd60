//! A loaded app ([`App`]): what it is allowed ([`Sandbox`]), its functions
//! ([`FunctionKind`]), and how the runtime loads one (compile or take from the cache,
//! check it fits the world, read its registry).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use wasmtime::Store;
use wasmtime_wasi::WasiCtx;

use crate::activity::ActivityPool;
use crate::bindings;
use crate::cache::hex;
use crate::convert::function_kind_from_wit;
use crate::errors::{GuestTrap, LoadError, explain_failure};
use crate::grants::{ActivityGrants, activity_wasi};
use crate::limits::{CallKind, GuestLimits, begin_call, within_budget};
use crate::runtime::WasmRuntime;
use crate::stderr::CapturedOutput;
use crate::store::HostState;

/// Everything an app is allowed: its limits and its activities' grants.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sandbox {
    /// Time and memory limits.
    pub limits: GuestLimits,
    /// What its activities may touch.
    pub grants: ActivityGrants,
}

/// The kind of an exported function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FunctionKind {
    /// An orchestrator.
    Orchestrator,
    /// An activity.
    Activity,
    /// An entity (not run by this version).
    Entity,
}

/// A loaded app: its component, ready to instantiate, and its functions.
pub struct App {
    /// The file it came from.
    pub path: PathBuf,
    /// SHA-256 of its bytes, hex; the component cache key and version identity.
    pub hash: String,
    /// Its functions, as its registry lists them.
    pub functions: Vec<(String, FunctionKind)>,
    /// Its limits and its activities' grants.
    pub sandbox: Sandbox,
    pub(crate) pre: bindings::AppPre<HostState>,
    /// Activity instances between calls. Instantiating (and later unmapping) an instance per
    /// call cost more than the call itself: the unmaps' TLB shootdowns dominated the profile.
    pub(crate) idle_activities: Arc<ActivityPool>,
}

impl WasmRuntime {
    /// Loads an app from a file: [`WasmRuntime::load_bytes`] of its contents.
    pub async fn load(&self, path: &Path, sandbox: Sandbox) -> Result<App, LoadError> {
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            file: path.to_owned(),
            source,
        })?;
        self.load_bytes(path, &bytes, sandbox).await
    }

    /// Loads an app from its bytes: compiles it (or takes it from the cache), checks it
    /// fits the world, checks its granted directories open, and reads its registry.
    /// `label` is what [`App::path`] and errors show (the file, or where an upload came
    /// from).
    pub async fn load_bytes(&self, label: &Path, bytes: &[u8], sandbox: Sandbox) -> Result<App, LoadError> {
        let path = label;
        let hash = hex(&Sha256::digest(bytes));
        let (component, _) = self.compile(path, bytes, &hash)?;
        let instance_pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|error| LoadError::DoesNotFit {
                file: path.to_owned(),
                detail: format!("{error:#}"),
            })?;
        let pre = bindings::AppPre::new(instance_pre).map_err(|error| LoadError::DoesNotFit {
            file: path.to_owned(),
            detail: format!("{error:#}"),
        })?;
        if let Err(error) = activity_wasi(&sandbox.grants, CapturedOutput::default()) {
            return Err(LoadError::Grants {
                file: path.to_owned(),
                detail: format!("{error:#}"),
            });
        }
        let registry_error = |trap: GuestTrap| LoadError::Registry {
            file: path.to_owned(),
            detail: trap.message,
        };
        let limits = &sandbox.limits;
        let stderr = CapturedOutput::default();
        let wasi = WasiCtx::builder().stdout(stderr.clone()).stderr(stderr.clone()).build();
        let mut store = self.new_store(wasi, &[], limits);
        let explain = |store: &Store<HostState>, error: Option<&wasmtime::Error>, what: &str| {
            explain_failure(what, CallKind::Call, limits, store.data(), error, &stderr)
        };
        begin_call(&mut store, limits.call_timeout);
        let app = match within_budget(limits.call_timeout, pre.instantiate_async(&mut store)).await {
            Some(Ok(app)) => app,
            Some(Err(error)) => return Err(registry_error(explain(&store, Some(&error), "instantiating it"))),
            None => return Err(registry_error(explain(&store, None, "instantiating it"))),
        };
        begin_call(&mut store, limits.call_timeout);
        let functions = match within_budget(
            limits.call_timeout,
            app.durable_functions_registry().call_functions(&mut store),
        )
        .await
        {
            Some(Ok(functions)) => functions,
            Some(Err(error)) => return Err(registry_error(explain(&store, Some(&error), "its registry"))),
            None => return Err(registry_error(explain(&store, None, "its registry"))),
        };
        let functions = functions
            .into_iter()
            .map(|info| (info.name, function_kind_from_wit(info.kind)))
            .collect();
        Ok(App {
            path: path.to_owned(),
            hash,
            functions,
            pre,
            idle_activities: self.new_pool(sandbox.limits.instance_idle),
            sandbox,
        })
    }
}
