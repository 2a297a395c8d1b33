//! `raftian bench wire`: in-process CPU cost of the XML-RPC encoding, and of
//! decoding by dxr (the codec of record) against `wire::fast` (what nodes use).

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use dxr::Value;

use super::WireArgs;
use crate::wire;

/// Run `f` repeatedly for about `secs`; microseconds per call.
fn time_per_call(secs: f64, mut f: impl FnMut() -> Result<(), String>) -> Result<f64, String> {
    f()?;
    let budget = Duration::from_secs_f64(secs);
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget || n < 3 {
        f()?;
        n += 1;
    }
    Ok(start.elapsed().as_secs_f64() * 1e6 / n as f64)
}

pub(super) fn wire_bench(a: &WireArgs) -> Result<String, String> {
    use crate::raft::{AppendEntries, Command, Rpc, WireEntry};
    if !(a.secs > 0.0 && a.secs.is_finite()) || a.sizes.contains(&0) {
        return Err("--secs must be positive and --sizes at least 1".into());
    }
    let parse_call = |body: &str| -> Result<Vec<Value>, String> {
        dxr::MethodCall::from_xml(body)
            .map(|c| c.params)
            .map_err(|e| e.to_string())
    };
    let mut o = String::new();
    let _ = writeln!(
        o,
        "## raftian bench wire\n\nIn-process cost of the XML-RPC layer (dxr + quick-xml), one core.\n"
    );
    let _ = writeln!(
        o,
        "| message | entries | dxr encode us | dxr decode us | dxr encode+decode us per entry | wire::rpc_body encode us (same bytes; what nodes send) | wire::fast decode us (same values; what nodes read) | dxr/fast decode | body bytes |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|---|---|---|");
    let click = wire::call_body("bench_click", vec![Value::Integer(1_000_123)])?;
    let enc = time_per_call(a.secs, || {
        wire::call_body("bench_click", vec![Value::Integer(1_000_123)]).map(|_| ())
    })?;
    let dec = time_per_call(a.secs, || parse_call(&click).map(|_| ()))?;
    if wire::fast::scalar_call(&click).map(|(_, p)| p) != Some(parse_call(&click)?) {
        return Err("wire::fast does not read bench_click as dxr does".into());
    }
    let fdec = time_per_call(a.secs, || {
        wire::fast::scalar_call(&click)
            .map(|_| ())
            .ok_or_else(|| "declined".to_owned())
    })?;
    let _ = writeln!(
        o,
        "| bench_click(tag) | 1 | {enc:.1} | {dec:.1} | {:.1} | - | {fdec:.2} | {:.0}x | {} |",
        enc + dec,
        dec / fdec,
        click.len()
    );
    for &n in &a.sizes {
        let rpc = Rpc::AppendEntries(AppendEntries {
            entries: Some(
                (0..n)
                    .map(|i| WireEntry {
                        term: 3,
                        index: Some(100_000 + i as u64),
                        command: Command::Int(1_000_000 + i as i32),
                        client: None,
                        sig: None,
                    })
                    .collect(),
            ),
            term: 3,
            commit_index: Some(99_999),
            all_log: false,
            proof: None,
        });
        let body = wire::rpc_params(&rpc).and_then(|p| wire::call_body(rpc.method(), p))?;
        if wire::rpc_body(&rpc)? != body {
            return Err("wire::rpc_body does not give call_body's bytes".into());
        }
        let fast = time_per_call(a.secs, || wire::rpc_body(&rpc).map(|_| ()))?;
        let enc = time_per_call(a.secs, || {
            wire::rpc_params(&rpc)
                .and_then(|p| wire::call_body(rpc.method(), p))
                .map(|_| ())
        })?;
        let dxr_decode = |body: &str| -> Result<AppendEntries, String> {
            wire::append_from_params(&parse_call(body)?).map_err(|f| f.string().to_owned())
        };
        let dec = time_per_call(a.secs, || dxr_decode(&body).map(|_| ()))?;
        if wire::fast::append_call(&body) != Some(dxr_decode(&body)?) {
            return Err("wire::fast does not read the append as dxr does".into());
        }
        let fdec = time_per_call(a.secs, || {
            wire::fast::append_call(&body)
                .map(|_| ())
                .ok_or_else(|| "declined".to_owned())
        })?;
        let _ = writeln!(
            o,
            "| append_entries_rpc | {n} | {enc:.1} | {dec:.1} | {:.2} | {fast:.2} | {fdec:.2} | {:.0}x | {} |",
            (enc + dec) / n as f64,
            dec / fdec,
            body.len()
        );
    }
    let reply = "<?xml version='1.0'?>\n<methodResponse><params><param><value><array><data><value><boolean>1</boolean></value><value><int>3</int></value></data></array></value></param></params></methodResponse>\n";
    let dec = time_per_call(a.secs, || wire::parse_response_dxr(reply).map(|_| ()))?;
    if wire::parse_response_dxr(reply)? != Ok(wire::fast::response(reply).ok_or("declined")?) {
        return Err("wire::fast does not read the reply as dxr does".into());
    }
    let fdec = time_per_call(a.secs, || {
        wire::fast::response(reply)
            .map(|_| ())
            .ok_or_else(|| "declined".to_owned())
    })?;
    let _ = writeln!(
        o,
        "| [success, term] reply | - | - | {dec:.1} | - | - | {fdec:.2} | {:.0}x | {} |",
        dec / fdec,
        reply.len()
    );
    Ok(o)
}
