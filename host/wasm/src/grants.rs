//! What an app's activities are granted beyond computing ([`ActivityGrants`],
//! [`DirGrant`]) and how it is enforced: the activity's WASI ([`activity_wasi`]) and the
//! outbound HTTP allowlist ([`HttpPolicy`]).

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use http_body_util::BodyExt;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder};
use wasmtime_wasi_http::WasiHttpHooks;

use crate::stderr::CapturedOutput;

/// A host directory an app's activities may open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirGrant {
    /// The directory on the host.
    pub host: PathBuf,
    /// Where the guest sees it (a preopen, e.g. `/data`).
    pub guest: String,
    /// Whether the guest may only read it.
    pub read_only: bool,
}

/// What an app's activities get beyond computing; everything else is denied. Orchestrators
/// and entities get none of it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ActivityGrants {
    /// Authorities outbound `wasi:http` requests may go to: `host` or `host:port`, compared
    /// case-insensitively with the request's host and port (a missing port is the scheme's
    /// default: 80 for http, 443 for https). Other requests fail with `HTTP-request-denied`.
    /// No other sockets are available.
    pub allowed_hosts: Vec<String>,
    /// The environment variables the guest sees (none of the host's).
    pub env: Vec<(String, String)>,
    /// The directories the guest may open (no others).
    pub dirs: Vec<DirGrant>,
}

/// Outbound HTTP: only to the allow-listed authorities, through the default sender.
pub(crate) struct HttpPolicy {
    pub(crate) allowed_hosts: Arc<[String]>,
}

impl HttpPolicy {
    fn allows(&self, uri: &hyper::Uri) -> bool {
        let Some(authority) = uri.authority() else {
            return false;
        };
        let default_port = if uri.scheme() == Some(&hyper::http::uri::Scheme::HTTPS) {
            443
        } else {
            80
        };
        let port = authority.port_u16().unwrap_or(default_port);
        self.allowed_hosts.iter().any(|allowed| {
            allowed.parse::<hyper::http::uri::Authority>().is_ok_and(|allowed| {
                allowed.host().eq_ignore_ascii_case(authority.host())
                    && allowed.port_u16().unwrap_or(default_port) == port
            })
        })
    }
}

/// What `WasiHttpHooks::send_request` returns.
type SendRequestFuture = Box<
    dyn Future<
            Output = wasmtime_wasi_http::Result<(
                hyper::Response<wasmtime_wasi_http::WasiBody>,
                Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
            )>,
        > + Send,
>;

impl WasiHttpHooks for HttpPolicy {
    fn send_request(
        &mut self,
        request: hyper::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        _response_done: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> SendRequestFuture {
        if !self.allows(request.uri()) {
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        Box::new(async move {
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
            ))
        })
    }
}

/// The WASI of an activity: the granted environment and directories, stdout and stderr
/// (echoed to the host's; stderr's tail also explains traps), no sockets (outbound HTTP
/// goes through wasi:http and its allowlist).
pub(crate) fn activity_wasi(grants: &ActivityGrants, stderr: CapturedOutput) -> wasmtime::Result<WasiCtx> {
    let mut builder = WasiCtxBuilder::new();
    builder
        .inherit_stdout()
        .stderr(stderr)
        .envs(&grants.env)
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
    for dir in &grants.dirs {
        let perms = if dir.read_only {
            FsPerms::ReadOnly
        } else {
            FsPerms::ReadWrite
        };
        builder
            .preopened_dir(&dir.host, &dir.guest, perms)
            .map_err(|error| wasmtime::format_err!("directory {}: {error:#}", dir.host.display()))?;
    }
    Ok(builder.build())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allowed: &[&str]) -> HttpPolicy {
        HttpPolicy {
            allowed_hosts: allowed.iter().map(|host| host.to_string()).collect(),
        }
    }

    fn allows(policy: &HttpPolicy, uri: &str) -> bool {
        policy.allows(&uri.parse().expect("a URI"))
    }

    #[test]
    fn http_allowlist_matches_host_and_port_case_insensitively() {
        let policy = policy(&["api.example.com", "127.0.0.1:8080"]);
        assert!(allows(&policy, "https://API.Example.com/x"));
        assert!(allows(&policy, "https://api.example.com:443/x"));
        assert!(allows(&policy, "http://api.example.com/x"));
        assert!(!allows(&policy, "https://api.example.com:8443/x"));
        assert!(!allows(&policy, "https://evil.api.example.com/x"));
        assert!(!allows(&policy, "https://api.example.com.evil/x"));
        assert!(allows(&policy, "http://127.0.0.1:8080/"));
        assert!(!allows(&policy, "http://127.0.0.1/"));
        assert!(!allows(&policy, "http://127.0.0.1:8081/"));
        assert!(!allows(&policy, "/no/authority"));
        assert!(!allows(&self::policy(&[]), "http://127.0.0.1:8080/"));
    }
}
