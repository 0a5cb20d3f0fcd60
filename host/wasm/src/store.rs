//! A guest's store: its per-store state ([`HostState`]: WASI, `wasi:http`, its memory and
//! its running call's budget) and how the runtime makes one.

use std::time::Instant;

use wasmtime::Store;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::grants::HttpPolicy;
use crate::limits::{self, CallDeadline, GuestLimits, MemoryLimiter};
use crate::runtime::WasmRuntime;

/// Per-store state: WASI, `wasi:http`, limits and the running call's budget.
pub struct HostState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    http_policy: HttpPolicy,
    table: ResourceTable,
    pub(crate) memory: MemoryLimiter,
    pub(crate) deadline: CallDeadline,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.http_policy,
        }
    }
}

impl WasmRuntime {
    /// A store whose guest may send HTTP to `allowed_hosts`, with `limits`' memory, that
    /// yields to the executor at every epoch tick and traps once its call's budget (see
    /// [`begin_call`](crate::limits::begin_call)) has elapsed.
    pub(crate) fn new_store(&self, wasi: WasiCtx, allowed_hosts: &[String], limits: &GuestLimits) -> Store<HostState> {
        let mut store = Store::new(
            &self.engine,
            HostState {
                wasi,
                http: WasiHttpCtx::new(),
                http_policy: HttpPolicy {
                    allowed_hosts: allowed_hosts.into(),
                },
                table: ResourceTable::new(),
                memory: MemoryLimiter {
                    limit: limits.memory_bytes,
                    total: 0,
                    exceeded: false,
                },
                deadline: CallDeadline {
                    started: Instant::now(),
                    budget: limits.call_timeout,
                    exceeded: false,
                },
            },
        );
        limits::enforce(&mut store);
        store
    }
}
