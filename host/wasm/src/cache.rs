//! The component cache: compiling an app's component, and keeping the compiled code in
//! the cache directory (keyed by the hash of the component's bytes) so a restart does not
//! recompile.

use std::path::Path;

use wasmtime::component::Component;

use crate::errors::LoadError;
use crate::runtime::WasmRuntime;

impl WasmRuntime {
    /// Compiles `bytes` (the component read from `path`, whose hash is `hash`), or takes
    /// the compiled code from the cache.
    pub(crate) fn compile(&self, path: &Path, bytes: &[u8], hash: &str) -> Result<Component, LoadError> {
        let compile_error = |error: wasmtime::Error| LoadError::Compile {
            file: path.to_owned(),
            detail: format!("{error:#}"),
        };
        let Some(cache_dir) = &self.cache_dir else {
            return Component::new(&self.engine, bytes).map_err(compile_error);
        };
        let cached = cache_dir.join(format!("{hash}.cwasm"));
        if cached.exists() {
            // SAFETY: the file was written by `precompile_component` of this host (the name is
            // the hash of its source), and wasmtime checks the engine configuration and
            // version before using it; a mismatch is an error, handled by recompiling.
            #[allow(unsafe_code)]
            if let Ok(component) = unsafe { Component::deserialize_file(&self.engine, &cached) } {
                return Ok(component);
            }
        }
        let compiled = self.engine.precompile_component(bytes).map_err(compile_error)?;
        let written = std::fs::create_dir_all(cache_dir).and_then(|()| {
            let temporary = cache_dir.join(format!("{hash}.cwasm.{}", std::process::id()));
            std::fs::write(&temporary, &compiled)?;
            std::fs::rename(&temporary, &cached)
        });
        if let Err(error) = written {
            eprintln!(
                "warning: cannot write the component cache {}: {error}",
                cached.display()
            );
        }
        // SAFETY: these bytes were produced just above by this engine's precompile.
        #[allow(unsafe_code)]
        unsafe { Component::deserialize(&self.engine, &compiled) }.map_err(compile_error)
    }
}

/// `bytes` in lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
