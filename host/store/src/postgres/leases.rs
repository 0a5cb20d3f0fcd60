//! Partition leases: which host steps which instances.
//!
//! Every host runs [`run`]: each round it records its heartbeat, renews the leases it holds,
//! counts the live hosts, gives back partitions above its fair share (rounded up) and takes
//! free or expired ones below it. A lease taken gets a new epoch; the store's fencing
//! compares it inside every step's transaction. A host that stops gracefully gives all its
//! partitions back at once and says so, so the others take them in their next round
//! instead of after the lease.
//!
//! Invariants (ARCHITECTURE.md, "Several hosts"):
//! - a partition row names at most one owner, and its epoch grows with every acquisition;
//! - a host steps a partition's instances only while its map holds that partition, and
//!   commits a step only if the row still has its (owner, epoch), under a share lock;
//! - a lease is taken from another host only once expired (or given back), so a live host
//!   that keeps renewing keeps its partitions and its live-instance cache.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use deadpool_postgres::GenericClient;

use super::{Shared, pg_error};
use crate::{StoreError, StoreEvent};

/// How long between rounds: often enough that a dead host's partitions are taken within
/// the lease plus a second, and a renewal never comes late.
fn round_interval(lease: Duration) -> Duration {
    (lease / 10).clamp(Duration::from_millis(100), Duration::from_secs(1))
}

/// Hands the engine every instance of this host's partitions that has inbox messages. A
/// safety net under the notifications: a message committed by a host that still believed it
/// owned the partition (it had lost it and did not know yet) notifies nobody.
pub(crate) async fn sweep(shared: &Shared) {
    let owned: Vec<u32> = shared.owned.read().expect("lease map").keys().copied().collect();
    match shared.pending(&owned).await {
        Ok(pending) => {
            if !pending.ready.is_empty() {
                let _ = shared.events.send(StoreEvent::Ready(pending.ready));
            }
        }
        Err(error) => eprintln!("warning: reading pending work failed: {error}"),
    }
}

/// Renews and rebalances leases until the store closes; sweeps once per lease.
pub(crate) async fn run(shared: Arc<Shared>) {
    let interval = round_interval(shared.location.lease);
    let mut last_sweep = tokio::time::Instant::now();
    loop {
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = shared.lease_wake.notified() => {}
        }
        if shared.closed.load(Ordering::Acquire) {
            return;
        }
        if let Err(error) = round(&shared, true).await {
            eprintln!("warning: lease round failed: {error}");
        }
        if last_sweep.elapsed() >= shared.location.lease {
            last_sweep = tokio::time::Instant::now();
            sweep(&shared).await;
        }
    }
}

/// One round; with `announce`, partitions taken are sent to the engine as
/// [`StoreEvent::Gained`] with what is pending in them.
pub(crate) async fn round(shared: &Shared, announce: bool) -> Result<(), StoreError> {
    let lease_seconds = shared.location.lease.as_secs_f64();
    let client = shared.client().await?;
    let sql = &shared.sql;
    client
        .execute(&sql.heartbeat, &[&shared.host_id])
        .await
        .map_err(pg_error)?;
    let held: Vec<(i32, i64)> = {
        let owned = shared.owned.read().expect("lease map");
        owned.iter().map(|(id, epoch)| (*id as i32, *epoch)).collect()
    };
    let held_ids: Vec<i32> = held.iter().map(|(id, _)| *id).collect();
    let renewed: HashMap<i32, i64> = client
        .query(&sql.renew, &[&shared.host_id, &lease_seconds, &held_ids])
        .await
        .map_err(pg_error)?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let lost: Vec<i32> = held
        .iter()
        .filter(|(id, epoch)| renewed.get(id) != Some(epoch))
        .map(|(id, _)| *id)
        .collect();
    if !lost.is_empty() {
        let mut owned = shared.owned.write().expect("lease map");
        for id in &lost {
            owned.remove(&(*id as u32));
        }
        eprintln!(
            "warning: host {} lost partitions {lost:?} to another host",
            shared.host_id
        );
    }

    let live: i64 = client
        .query_one(&sql.live_hosts, &[&lease_seconds])
        .await
        .map_err(pg_error)?
        .get(0);
    let share = (shared.partitions as usize).div_ceil(live.max(1) as usize);
    let holding = shared.owned.read().expect("lease map").len();
    if holding > share {
        release_some(shared, &client, holding - share).await?;
    } else if holding < share {
        let held_ids: Vec<i32> = shared
            .owned
            .read()
            .expect("lease map")
            .keys()
            .map(|id| *id as i32)
            .collect();
        let wanted = (share - holding) as i64;
        let taken: Vec<(i32, i64)> = client
            .query(&sql.acquire, &[&shared.host_id, &lease_seconds, &held_ids, &wanted])
            .await
            .map_err(pg_error)?
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect();
        if !taken.is_empty() {
            {
                let mut owned = shared.owned.write().expect("lease map");
                for (id, epoch) in &taken {
                    owned.insert(*id as u32, *epoch);
                }
            }
            if announce {
                let partitions: Vec<u32> = taken.iter().map(|(id, _)| *id as u32).collect();
                let pending = shared.pending(&partitions).await?;
                let _ = shared.events.send(StoreEvent::Gained(pending));
            }
        }
    }
    if rand_percent() == 0 {
        client.execute(&sql.forget_hosts, &[]).await.map_err(pg_error)?;
    }
    Ok(())
}

/// Gives back `count` partitions (the highest-numbered) to hosts below their share.
async fn release_some(shared: &Shared, client: &impl GenericClient, count: usize) -> Result<(), StoreError> {
    let released: Vec<i32> = {
        let mut owned = shared.owned.write().expect("lease map");
        let mut ids: Vec<u32> = owned.keys().copied().collect();
        ids.sort_unstable();
        let released: Vec<u32> = ids.into_iter().rev().take(count).collect();
        // Out of the map first: from now on this host's steps of them are fenced, and the
        // share lock of one in flight makes the release wait for its commit.
        for id in &released {
            owned.remove(id);
        }
        released.into_iter().map(|id| id as i32).collect()
    };
    client
        .execute(&shared.sql.release, &[&shared.host_id, &released])
        .await
        .map_err(pg_error)?;
    announce_release(shared, client).await
}

/// Gives back every partition and leaves the host table: a graceful stop.
pub(crate) async fn release_all(shared: &Shared) -> Result<(), StoreError> {
    shared.owned.write().expect("lease map").clear();
    let client = shared.client().await?;
    client
        .execute(&shared.sql.release_all, &[&shared.host_id])
        .await
        .map_err(pg_error)?;
    client
        .execute(&shared.sql.leave, &[&shared.host_id])
        .await
        .map_err(pg_error)?;
    announce_release(shared, &client).await
}

async fn announce_release(shared: &Shared, client: &impl GenericClient) -> Result<(), StoreError> {
    let payload = super::listener::released_payload(&shared.host_id);
    client
        .execute(&shared.sql.notify, &[&shared.sql.channel, &payload])
        .await
        .map_err(pg_error)?;
    Ok(())
}

/// A number in 0..100 that differs from round to round (housekeeping one round in ~100).
fn rand_percent() -> u32 {
    uuid::Uuid::new_v4().as_bytes()[0] as u32 % 100
}
