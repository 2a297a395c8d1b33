//! The click generator: open loop, pipelined HTTP/1.1 keep-alive connections.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use dxr::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use crate::cli::rpc::RpcClient;

#[derive(Clone, Copy, Debug, Default)]
pub(super) struct GenResult {
    pub(super) sent: usize,
    pub(super) ok: usize,
    pub(super) faults: usize,
}

fn click_request(host: &str, tag: i32, out: &mut Vec<u8>) {
    let body = format!(
        "<?xml version='1.0'?>\n<methodCall><methodName>bench_click</methodName><params><param><value><int>{tag}</int></value></param></params></methodCall>\n"
    );
    let _ = write!(
        VecWriter(out),
        "POST /RPC2 HTTP/1.1\r\nHost: {host}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
}

/// `fmt::Write` into a byte buffer.
struct VecWriter<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for VecWriter<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn content_length(head: &[u8]) -> Result<usize, String> {
    let head = String::from_utf8_lossy(head);
    let mut lines = head.lines();
    let status = lines.next().unwrap_or_default();
    if !status.starts_with("HTTP/1.1 200") {
        return Err(format!("bench_click answered '{status}'"));
    }
    for line in lines {
        if let Some((k, v)) = line.split_once(':') {
            if k.trim().eq_ignore_ascii_case("content-length") {
                return v
                    .trim()
                    .parse()
                    .map_err(|_| format!("bad Content-Length '{}'", v.trim()));
            }
            if k.trim().eq_ignore_ascii_case("transfer-encoding") {
                return Err("chunked answers are not supported by the generator".into());
            }
        }
    }
    Err("answer without Content-Length".into())
}

/// One connection: send each click when it is due (all overdue ones in one
/// write), read the answers as they come.
async fn conn_task(addr: SocketAddr, clicks: Vec<(i32, Instant)>) -> Result<GenResult, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let n = clicks.len();
    let host = addr.to_string();
    let writer = async move {
        let mut buf = Vec::with_capacity(64 * 1024);
        let mut i = 0;
        while i < clicks.len() {
            let due = clicks[i].1;
            if due > Instant::now() {
                tokio::time::sleep_until(due.into()).await;
            }
            let now = Instant::now();
            buf.clear();
            while i < clicks.len() && clicks[i].1 <= now {
                click_request(&host, clicks[i].0, &mut buf);
                i += 1;
            }
            wr.write_all(&buf)
                .await
                .map_err(|e| format!("sending clicks to {addr}: {e}"))?;
        }
        Ok::<_, String>(wr)
    };
    let reader = async move {
        let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
        let mut chunk = vec![0u8; 64 * 1024];
        let mut res = GenResult {
            sent: n,
            ..GenResult::default()
        };
        let mut start = 0;
        while res.ok + res.faults < n {
            while let Some(h) = find(&buf[start..], b"\r\n\r\n") {
                let len = content_length(&buf[start..start + h])?;
                let body = start + h + 4;
                if buf.len() < body + len {
                    break;
                }
                if find(&buf[body..body + len], b"<fault>").is_some() {
                    res.faults += 1;
                } else {
                    res.ok += 1;
                }
                start = body + len;
            }
            if res.ok + res.faults >= n {
                break;
            }
            buf.drain(..start);
            start = 0;
            let m = rd
                .read(&mut chunk)
                .await
                .map_err(|e| format!("reading answers from {addr}: {e}"))?;
            if m == 0 {
                return Err(format!(
                    "{addr} closed the connection after {} of {n} answers",
                    res.ok + res.faults
                ));
            }
            buf.extend_from_slice(&chunk[..m]);
        }
        Ok(res)
    };
    let (_wr, res) = tokio::try_join!(writer, reader)?;
    Ok(res)
}

/// Click `k` (tag `tag0 + k`) goes to node `k % nodes` at `start + k / rate`.
pub(super) async fn generate(
    addrs: &[SocketAddr],
    conns: usize,
    rate: f64,
    n: usize,
    tag0: i32,
    start: Instant,
) -> Result<GenResult, String> {
    let nodes = addrs.len();
    let mut lists: Vec<Vec<(i32, Instant)>> = vec![Vec::new(); nodes * conns];
    for k in 0..n {
        let node = k % nodes;
        let c = (k / nodes) % conns;
        let due = start + Duration::from_secs_f64(k as f64 / rate);
        lists[node * conns + c].push((tag0 + k as i32, due));
    }
    let mut set = JoinSet::new();
    for (j, list) in lists.into_iter().enumerate() {
        if !list.is_empty() {
            set.spawn(conn_task(addrs[j / conns], list));
        }
    }
    let limit = Duration::from_secs_f64(n as f64 / rate) + Duration::from_secs(30);
    let mut total = GenResult::default();
    let joined = tokio::time::timeout(limit, async {
        while let Some(r) = set.join_next().await {
            let r = r.map_err(|e| format!("generator task failed: {e}"))??;
            total.sent += r.sent;
            total.ok += r.ok;
            total.faults += r.faults;
        }
        Ok::<(), String>(())
    })
    .await;
    match joined {
        Ok(r) => r.map(|()| total),
        Err(_) => Err("the click generator got no answers in time".into()),
    }
}

/// The same schedule as [`generate`], but each node takes its share of
/// the clicks itself (`bench_load`): what the nodes cost without an HTTP
/// request per click, as in a game, where clicks come from the window.
/// Returns when the last click is due.
pub(super) async fn generate_local(
    addrs: &[SocketAddr],
    rate: f64,
    n: usize,
    tag0: i32,
    start: Instant,
) -> Result<GenResult, String> {
    let client = RpcClient::new(Duration::from_secs(5))?;
    let nodes = addrs.len();
    let us = |d: Duration| i32::try_from(d.as_micros()).unwrap_or(i32::MAX);
    let interval = us(Duration::from_secs_f64(nodes as f64 / rate)).max(1);
    let mut set = JoinSet::new();
    for (j, addr) in addrs.iter().enumerate() {
        let count = n.saturating_sub(j).div_ceil(nodes);
        let first_due = start + Duration::from_secs_f64(j as f64 / rate);
        let params = [
            tag0.saturating_add(j as i32),
            i32::try_from(count).map_err(|_| "too many clicks for one node")?,
            nodes as i32,
            interval,
            us(first_due.saturating_duration_since(Instant::now())),
        ];
        let (client, addr) = (client.clone(), addr.to_string());
        set.spawn(async move {
            let params = params.into_iter().map(Value::Integer).collect();
            let r = client.call(&addr, "bench_load", params).await;
            r.map_err(|e| format!("bench_load on {addr}: {e}"))
        });
    }
    while let Some(r) = set.join_next().await {
        r.map_err(|e| format!("generator task failed: {e}"))??;
    }
    let end = start + Duration::from_secs_f64(n as f64 / rate);
    tokio::time::sleep_until(end.into()).await;
    Ok(GenResult {
        sent: n,
        ok: n,
        faults: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_length_is_read_and_bad_answers_refused() {
        assert_eq!(
            content_length(b"HTTP/1.1 200 OK\r\ncontent-length: 42\r\nx: y"),
            Ok(42)
        );
        assert!(content_length(b"HTTP/1.1 500 Oops\r\ncontent-length: 1").is_err());
        assert!(content_length(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked").is_err());
        assert!(content_length(b"HTTP/1.1 200 OK\r\n").is_err());
    }
}
