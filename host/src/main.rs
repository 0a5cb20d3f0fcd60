//! `durable`: the command-line entry point of the durable host.

mod cli;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use durable_host::client::{HostConfig, TaskHub};
use durable_host::dispatch::DispatchConfig;

const USAGE: &str = "\
durable: runs Durable Functions compiled to WebAssembly components

USAGE:
    durable serve --app FILE.wasm [--app FILE.wasm ...] [--listen HOST:PORT] [--store PATH]
                  [--component-cache DIR] [--cache-size N] [--activity-concurrency N]

    --listen                 address to serve the HTTP API on (default 127.0.0.1:7071; port 0 picks one)
    --store                  redb file holding every instance (default .durable/store.redb)
    --app                    a function app component; repeat for several
    --component-cache        where compiled components are kept (default: beside the store)
    --cache-size             live orchestrations kept in memory (default 10000)
    --activity-concurrency   activities run at the same time (default 16)
";

struct ServeArgs {
    listen: SocketAddr,
    store: PathBuf,
    apps: Vec<PathBuf>,
    component_cache: Option<PathBuf>,
    dispatch: DispatchConfig,
}

fn parse_serve(mut args: impl Iterator<Item = String>) -> Result<ServeArgs> {
    let mut parsed = ServeArgs {
        listen: "127.0.0.1:7071".parse().expect("a valid default address"),
        store: PathBuf::from(".durable/store.redb"),
        apps: Vec::new(),
        component_cache: None,
        dispatch: DispatchConfig::default(),
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
            "--store" => parsed.store = PathBuf::from(value()?),
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
    if parsed.apps.is_empty() {
        bail!("durable serve needs at least one --app FILE.wasm\n\n{USAGE}");
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
    let component_cache = args.component_cache.clone().unwrap_or_else(|| {
        args.store
            .parent()
            .map(|dir| dir.join("component-cache"))
            .unwrap_or_else(|| PathBuf::from("component-cache"))
    });
    let config = HostConfig {
        store_path: args.store.clone(),
        apps: args.apps.clone(),
        component_cache: Some(component_cache),
        dispatch: args.dispatch.clone(),
    };
    let (hub, load_errors) = TaskHub::start(config)
        .await
        .with_context(|| format!("opening store {}", args.store.display()))?;
    for error in &load_errors {
        eprintln!("error: app rejected: {error}");
    }
    for app in hub.apps().all() {
        let names: Vec<&str> = app.functions.iter().map(|(name, _)| name.as_str()).collect();
        eprintln!(
            "loaded {} ({}): {}",
            app.path.display(),
            &app.hash[..12],
            names.join(", ")
        );
    }
    if hub.apps().all().is_empty() {
        bail!("no app could be loaded");
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let address = listener.local_addr()?;
    let hub = Arc::new(hub);
    println!("durable listening on {}", durable_host::http::base_url(address));
    durable_host::http::serve(listener, hub.client(), shutdown_signal()).await?;
    eprintln!("shutting down");
    match Arc::try_unwrap(hub) {
        Ok(hub) => hub.shutdown().await,
        Err(_) => eprintln!("warning: requests still hold the task hub; exiting without waiting"),
    }
    Ok(())
}

async fn shutdown_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}
