//! LISTEN/NOTIFY between the hosts of a hub.
//!
//! A commit that makes instances of another host's partitions ready, or that any other host
//! may be waiting on, sends a notification on the hub's channel; every host listens on a
//! connection of its own. A notification wakes the host's waiters (the commit counter) and
//! hands the instances it owns to its engine. After a lost connection the listener
//! reconnects and hands over everything pending in its partitions, since notifications sent
//! meanwhile are gone.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_postgres::AsyncMessage;

use super::{Shared, describe};
use crate::StoreEvent;

/// The largest payload PostgreSQL takes is 8000 bytes; ids go in chunks below it.
const PAYLOAD_BYTES: usize = 7000;

/// One notification.
#[derive(Serialize, Deserialize, Default)]
struct Payload {
    /// The sending host.
    h: String,
    /// Instances and entities with new messages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    r: Vec<String>,
    /// The sender gave partitions back: take them now rather than at the next round.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    released: bool,
    /// The sender changed the hub's apps.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    apps: bool,
}

/// The notifications announcing a commit that made `ready` ready (possibly none).
pub(crate) fn payloads(host_id: &str, ready: &[&str]) -> Vec<String> {
    let mut payloads = Vec::new();
    let mut chunk: Vec<&str> = Vec::new();
    let mut bytes = 0;
    for id in ready {
        if bytes + id.len() + 4 > PAYLOAD_BYTES && !chunk.is_empty() {
            payloads.push(encode(host_id, std::mem::take(&mut chunk)));
            bytes = 0;
        }
        bytes += id.len() + 4;
        chunk.push(id);
    }
    if !chunk.is_empty() || payloads.is_empty() {
        payloads.push(encode(host_id, chunk));
    }
    payloads
}

/// The notification that the sender changed the hub's apps.
pub(crate) fn apps_payload(host_id: &str) -> String {
    Payload {
        apps: true,
        ..Payload::from(host_id)
    }
    .encode()
}

/// The notification that the sender gave partitions back.
pub(crate) fn released_payload(host_id: &str) -> String {
    Payload {
        released: true,
        ..Payload::from(host_id)
    }
    .encode()
}

fn encode(host_id: &str, ready: Vec<&str>) -> String {
    Payload {
        r: ready.into_iter().map(str::to_owned).collect(),
        ..Payload::from(host_id)
    }
    .encode()
}

impl Payload {
    /// A notification from `host_id` that says nothing yet.
    fn from(host_id: &str) -> Payload {
        Payload {
            h: host_id.to_owned(),
            ..Payload::default()
        }
    }

    fn encode(self) -> String {
        serde_json::to_string(&self).expect("payloads serialize")
    }
}

/// Listens until the store closes, reconnecting after a lost connection.
pub(crate) async fn run(shared: Arc<Shared>, config: tokio_postgres::Config) {
    let mut first = true;
    loop {
        if shared.closed.load(Ordering::Acquire) {
            return;
        }
        match listen(&shared, &config, first).await {
            Ok(()) => {}
            Err(error) => eprintln!("warning: listening for other hosts failed, reconnecting: {error}"),
        }
        first = false;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn listen(shared: &Shared, config: &tokio_postgres::Config, first: bool) -> Result<(), String> {
    let (client, mut connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(|error| describe(&error))?;
    let (messages_tx, mut messages) = tokio::sync::mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(message)) => {
                    if messages_tx.send(message).is_err() {
                        return;
                    }
                }
                Some(Err(error)) => {
                    eprintln!("warning: notification connection: {}", describe(&error));
                    return;
                }
                None => return,
            }
        }
    });
    let listening = client
        .batch_execute(&format!("LISTEN {}", shared.sql.channel))
        .await
        .map_err(|error| describe(&error));
    if let Err(error) = listening {
        driver.abort();
        return Err(error);
    }
    // Whatever was announced before this host listened (also between the engine's first
    // read of its work and this LISTEN) is still in its tables.
    super::leases::sweep(shared).await;
    shared.commits.send_modify(|count| *count += 1);
    if !first {
        shared.apps.send_modify(|count| *count += 1);
    }
    while let Some(message) = messages.recv().await {
        let AsyncMessage::Notification(notification) = message else {
            continue;
        };
        let Ok(payload) = serde_json::from_str::<Payload>(notification.payload()) else {
            continue;
        };
        if payload.h == shared.host_id {
            continue;
        }
        if payload.released {
            shared.lease_wake.notify_one();
        }
        if payload.apps {
            shared.apps.send_modify(|count| *count += 1);
        }
        let mine: Vec<String> = payload.r.iter().filter(|id| shared.owns(id)).cloned().collect();
        if !mine.is_empty() {
            let _ = shared.events.send(StoreEvent::Ready(mine));
        }
        shared.commits.send_modify(|count| *count += 1);
    }
    driver.abort();
    drop(client);
    Err("the notification connection closed".into())
}
