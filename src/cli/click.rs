//! `raftian click`: the node's `click(player)` (or `new_round()`) from the
//! command line. A Fault is an error (one line, non-zero exit); otherwise
//! the node's answer is printed.

use std::time::Duration;

use dxr::Value;

use super::rpc::{CallError, RpcClient, node_url, value_text};

#[derive(clap::Args, Clone, Debug)]
pub struct ClickArgs {
    /// The node to click on, HOST:PORT (any node: followers forward to the leader).
    #[arg(long, value_name = "HOST:PORT")]
    pub addr: String,
    /// The player to attack (its id), or `new` to start the next round once one is won.
    #[arg(allow_negative_numbers = true)]
    pub player: String,
    /// Answer once the click is applied on that node (`click_wait`), not
    /// just queued.
    #[arg(long)]
    pub wait: bool,
    /// How long to wait for the node's answer, in milliseconds.
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub timeout_ms: u64,
    /// In a cluster with keys: the node's data dir; its key signs the
    /// click (a node takes clicks only signed by its own key).
    #[arg(long)]
    pub data_dir: Option<std::path::PathBuf>,
}

/// What to call.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    pub method: &'static str,
    pub params: Vec<Value>,
}

/// The call `args` asks for. (A signed click, issue 11, is built here too.)
pub fn request(args: &ClickArgs) -> Result<Request, String> {
    let p = args.player.trim();
    if p.eq_ignore_ascii_case("new") {
        return Ok(Request {
            method: "new_round",
            params: Vec::new(),
        });
    }
    let n: i32 = p.parse().map_err(|_| {
        format!("'{p}' is not a player: give a player id (e.g. 3) or `new` for a new round")
    })?;
    Ok(Request {
        method: if args.wait { "click_wait" } else { "click" },
        params: vec![Value::Integer(n)],
    })
}

/// `raftian click`: Ok(the node's answer as text), or the error to print.
pub fn run(args: &ClickArgs) -> Result<String, String> {
    node_url(&args.addr)?;
    let req = request(args)?;
    if let Some(dir) = &args.data_dir {
        return run_signed(args, dir, req);
    }
    let client = RpcClient::new(Duration::from_millis(args.timeout_ms))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start tokio: {e}"))?;
    match rt.block_on(client.call(&args.addr, req.method, req.params)) {
        Ok(v) => Ok(value_text(&v)),
        Err(CallError::Fault(_, msg)) => Err(msg),
        Err(CallError::Unreachable(why)) => Err(format!("cannot reach {}: {why}", args.addr)),
    }
}

/// The click signed with the key in `dir` (a cluster with keys).
fn run_signed(args: &ClickArgs, dir: &std::path::Path, req: Request) -> Result<String, String> {
    use crate::node::client::{CallError, Signer, call_as};
    let timeout = Duration::from_millis(args.timeout_ms);
    let key = crate::keys::load(dir)?
        .ok_or_else(|| format!("{} has no key (raftian keygen)", dir.display()))?;
    let signer = Signer::find(&args.addr, key, timeout)?;
    match call_as(Some(&signer), &args.addr, req.method, req.params, timeout) {
        Ok(v) => Ok(value_text(&v)),
        Err(CallError::Fault(f)) => Err(f.string().to_owned()),
        Err(CallError::Unreachable(why)) => Err(format!("cannot reach {}: {why}", args.addr)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(player: &str, wait: bool) -> ClickArgs {
        ClickArgs {
            addr: "127.0.0.1:1".into(),
            player: player.into(),
            wait,
            timeout_ms: 100,
            data_dir: None,
        }
    }

    #[test]
    fn players_and_new_rounds() {
        let r = request(&args("3", false)).unwrap();
        assert_eq!((r.method, r.params), ("click", vec![Value::Integer(3)]));
        let r = request(&args(" 12 ", true)).unwrap();
        assert_eq!(
            (r.method, r.params),
            ("click_wait", vec![Value::Integer(12)])
        );
        assert_eq!(request(&args("new", false)).unwrap().method, "new_round");
        let e = request(&args("red", false)).unwrap_err();
        assert!(e.contains("'red' is not a player"), "{e}");
    }
}
