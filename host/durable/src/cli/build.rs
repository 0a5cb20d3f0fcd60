//! `durable build [PATH] [-o OUT.wasm]`: turns a function app's sources into the component
//! the host loads, whatever language it is written in.
//!
//! The language is told by the files in PATH: `Cargo.toml` (Rust: cargo for
//! wasm32-wasip2), `function_app.py` (Python: componentize-py), `package.json` (JavaScript:
//! esbuild, then componentize-js). The WIT package the component must fit is the one this
//! binary was built with, written to a temporary directory for the guest toolchains, so an
//! app is always built against the interface the host accepts. Progress goes to stderr; stdout
//! gets the path of the `.wasm`, one per line, and nothing else.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};

/// The WIT package of this host, given to the Python and JavaScript toolchains.
const WIT: &str = include_str!("../../../../wit/durable.wit");

/// The WIT world every app implements.
const WORLD: &str = "app";

/// The componentize-py release the Python SDK is built and tested with.
const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";

const USAGE: &str = "\
durable build: builds a function app into a WebAssembly component

USAGE:
    durable build [PATH] [-o OUT.wasm]

    PATH     the app's directory (default: the current one). Its language is told by what it holds:
               Cargo.toml        Rust: cargo build --release --target wasm32-wasip2
               function_app.py   Python: componentize-py (the durable_functions SDK from guest-sdk/python)
               package.json      JavaScript: esbuild + componentize-js (the durable-functions SDK from guest-sdk/js)
    -o FILE  where to write the component (default: cargo's target dir for Rust,
             PATH/dist/NAME.wasm for Python and JavaScript)

    Python and JavaScript need their toolchains: run scripts/setup-polyglot.sh from the repository
    (a virtualenv with componentize-py and the SDK, and node_modules with componentize-js and
    esbuild, under target/polyglot), or point COMPONENTIZE_PY (componentize-py in a virtualenv
    holding durable_functions), DURABLE_JS_TOOLCHAIN (a directory with node_modules) and
    DURABLE_JS_SDK (guest-sdk/js) elsewhere.

    Prints the path of each component built on stdout; progress on stderr.
";

/// The language of an app directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Language {
    Rust,
    Python,
    JavaScript,
}

impl Language {
    fn detect(dir: &Path) -> Result<Language> {
        if !dir.is_dir() {
            bail!("{} is not a directory", dir.display());
        }
        let found = [
            ("Cargo.toml", Language::Rust),
            ("function_app.py", Language::Python),
            ("package.json", Language::JavaScript),
        ]
        .into_iter()
        .filter(|(file, _)| dir.join(file).is_file())
        .collect::<Vec<_>>();
        match found.as_slice() {
            [(_, language)] => Ok(*language),
            [] => bail!(
                "{} holds no function app: expected Cargo.toml (Rust), function_app.py (Python) \
                 or package.json (JavaScript)",
                dir.display()
            ),
            several => bail!(
                "{} holds the marks of several languages ({}); build from a directory with one",
                dir.display(),
                several.iter().map(|(file, _)| *file).collect::<Vec<_>>().join(", ")
            ),
        }
    }
}

/// A wrong command line (exit code 2), as opposed to a build that failed (exit code 1).
#[derive(Debug)]
struct UsageError(String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}\n\n{USAGE}", self.0)
    }
}

impl std::error::Error for UsageError {}

/// Runs `durable build` with the arguments after `build`; returns the process's exit code:
/// 0 built, 1 the build failed, 2 usage error.
pub fn main(args: impl Iterator<Item = String>) -> i32 {
    match run(args) {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("error: {error:#}");
            if error.is::<UsageError>() { 2 } else { 1 }
        }
    }
}

fn run(mut args: impl Iterator<Item = String>) -> Result<()> {
    let mut dir = None;
    let mut out = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => {
                print!("{USAGE}");
                return Ok(());
            }
            "-o" | "--out" => match args.next() {
                Some(file) => out = Some(PathBuf::from(file)),
                None => return Err(UsageError("-o needs a file".into()).into()),
            },
            flag if flag.starts_with('-') => return Err(UsageError(format!("unknown option {flag}")).into()),
            path if dir.is_none() => dir = Some(PathBuf::from(path)),
            extra => {
                return Err(UsageError(format!("one app directory at a time ({extra} is a second)")).into());
            }
        }
    }
    let dir = dir.unwrap_or_else(|| PathBuf::from("."));
    let language = Language::detect(&dir)?;
    let started = Instant::now();
    eprintln!("durable build: {} ({language:?})", dir.display());
    let built = match language {
        Language::Rust => build_rust(&dir, out.as_deref())?,
        Language::Python => vec![build_python(&dir, out.as_deref())?],
        Language::JavaScript => vec![build_js(&dir, out.as_deref())?],
    };
    for wasm in &built {
        let size = std::fs::metadata(wasm).map(|meta| meta.len()).unwrap_or_default();
        eprintln!(
            "durable build: {} ({:.1} MB) in {:.1} s",
            wasm.display(),
            size as f64 / 1e6,
            started.elapsed().as_secs_f64()
        );
        println!("{}", wasm.display());
    }
    Ok(())
}

/// `cargo build --release --target wasm32-wasip2`, adding the target first if rustup lacks it;
/// the components are the `.wasm` artifacts cargo reports.
fn build_rust(dir: &Path, out: Option<&Path>) -> Result<Vec<PathBuf>> {
    const TARGET: &str = "wasm32-wasip2";
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .stderr(Stdio::inherit())
        .output()
        .context("running rustup (a Rust app needs a rustup toolchain: see https://rustup.rs)")?;
    if !String::from_utf8_lossy(&installed.stdout)
        .lines()
        .any(|line| line == TARGET)
    {
        eprintln!("durable build: rustup target add {TARGET}");
        run_step(
            Command::new("rustup").args(["target", "add", TARGET]),
            "rustup target add",
        )?;
    }
    let output = Command::new("cargo")
        .args([
            "build",
            "--release",
            "--target",
            TARGET,
            "--message-format=json-render-diagnostics",
        ])
        .arg("--manifest-path")
        .arg(dir.join("Cargo.toml"))
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo")?;
    if !output.status.success() {
        bail!("cargo build failed ({})", output.status);
    }
    let mut components = Vec::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if message["reason"] != "compiler-artifact" {
            continue;
        }
        let files = message["filenames"].as_array().into_iter().flatten();
        components.extend(
            files
                .filter_map(|file| file.as_str())
                .filter(|file| file.ends_with(".wasm"))
                .map(PathBuf::from),
        );
    }
    match (out, components.as_slice()) {
        (_, []) => bail!(
            "cargo built no .wasm: is the crate a cdylib (`[lib] crate-type = [\"cdylib\"]`) that exports the app?"
        ),
        (Some(out), [component]) => {
            copy(component, out)?;
            Ok(vec![out.to_owned()])
        }
        (Some(_), _) => bail!("-o takes one component, but {} has several", dir.display()),
        (None, _) => Ok(components),
    }
}

/// Copies `from` to `to`, creating `to`'s directory.
fn copy(from: &Path, to: &Path) -> Result<()> {
    create_parent(to)?;
    std::fs::copy(from, to).with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    Ok(())
}

/// Creates the directory `file` goes in, if it names one.
fn create_parent(file: &Path) -> Result<()> {
    if let Some(parent) = file.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    Ok(())
}

/// Runs a toolchain step with its output on stderr; fails with `what` if it does.
fn run_step(command: &mut Command, what: &str) -> Result<()> {
    let status = command
        .stdout(Stdio::from(std::io::stderr()))
        .stderr(Stdio::inherit())
        .status()
        .with_context(|| format!("running {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

/// Where a Python or JavaScript app's component goes, its directory created: `out`, else
/// `DIR/dist/NAME.wasm`, NAME being the directory's name.
fn output_path(dir: &Path, out: Option<&Path>) -> Result<PathBuf> {
    let out = match out {
        Some(out) => out.to_owned(),
        None => default_out(dir)?,
    };
    create_parent(&out)?;
    Ok(out)
}

/// `DIR/dist/NAME.wasm`, NAME being the directory's name.
fn default_out(dir: &Path) -> Result<PathBuf> {
    let absolute = dir
        .canonicalize()
        .with_context(|| format!("resolving {}", dir.display()))?;
    let name = absolute
        .file_name()
        .map(OsString::from)
        .unwrap_or_else(|| OsString::from("app"));
    let mut file = name;
    file.push(".wasm");
    Ok(absolute.join("dist").join(file))
}

/// A directory of this build's own, removed when dropped.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new() -> Result<ScratchDir> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!("durable-build-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(ScratchDir(dir))
    }

    /// A scratch directory holding this host's WIT package (`durable.wit`).
    fn with_wit() -> Result<ScratchDir> {
        let scratch = ScratchDir::new()?;
        std::fs::write(scratch.0.join("durable.wit"), WIT).context("writing the WIT package")?;
        Ok(scratch)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The repository this `durable` binary was built in, if it still runs from its target
/// directory: where the SDKs and the toolchains of scripts/setup-polyglot.sh are.
fn repository() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    exe.ancestors()
        .find(|dir| dir.join("guest-sdk").is_dir() && dir.join("wit/durable.wit").is_file())
        .map(Path::to_owned)
}

/// The first `name` on PATH.
fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// componentize-py with the durable_functions SDK installed beside it, in a virtualenv.
fn build_python(dir: &Path, out: Option<&Path>) -> Result<PathBuf> {
    let install = format!(
        "Install the Python toolchain, {COMPONENTIZE_PY} and the durable_functions SDK, into a \
         virtualenv with `guest-sdk/python/install-toolchain.sh target/polyglot/python-venv` from the \
         repository (scripts/setup-polyglot.sh does it), then put its bin/ on PATH or set COMPONENTIZE_PY"
    );
    if let Some(given) = std::env::var_os("COMPONENTIZE_PY").map(PathBuf::from)
        && !given.is_file()
    {
        bail!(
            "COMPONENTIZE_PY is {}, which does not exist. {install}",
            given.display()
        );
    }
    let componentize = std::env::var_os("COMPONENTIZE_PY")
        .map(PathBuf::from)
        .or_else(|| on_path("componentize-py"))
        .or_else(|| {
            repository()
                .map(|repo| repo.join("target/polyglot/python-venv/bin/componentize-py"))
                .filter(|candidate| candidate.is_file())
        })
        .with_context(|| format!("componentize-py was not found (needed for Python apps). {install}"))?;
    let venv = componentize
        .parent()
        .and_then(Path::parent)
        .filter(|venv| venv.join("pyvenv.cfg").is_file());
    if let Some(python) = venv.map(|venv| venv.join("bin/python"))
        && !Command::new(&python)
            .args(["-c", "import durable_functions"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    {
        bail!(
            "the durable_functions SDK is not installed beside {}: `{} -m pip install guest-sdk/python` \
             (or guest-sdk/python/install-toolchain.sh on that virtualenv)",
            componentize.display(),
            python.display()
        );
    }
    let out = output_path(dir, out)?;
    let wit = ScratchDir::with_wit()?;
    let mut command = Command::new(&componentize);
    if let Some(venv) = venv {
        // componentize-py collects the modules of the virtualenv it runs in, the SDK among them.
        command.env("VIRTUAL_ENV", venv);
    }
    command
        .arg("-d")
        .arg(&wit.0)
        .args(["-w", WORLD, "componentize", "durable_functions.component", "-p"])
        .arg(dir)
        .arg("-o")
        .arg(&out);
    run_step(&mut command, "componentize-py")?;
    Ok(out)
}

/// esbuild bundles the app with the durable-functions SDK into one module, componentize-js
/// makes it a component.
fn build_js(dir: &Path, out: Option<&Path>) -> Result<PathBuf> {
    let repo = repository();
    let sdk = std::env::var_os("DURABLE_JS_SDK")
        .map(PathBuf::from)
        .or_else(|| repo.as_ref().map(|repo| repo.join("guest-sdk/js")))
        .filter(|sdk| sdk.join("src/entry.js").is_file())
        .context(
            "the durable-functions JavaScript SDK was not found: set DURABLE_JS_SDK to the guest-sdk/js \
             directory of the repository",
        )?;
    let toolchain = std::env::var_os("DURABLE_JS_TOOLCHAIN")
        .map(PathBuf::from)
        .or_else(|| repo.as_ref().map(|repo| repo.join("target/polyglot/js")))
        .context("set DURABLE_JS_TOOLCHAIN to a directory with the JavaScript toolchain")?;
    let bin = toolchain.join("node_modules/.bin");
    if on_path("node").is_none() {
        bail!("node was not found (needed for JavaScript apps): install Node.js 20 or later");
    }
    if !bin.join("componentize-js").is_file() || !bin.join("esbuild").is_file() {
        bail!(
            "the JavaScript toolchain (componentize-js, esbuild) is not installed in {}: run \
             `guest-sdk/js/install-toolchain.sh {}` from the repository (scripts/setup-polyglot.sh does it)",
            toolchain.display(),
            toolchain.display()
        );
    }
    let manifest = dir.join("package.json");
    let package: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&manifest).with_context(|| format!("reading {}", manifest.display()))?,
    )
    .with_context(|| format!("{} is not JSON", manifest.display()))?;
    let main = dir.join(
        package["main"]
            .as_str()
            .filter(|main| !main.is_empty())
            .unwrap_or("index.js"),
    );
    if !main.is_file() {
        bail!(
            "the app's main module {} does not exist (package.json \"main\")",
            main.display()
        );
    }
    let out = output_path(dir, out)?;
    let scratch = ScratchDir::with_wit()?;
    let bundle = scratch.0.join("app.js");
    let mut alias_sdk = OsString::from("--alias:durable-functions=");
    alias_sdk.push(sdk.join("src/index.js"));
    let mut alias_app = OsString::from("--alias:durable-app=");
    alias_app.push(main.canonicalize().context("resolving the app's main module")?);
    let mut outfile = OsString::from("--outfile=");
    outfile.push(&bundle);
    run_step(
        Command::new(bin.join("esbuild"))
            .arg(sdk.join("src/entry.js"))
            // --keep-names: error types are class names, which bundling must not rename.
            .args([
                "--bundle",
                "--format=esm",
                "--platform=browser",
                "--target=es2022",
                "--keep-names",
                "--log-level=warning",
            ])
            .arg(alias_sdk)
            .arg(alias_app)
            .arg(outfile),
        "esbuild",
    )?;
    run_step(
        Command::new(bin.join("componentize-js"))
            .arg(&bundle)
            .arg("--wit")
            .arg(&scratch.0)
            .args(["--world-name", WORLD, "--out"])
            .arg(&out),
        "componentize-js",
    )?;
    Ok(out)
}
