//! `raftian bench wire`: in-process CPU cost of the XML-RPC encoding.

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

/// What a hand-written encoder would cost: the same bytes as
/// `wire::call_body(rpc_params(append_entries_rpc))` for int commands, built
/// with `write!` (a measurement aid, not used by the nodes).
fn hand_encode_append(a: &crate::raft::AppendEntries) -> Option<String> {
    use crate::raft::Command;
    let mut o = String::with_capacity(64 + 200 * a.entries.as_ref().map_or(0, Vec::len));
    o.push_str("<?xml version='1.0'?>\n<methodCall><methodName>append_entries_rpc</methodName><params><param>");
    match &a.entries {
        None => o.push_str("<value><nil></nil></value>"),
        Some(es) => {
            o.push_str("<value><array><data>");
            for e in es {
                let Command::Int(c) = e.command else {
                    return None;
                };
                let _ = write!(
                    o,
                    "<value><struct><member><name>command</name><value><int>{c}</int></value></member><member><name>index</name><value>"
                );
                match e.index {
                    Some(i) => {
                        let _ = write!(o, "<int>{i}</int>");
                    }
                    None => o.push_str("<nil></nil>"),
                }
                let _ = write!(
                    o,
                    "</value></member><member><name>term</name><value><int>{}</int></value></member></struct></value>",
                    e.term
                );
            }
            o.push_str("</data></array></value>");
        }
    }
    let _ = write!(
        o,
        "</param><param><value><int>{}</int></value></param><param>",
        a.term
    );
    match a.commit_index {
        Some(c) => {
            let _ = write!(o, "<value><int>{c}</int></value>");
        }
        None => o.push_str("<value><nil></nil></value>"),
    }
    let _ = writeln!(
        o,
        "</param><param><value><boolean>{}</boolean></value></param></params></methodCall>",
        u8::from(a.all_log)
    );
    Some(o)
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
        "| message | entries | encode us | decode us | encode+decode us per entry | hand-written encode us (same bytes) | body bytes |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|---|");
    let click = wire::call_body("bench_click", vec![Value::Integer(1_000_123)])?;
    let enc = time_per_call(a.secs, || {
        wire::call_body("bench_click", vec![Value::Integer(1_000_123)]).map(|_| ())
    })?;
    let dec = time_per_call(a.secs, || parse_call(&click).map(|_| ()))?;
    let _ = writeln!(
        o,
        "| bench_click(tag) | 1 | {enc:.1} | {dec:.1} | {:.1} | - | {} |",
        enc + dec,
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
                    })
                    .collect(),
            ),
            term: 3,
            commit_index: Some(99_999),
            all_log: false,
        });
        let body = wire::rpc_params(&rpc).and_then(|p| wire::call_body(rpc.method(), p))?;
        let Rpc::AppendEntries(ae) = &rpc else {
            unreachable!()
        };
        let hand = hand_encode_append(ae);
        let hand_us = if hand.as_deref() == Some(body.as_str()) {
            Some(time_per_call(a.secs, || {
                hand_encode_append(ae).map(|_| ()).ok_or_else(String::new)
            })?)
        } else {
            eprintln!("bench wire: the hand-written encoder does not give wire's bytes; not timed");
            None
        };
        let enc = time_per_call(a.secs, || {
            wire::rpc_params(&rpc)
                .and_then(|p| wire::call_body(rpc.method(), p))
                .map(|_| ())
        })?;
        let dec = time_per_call(a.secs, || {
            let params = parse_call(&body)?;
            wire::append_from_params(&params)
                .map(|_| ())
                .map_err(|f| f.string().to_owned())
        })?;
        let _ = writeln!(
            o,
            "| append_entries_rpc | {n} | {enc:.1} | {dec:.1} | {:.2} | {} | {} |",
            (enc + dec) / n as f64,
            hand_us.map_or("-".into(), |h| format!("{h:.1}")),
            body.len()
        );
    }
    let reply = "<?xml version='1.0'?>\n<methodResponse><params><param><value><array><data><value><boolean>1</boolean></value><value><int>3</int></value></data></array></value></param></params></methodResponse>\n";
    let dec = time_per_call(a.secs, || wire::parse_response(reply).map(|_| ()))?;
    let _ = writeln!(
        o,
        "| [success, term] reply | - | - | {dec:.1} | - | - | {} |",
        reply.len()
    );
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_encoder_gives_the_wire_bytes() {
        use crate::raft::{AppendEntries, Command, Rpc, WireEntry};
        for (entries, commit, all_log) in [
            (None, None, false),
            (Some(vec![]), Some(0), true),
            (
                Some(vec![
                    WireEntry {
                        term: 2,
                        index: Some(7),
                        command: Command::Int(-3),
                    },
                    WireEntry {
                        term: 2,
                        index: None,
                        command: Command::Int(1_000_000),
                    },
                ]),
                Some(6),
                false,
            ),
        ] {
            let a = AppendEntries {
                entries,
                term: 2,
                commit_index: commit,
                all_log,
            };
            let rpc = Rpc::AppendEntries(a.clone());
            let body = wire::rpc_params(&rpc)
                .and_then(|p| wire::call_body(rpc.method(), p))
                .unwrap();
            assert_eq!(hand_encode_append(&a).as_deref(), Some(body.as_str()));
        }
        let text = AppendEntries {
            entries: Some(vec![WireEntry {
                term: 1,
                index: Some(0),
                command: Command::Text("x".into()),
            }]),
            term: 1,
            commit_index: None,
            all_log: false,
        };
        assert_eq!(hand_encode_append(&text), None);
    }
}
