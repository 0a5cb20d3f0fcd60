//! Hostile guests for the sandbox end-to-end tests: orchestrators and activities that spin,
//! exhaust memory or the stack, trap, return too much or too deeply nested JSON, or reach
//! for files, environment, network and the real clock. The host must fail only what
//! misbehaves.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use durable_sdk::{Error, OrchestrationContext};
use serde_json::{Value, json};

/// Loops forever without awaiting anything.
async fn spin_forever(_ctx: OrchestrationContext) -> Result<(), Error> {
    spin()
}

/// Allocates (and touches) memory until it runs out.
async fn grow_memory(_ctx: OrchestrationContext) -> Result<(), Error> {
    hog()
}

/// Recurses until the stack runs out.
async fn deep_recursion(_ctx: OrchestrationContext) -> Result<u64, Error> {
    Ok(recurse(0))
}

/// Not a tail call, and `black_box` keeps the optimiser from turning it into a loop.
fn recurse(depth: u64) -> u64 {
    if black_box(depth) == u64::MAX {
        return 0;
    }
    black_box(recurse(depth + 1)) + 1
}

/// Calls an activity, then panics in the next episode.
async fn trap_mid_step(ctx: OrchestrationContext) -> Result<(), Error> {
    let _: String = ctx.call_activity("Echo", "before the trap").await?;
    panic!("TrapMidStep panics after its activity");
}

/// Input `n`: returns a string of `n` bytes.
async fn huge_output(ctx: OrchestrationContext) -> Result<String, Error> {
    let n: usize = ctx.get_input()?;
    Ok("x".repeat(n))
}

/// Input `n`: returns a JSON array nested `n` levels deep.
async fn deep_output(ctx: OrchestrationContext) -> Result<Value, Error> {
    Ok(nested(ctx.get_input()?))
}

/// `[[...[1]...]]`, `levels` deep.
fn nested(levels: usize) -> Value {
    (0..levels).fold(json!(1), |inner, _| Value::Array(vec![inner]))
}

/// Reads the real clock API before and after a timer of `input` milliseconds, next to the
/// orchestration time, all in milliseconds since the epoch.
async fn wall_clock(ctx: OrchestrationContext) -> Result<Value, Error> {
    let delay: u64 = ctx.get_input()?;
    let clock_before = millis(SystemTime::now())?;
    let context_before = millis(ctx.current_utc_datetime())?;
    ctx.create_timer(ctx.current_utc_datetime() + Duration::from_millis(delay))
        .await?;
    let clock_after = millis(SystemTime::now())?;
    let context_after = millis(ctx.current_utc_datetime())?;
    Ok(json!({
        "clockBefore": clock_before,
        "contextBefore": context_before,
        "clockAfter": clock_after,
        "contextAfter": context_after,
    }))
}

fn millis(time: SystemTime) -> Result<u64, Error> {
    Ok(time.duration_since(UNIX_EPOCH).map_err(Error::msg)?.as_millis() as u64)
}

/// Input `{"name": activity, "input": its input}`: returns `{"ok": its result}` or
/// `{"error": its failure message}`.
async fn call_activity(ctx: OrchestrationContext) -> Result<Value, Error> {
    let call: Value = ctx.get_input()?;
    let name = call["name"].as_str().ok_or_else(|| Error::msg("no name"))?;
    match ctx.call_activity::<Value>(name, &call["input"]).await {
        Ok(result) => Ok(json!({ "ok": result })),
        Err(error) => Ok(json!({ "error": error.message() })),
    }
}

/// Returns its input.
fn echo(input: String) -> Result<String, Error> {
    Ok(input)
}

/// Input `n`: returns a JSON array nested `n` levels deep.
fn deep_result(levels: usize) -> Result<Value, Error> {
    Ok(nested(levels))
}

/// Loops forever.
fn spin() -> Result<(), Error> {
    let mut count: u64 = 0;
    loop {
        count = black_box(count.wrapping_add(1));
    }
}

/// Allocates memory without end.
fn hog() -> Result<(), Error> {
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    loop {
        blocks.push(vec![1; 1 << 20]);
        black_box(&blocks);
    }
}

/// Input `mib`: allocates and writes that many MiB, then frees them. The wasm instance's
/// linear memory stays grown (it never shrinks), so the instance keeps the pages.
fn touch(mib: usize) -> Result<usize, Error> {
    let mut block = vec![0u8; mib << 20];
    for page in block.chunks_mut(4096) {
        page[0] = 1;
    }
    Ok(black_box(block).iter().step_by(4096).map(|byte| *byte as usize).sum())
}

/// Input `{"count": n, "mib": m}`: runs `n` `Touch` activities of `m` MiB at once.
async fn touch_many(ctx: OrchestrationContext) -> Result<usize, Error> {
    let input: Value = ctx.get_input()?;
    let count = input["count"].as_u64().unwrap_or(0);
    let mib = input["mib"].as_u64().unwrap_or(0);
    let tasks = (0..count).map(|_| ctx.call_activity::<usize>("Touch", mib));
    let pages: Vec<usize> = durable_sdk::task_all(tasks).await?;
    Ok(pages.into_iter().sum())
}

/// Input `mib`: touches that many MiB in its own instance, then waits for "go".
async fn grow_then_wait(ctx: OrchestrationContext) -> Result<usize, Error> {
    let mib: usize = ctx.get_input()?;
    let pages = touch(mib)?;
    ctx.wait_for_external_event::<Value>("go").await?;
    Ok(pages)
}

/// Input a path: its contents, or fails with the error.
fn read_file(path: String) -> Result<String, Error> {
    std::fs::read_to_string(&path).map_err(|error| Error::msg(format!("{path}: {error}")))
}

/// Every environment variable the activity sees.
fn read_env() -> Result<BTreeMap<String, String>, Error> {
    Ok(std::env::vars().collect())
}

/// Input an `http://` or `https://` URL: GETs it through wasi:http and returns
/// `{"status": .., "body": ..}`, or fails with the error.
fn fetch(url: String) -> Result<Value, Error> {
    use wasi::http::outgoing_handler;
    use wasi::http::types::{Fields, Method, OutgoingRequest, Scheme};
    use wasi::io::streams::StreamError;

    let (scheme, rest) = if let Some(rest) = url.strip_prefix("http://") {
        (Scheme::Http, rest)
    } else if let Some(rest) = url.strip_prefix("https://") {
        (Scheme::Https, rest)
    } else {
        return Err(Error::msg(format!("not an http(s) URL: {url}")));
    };
    let (authority, path) = match rest.find('/') {
        Some(slash) => (&rest[..slash], &rest[slash..]),
        None => (rest, "/"),
    };
    let request = OutgoingRequest::new(Fields::new());
    let fail = |what: &str| Error::msg(format!("{url}: {what}"));
    request.set_method(&Method::Get).map_err(|()| fail("bad method"))?;
    request.set_scheme(Some(&scheme)).map_err(|()| fail("bad scheme"))?;
    request
        .set_authority(Some(authority))
        .map_err(|()| fail("bad authority"))?;
    request.set_path_with_query(Some(path)).map_err(|()| fail("bad path"))?;
    let future = outgoing_handler::handle(request, None).map_err(|code| fail(&format!("{code:?}")))?;
    future.subscribe().block();
    let response = future
        .get()
        .ok_or_else(|| fail("no response"))?
        .map_err(|()| fail("response taken twice"))?
        .map_err(|code| fail(&format!("{code:?}")))?;
    let status = response.status();
    let body = response.consume().map_err(|()| fail("no body"))?;
    let stream = body.stream().map_err(|()| fail("no body stream"))?;
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => bytes.extend(chunk),
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(error)) => return Err(fail(&error.to_debug_string())),
        }
    }
    Ok(json!({ "status": status, "body": String::from_utf8_lossy(&bytes) }))
}

durable_sdk::export! {
    orchestrators: {
        "SpinForever" => spin_forever,
        "GrowMemory" => grow_memory,
        "DeepRecursion" => deep_recursion,
        "TrapMidStep" => trap_mid_step,
        "HugeOutput" => huge_output,
        "WallClock" => wall_clock,
        "CallActivity" => call_activity,
        "TouchMany" => touch_many,
        "GrowThenWait" => grow_then_wait,
        "DeepOutput" => deep_output,
    },
    activities: {
        "Echo" => echo,
        "DeepResult" => deep_result,
        "Spin" => spin,
        "Hog" => hog,
        "ReadFile" => read_file,
        "ReadEnv" => read_env,
        "Fetch" => fetch,
        "Touch" => touch,
    },
}
