//! The component cache: compiling an app's component, and keeping the compiled code in
//! the cache directory (keyed by the hash of the component's bytes) so a restart does not
//! recompile.
//!
//! A component whose bytes hash to `<hash>` is kept as `<hash>.cwasm`, the output of
//! `Engine::precompile_component`, and `<hash>.cwasm.sha256`, the SHA-256 of the `.cwasm`'s
//! bytes (hex), written after it. A `.cwasm` is loaded only if its bytes match that
//! record; otherwise (truncated, torn, altered, replaced, or without a record) the
//! component is compiled again and both files are rewritten.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;

use crate::errors::LoadError;
use crate::runtime::WasmRuntime;

/// Where a component's compiled code came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// The cache: a `.cwasm` whose bytes matched their record.
    Cache,
    /// Compiled by this call.
    Compiled,
}

impl WasmRuntime {
    /// Compiles `bytes` (the component read from `path`, whose hash is `hash`), or takes
    /// the compiled code from the cache.
    pub(crate) fn compile(&self, path: &Path, bytes: &[u8], hash: &str) -> Result<(Component, Origin), LoadError> {
        let compile_error = |error: wasmtime::Error| LoadError::Compile {
            file: path.to_owned(),
            detail: format!("{error:#}"),
        };
        let Some(cache_dir) = &self.cache_dir else {
            return Component::new(&self.engine, bytes)
                .map(|component| (component, Origin::Compiled))
                .map_err(compile_error);
        };
        let cached = cache_dir.join(format!("{hash}.cwasm"));
        if let Some(verified) = read_verified(&cached) {
            // SAFETY: `Component::deserialize` trusts its bytes to be code this wasmtime
            // compiled: it checks their header (wasmtime's version, the engine's
            // configuration), not the machine code it maps executable. `verified` is exactly
            // the bytes read from `cached`, and their SHA-256 equals the record beside it,
            // which this host writes (see `write_cached`) only after writing the `.cwasm` with
            // what its own engine's `precompile_component` produced. A truncated, torn,
            // altered or replaced `.cwasm`, or one without a record, is never deserialized.
            // What remains trusted is that whoever wrote both files is this host: that the
            // cache directory is writable by nobody the host does not trust. A header mismatch
            // is an error, handled by recompiling.
            #[allow(unsafe_code)]
            if let Ok(component) = unsafe { Component::deserialize(&self.engine, &verified) } {
                return Ok((component, Origin::Cache));
            }
        }
        let compiled = self.engine.precompile_component(bytes).map_err(compile_error)?;
        if let Err(error) = write_cached(cache_dir, &cached, &compiled) {
            eprintln!(
                "warning: cannot write the component cache {}: {error}",
                cached.display()
            );
        }
        // SAFETY: these bytes were produced just above by this engine's precompile.
        #[allow(unsafe_code)]
        unsafe { Component::deserialize(&self.engine, &compiled) }
            .map(|component| (component, Origin::Compiled))
            .map_err(compile_error)
    }
}

/// `path` with `suffix` appended to its file name.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name: OsString = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Where the SHA-256 of the `.cwasm` at `cwasm` is recorded.
fn record_of(cwasm: &Path) -> PathBuf {
    with_suffix(cwasm, ".sha256")
}

/// The bytes of the `.cwasm` at `cwasm`, if their SHA-256 is the one recorded beside it;
/// `None` if either file cannot be read or they do not match.
pub(crate) fn read_verified(cwasm: &Path) -> Option<Vec<u8>> {
    let recorded = std::fs::read_to_string(record_of(cwasm)).ok()?;
    let bytes = std::fs::read(cwasm).ok()?;
    (hex(&Sha256::digest(&bytes)) == recorded.trim()).then_some(bytes)
}

/// Writes `compiled` to `cwasm` in `cache_dir`, then its record. Each file is written to a
/// temporary file renamed into place, so a reader sees either whole; a reader between the
/// two renames sees a `.cwasm` that does not match its (old or missing) record, and
/// recompiles.
fn write_cached(cache_dir: &Path, cwasm: &Path, compiled: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(cache_dir)?;
    write_atomically(cwasm, compiled)?;
    let record = format!("{}\n", hex(&Sha256::digest(compiled)));
    write_atomically(&record_of(cwasm), record.as_bytes())
}

/// Writes `bytes` to a temporary file beside `path` (named for this process and write, so
/// concurrent writers do not share one), then renames it to `path`. The temporary file is
/// removed if either step fails.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let write = WRITES.fetch_add(1, Ordering::Relaxed);
    let temporary = with_suffix(path, &format!(".{}.{write}", std::process::id()));
    let written = std::fs::write(&temporary, bytes).and_then(|()| std::fs::rename(&temporary, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written
}

/// `bytes` in lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two tiny components whose compiled code differs.
    const ONE: &str = r#"(component (core module (func (export "f") (result i32) i32.const 1)))"#;
    const TWO: &str = r#"(component (core module (func (export "f") (result i32) i32.const 2)))"#;

    fn hash(bytes: &[u8]) -> String {
        hex(&Sha256::digest(bytes))
    }

    fn compile(runtime: &WasmRuntime, component: &str) -> Origin {
        let (_, origin) = runtime
            .compile(
                Path::new("test.wasm"),
                component.as_bytes(),
                &hash(component.as_bytes()),
            )
            .expect("compiling a tiny component");
        origin
    }

    #[test]
    fn a_cwasm_is_read_only_if_it_matches_its_record() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let cwasm = dir.path().join("x.cwasm");
        let bytes = b"compiled code".to_vec();
        std::fs::write(&cwasm, &bytes).unwrap();
        assert_eq!(read_verified(&cwasm), None, "no record");
        std::fs::write(record_of(&cwasm), format!("{}\n", hash(&bytes))).unwrap();
        assert_eq!(read_verified(&cwasm), Some(bytes.clone()));
        std::fs::write(&cwasm, &bytes[..5]).unwrap();
        assert_eq!(read_verified(&cwasm), None, "truncated");
        std::fs::write(&cwasm, b"compiled codf").unwrap();
        assert_eq!(read_verified(&cwasm), None, "altered");
        std::fs::remove_file(&cwasm).unwrap();
        assert_eq!(read_verified(&cwasm), None, "no cwasm");
    }

    #[test]
    fn write_cached_writes_the_cwasm_and_its_record_and_no_temporary_file() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let cache_dir = dir.path().join("cache");
        let cwasm = cache_dir.join("x.cwasm");
        write_cached(&cache_dir, &cwasm, b"compiled code").unwrap();
        assert_eq!(read_verified(&cwasm), Some(b"compiled code".to_vec()));
        let mut names: Vec<String> = std::fs::read_dir(&cache_dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["x.cwasm", "x.cwasm.sha256"]);
    }

    #[test]
    fn a_tampered_truncated_replaced_or_unrecorded_cwasm_is_recompiled_not_loaded() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let runtime = WasmRuntime::new(Some(dir.path().to_owned())).expect("the wasm runtime");
        let cwasm = dir.path().join(format!("{}.cwasm", hash(ONE.as_bytes())));
        let other = dir.path().join(format!("{}.cwasm", hash(TWO.as_bytes())));

        assert_eq!(compile(&runtime, ONE), Origin::Compiled);
        assert_eq!(compile(&runtime, ONE), Origin::Cache);
        assert_eq!(compile(&runtime, TWO), Origin::Compiled);
        let good = read_verified(&cwasm).expect("the cache holds a verified cwasm");

        let tamper = |bytes: &[u8]| {
            std::fs::write(&cwasm, bytes).unwrap();
            let origin = compile(&runtime, ONE);
            let rewritten = read_verified(&cwasm).expect("the cwasm and its record are rewritten");
            assert_ne!(rewritten, bytes);
            assert_eq!(compile(&runtime, ONE), Origin::Cache);
            origin
        };
        assert_eq!(tamper(&good[..good.len() / 2]), Origin::Compiled, "truncated");
        let mut flipped = good.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(tamper(&flipped), Origin::Compiled, "a byte altered");
        // Valid code, of another component: wasmtime's own checks would accept it.
        let replaced = std::fs::read(&other).unwrap();
        assert_ne!(replaced, good);
        // SAFETY: the bytes are what this runtime's engine compiled (for `TWO`).
        #[allow(unsafe_code)]
        let accepted = unsafe { Component::deserialize(&runtime.engine, &replaced) };
        assert!(accepted.is_ok(), "wasmtime's header checks pass");
        assert_eq!(tamper(&replaced), Origin::Compiled, "another component's code");

        std::fs::remove_file(record_of(&cwasm)).unwrap();
        assert_eq!(compile(&runtime, ONE), Origin::Compiled, "no record");
        assert!(read_verified(&cwasm).is_some(), "the record is rewritten");
        assert_eq!(compile(&runtime, ONE), Origin::Cache);
    }
}
