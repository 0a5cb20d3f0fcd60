//! `durable`: the command-line entry point of the durable host.

mod bench;
mod cli;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use durable_engine::config::{HostConfigFile, HostLimits, HttpLimits, HubConfig, Limits};
use durable_engine::dispatch::DispatchConfig;
use durable_engine::hubs::Hosting;
use durable_store::StoreLocation;
use durable_wasm::WasmRuntime;

const USAGE: &str = "\
durable: runs Durable Functions compiled to WebAssembly components

USAGE:
    durable serve --app FILE.wasm [--app FILE.wasm ...] [--listen HOST:PORT] [--store PATH|URL]
                  [--apps-dir DIR] [--component-cache DIR] [--cache-size N] [--activity-concurrency N]
    durable serve --config FILE.toml [--listen HOST:PORT] [--component-cache DIR] [--cache-size N]
                  [--allow-unauthenticated]
    durable bench WORKLOAD|all [--instances N] [--json] [--app FILE.wasm ...]
                  measures the host on this machine (see BENCHMARKS.md; durable bench --help)
    durable build [PATH] [-o OUT.wasm]
                  builds the Rust, Python or JavaScript function app in PATH (durable build --help)

    --listen                 address to serve the HTTP API on (default 127.0.0.1:7071; port 0 picks one)
    --store                  redb file holding every instance (default .durable/store.redb), or a
                             PostgreSQL hub that several hosts share:
                             postgres://USER:PASSWORD@HOST:PORT/DB[?schema=NAME&lease=SECONDS&sslmode=...]
    --apps-dir               where deployed apps are kept (default: beside the store, or .durable/apps)
    --app                    a function app component; repeat for several
    --config                 task hubs (tenants) with their stores, keys, apps and limits; see README
    --component-cache        where compiled components are kept (default: beside the store or config)
    --cache-size             live orchestrations kept in memory per store (default 10000)
    --activity-concurrency   activities run at the same time (default 16; per hub in a config file)
    --allow-unauthenticated  serve a hub without keys on a non-loopback address

    SIGHUP (or POST /admin/keys/reload) re-reads the keys of a config file without a restart.
";

struct ServeArgs {
    listen: SocketAddr,
    store: Option<StoreLocation>,
    apps_dir: Option<PathBuf>,
    apps: Vec<PathBuf>,
    config: Option<PathBuf>,
    component_cache: Option<PathBuf>,
    dispatch: DispatchConfig,
    allow_unauthenticated: bool,
}

fn parse_serve(mut args: impl Iterator<Item = String>) -> Result<ServeArgs> {
    let mut parsed = ServeArgs {
        listen: "127.0.0.1:7071".parse().expect("a valid default address"),
        store: None,
        apps_dir: None,
        apps: Vec::new(),
        config: None,
        component_cache: None,
        dispatch: DispatchConfig::default(),
        allow_unauthenticated: false,
    };
    while let Some(flag) = args.next() {
        let (flag, inline) = match flag.split_once('=') {
            Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
            None => (flag, None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .with_context(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--listen" => {
                let text = value()?;
                parsed.listen = text
                    .parse()
                    .with_context(|| format!("--listen {text}: expected HOST:PORT, e.g. 127.0.0.1:7071"))?;
            }
            "--store" => parsed.store = Some(StoreLocation::parse(&value()?)?),
            "--apps-dir" => parsed.apps_dir = Some(PathBuf::from(value()?)),
            "--config" => parsed.config = Some(PathBuf::from(value()?)),
            "--allow-unauthenticated" => parsed.allow_unauthenticated = true,
            "--app" => parsed.apps.push(PathBuf::from(value()?)),
            "--component-cache" => parsed.component_cache = Some(PathBuf::from(value()?)),
            "--cache-size" => {
                parsed.dispatch.cache_capacity = value()?.parse().context("--cache-size expects a number")?
            }
            "--activity-concurrency" => {
                parsed.dispatch.activity_concurrency =
                    value()?.parse().context("--activity-concurrency expects a number")?
            }
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown option {other}\n\n{USAGE}"),
        }
    }
    if parsed.config.is_some() && (!parsed.apps.is_empty() || parsed.store.is_some() || parsed.apps_dir.is_some()) {
        bail!("--config declares the stores and apps of every hub: drop --app, --store and --apps-dir\n\n{USAGE}");
    }
    if parsed.config.is_none() && parsed.apps.is_empty() {
        bail!("durable serve needs at least one --app FILE.wasm (or --config FILE.toml)\n\n{USAGE}");
    }
    Ok(parsed)
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("serve") => {
            let serve_args = parse_serve(args)?;
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?
                .block_on(serve(serve_args))
        }
        Some("bench") => crate::bench::main(args),
        Some("build") => std::process::exit(cli::build::main(args)),
        Some("help") => match args.next().as_deref().and_then(cli::find) {
            Some(command) => std::process::exit(command.run(["--help".to_owned()])),
            None => {
                print!("{USAGE}{}", cli::overview());
                Ok(())
            }
        },
        Some("-h" | "--help") | None => {
            print!("{USAGE}{}", cli::overview());
            Ok(())
        }
        Some(name) => match cli::find(name) {
            Some(command) => std::process::exit(command.run(args)),
            None => {
                eprintln!("error: unknown command {name}\n\nRun 'durable --help' for the list of commands.");
                std::process::exit(2)
            }
        },
    }
}

async fn serve(args: ServeArgs) -> Result<()> {
    let (config, state_dir) = match &args.config {
        Some(file) => {
            let config = HostConfigFile::load(file)?;
            let dir = file.parent().unwrap_or(std::path::Path::new(".")).join(".durable");
            (config, dir)
        }
        None => {
            let store = args
                .store
                .clone()
                .unwrap_or_else(|| StoreLocation::Redb(PathBuf::from(".durable/store.redb")));
            let limits = Limits {
                activity_concurrency: args.dispatch.activity_concurrency,
                ..Limits::default()
            };
            let mut hub = HubConfig::single(store.clone(), &args.apps, limits);
            let dir = match &store {
                StoreLocation::Redb(path) => path.parent().map(PathBuf::from).unwrap_or_default(),
                StoreLocation::Postgres(_) => PathBuf::from(".durable"),
            };
            if let Some(apps_dir) = &args.apps_dir {
                hub.apps_dir = apps_dir.clone();
            }
            let config = HostConfigFile {
                admin_keys: Vec::new(),
                http: HttpLimits::default(),
                host: HostLimits::default(),
                hubs: [(hub.name.clone(), hub)].into_iter().collect(),
            };
            (config, dir)
        }
    };
    let component_cache = args
        .component_cache
        .clone()
        .unwrap_or_else(|| state_dir.join("component-cache"));
    let wasm = Arc::new(WasmRuntime::new(Some(component_cache))?.with_idle_memory_bytes(config.host.idle_memory_bytes));
    let (hosting, problems) = Hosting::start(config, args.config.clone(), wasm, args.dispatch.clone()).await?;
    for problem in &problems {
        eprintln!("error: {problem}");
    }
    let mut functions = 0;
    for hub in hosting.hubs().values() {
        for app in hub.apps().deployments() {
            let names: Vec<&str> = app.app.functions.iter().map(|(name, _)| name.as_str()).collect();
            functions += names.len();
            eprintln!(
                "hub {}: app {} ({}, {}): {}",
                hub.name(),
                app.name,
                app.app.path.display(),
                &app.app.hash[..12],
                names.join(", ")
            );
        }
    }
    if args.config.is_none() && functions == 0 {
        bail!("no app could be loaded");
    }
    if !args.listen.ip().is_loopback() && hosting.has_open_hub() && !args.allow_unauthenticated {
        bail!(
            "refusing to serve a task hub without keys on {} (not a loopback address): give every hub keys in a --config file, or pass --allow-unauthenticated",
            args.listen
        );
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let address = listener.local_addr()?;
    let hosting = Arc::new(hosting);
    let reloader = tokio::spawn(reload_keys_on_sighup(hosting.clone()));
    println!("durable listening on {}", durable_http::base_url(address));
    durable_http::serve(listener, hosting.clone(), shutdown_signal()).await?;
    eprintln!("shutting down");
    reloader.abort();
    let _ = reloader.await;
    match Arc::try_unwrap(hosting) {
        Ok(hosting) => hosting.shutdown().await,
        Err(hosting) => {
            eprintln!("warning: requests still hold the host; exiting without waiting");
            hosting.close_stores().await;
        }
    }
    Ok(())
}

async fn reload_keys_on_sighup(hosting: Arc<Hosting>) {
    let Ok(mut hangup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
        return;
    };
    while hangup.recv().await.is_some() {
        match hosting.reload_keys() {
            Ok(notes) => {
                eprintln!("keys reloaded");
                for note in notes {
                    eprintln!("note: {note}");
                }
            }
            Err(error) => eprintln!("error: keys not reloaded: {error}"),
        }
    }
}

async fn shutdown_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}
