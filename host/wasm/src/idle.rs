//! The idle memory budgets: how much linear memory instances kept between calls may hold
//! together ([`IdleMemory`], one per host and one per hub), and the charge one kept
//! instance holds against both ([`IdleCharge`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A budget of the linear memory that instances kept between calls (idle activity
/// instances, live orchestrations) may hold together. The host has one, each hub one.
#[derive(Debug)]
pub struct IdleMemory {
    limit: usize,
    held: AtomicUsize,
}

impl IdleMemory {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Arc<IdleMemory> {
        Arc::new(IdleMemory {
            limit,
            held: AtomicUsize::new(0),
        })
    }

    /// The bytes held now.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// The limit, in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    fn try_take(&self, bytes: usize) -> bool {
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                held.checked_add(bytes).filter(|total| *total <= self.limit)
            })
            .is_ok()
    }

    fn give_back(&self, bytes: usize) {
        self.held.fetch_sub(bytes, Ordering::AcqRel);
    }
}

/// Bytes taken from both budgets an idle instance counts against (its hub's and the
/// host's), given back when dropped, so an instance's charge lives exactly as long as it
/// is kept.
#[derive(Debug)]
pub struct IdleCharge {
    hub: Arc<IdleMemory>,
    host: Arc<IdleMemory>,
    bytes: usize,
}

impl IdleCharge {
    /// Takes `bytes` from the hub's and the host's budget, or from neither if one cannot
    /// give them.
    pub fn take(hub: &Arc<IdleMemory>, host: &Arc<IdleMemory>, bytes: usize) -> Option<IdleCharge> {
        if !hub.try_take(bytes) {
            return None;
        }
        if !host.try_take(bytes) {
            hub.give_back(bytes);
            return None;
        }
        Some(IdleCharge {
            hub: hub.clone(),
            host: host.clone(),
            bytes,
        })
    }

    /// The bytes it holds.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for IdleCharge {
    fn drop(&mut self) {
        self.hub.give_back(self.bytes);
        self.host.give_back(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_charge_takes_from_every_budget_or_from_none_and_gives_back_on_drop() {
        let hub = IdleMemory::new(100);
        let host = IdleMemory::new(150);
        let first = IdleCharge::take(&hub, &host, 80).expect("fits both");
        assert_eq!((hub.held(), host.held()), (80, 80));
        // The hub's budget cannot give 30 more: neither budget is charged.
        assert!(IdleCharge::take(&hub, &host, 30).is_none());
        assert_eq!((hub.held(), host.held()), (80, 80));
        let other_hub = IdleMemory::new(100);
        // The host's budget cannot give 80 more, though the other hub's can.
        assert!(IdleCharge::take(&other_hub, &host, 80).is_none());
        assert_eq!((other_hub.held(), host.held()), (0, 80));
        drop(first);
        assert_eq!((hub.held(), host.held()), (0, 0));
    }
}
