//! `raftian node --join HOST:PORT --name NAME --addr HOST:PORT`: a node that
//! is in no cluster file asks a member to add it (`add_server_rpc`, passed
//! on to the leader), keeps the id it is given in its data dir, and starts
//! with no configuration: the leader's log (or snapshot) brings it.

use std::path::Path;
use std::time::{Duration, Instant};

use dxr::Value;
use log::info;

use super::NodeOptions;
use super::client::{self, CallError};
use crate::config::{ClusterConfig, NodeEntry};
use crate::storage::meta::{self, Joined};
use crate::wire::FAULT_UNAVAILABLE;

/// How long a join keeps asking (the cluster may be electing a leader).
const JOIN_PATIENCE: Duration = Duration::from_secs(30);

/// The options of a node that joins through `via`, keeping its state in
/// `data_dir`; asks to be added unless the data dir already joined.
/// A member vouching for the node that joins, in an authenticated
/// cluster: its data dir (holding its key).
pub fn options(
    via: &str,
    (name, addr): (&str, &str),
    data_dir: &Path,
    sponsor: Option<&Path>,
) -> Result<NodeOptions, String> {
    std::fs::create_dir_all(data_dir)
        .map_err(|e| format!("cannot create data dir {}: {e}", data_dir.display()))?;
    let joined = match meta::read_joined(data_dir).map_err(|e| e.to_string())? {
        Some(j) if j.name != name || j.addr != addr => {
            return Err(format!(
                "data dir {} belongs to node {} ({} at {}): use another data dir to join as {name}",
                data_dir.display(),
                j.id,
                j.name,
                j.addr
            ));
        }
        Some(j) => {
            info!("{name}: joined before as node {}: restarting", j.id);
            j
        }
        None => ask_to_join(via, name, addr, (data_dir, sponsor))?,
    };
    let key = crate::keys::load(data_dir)?;
    let me = NodeEntry {
        id: joined.id,
        name: joined.name,
        addr: joined.addr,
        log: Vec::new(),
        public_key: key.as_ref().map(crate::keys::public_b64),
        original: false,
    };
    me.socket_addr()?;
    let cluster = ClusterConfig::from_nodes(vec![me]);
    let mut opts = NodeOptions::new(cluster, joined.id);
    opts.joining = true;
    opts.data_dir = Some(data_dir.to_owned());
    Ok(opts)
}

fn ask_to_join(
    via: &str,
    name: &str,
    addr: &str,
    (dir, sponsor): (&Path, Option<&Path>),
) -> Result<Joined, String> {
    info!("{name}: asking {via} to add it at {addr}");
    let mut params = vec![Value::String(name.into()), Value::String(addr.into())];
    if let Some(k) = crate::keys::load(dir)? {
        params.push(Value::String(crate::keys::public_b64(&k)));
    }
    let signer = match sponsor {
        Some(d) => {
            let key = crate::keys::load(d)?
                .ok_or_else(|| format!("the sponsor's data dir {} has no key", d.display()))?;
            Some(client::Signer::find(via, key, JOIN_PATIENCE)?)
        }
        None => None,
    };
    let deadline = Instant::now() + JOIN_PATIENCE;
    let id = loop {
        let params = params.clone();
        match client::call_as(
            signer.as_ref(),
            via,
            "add_server_rpc",
            params,
            JOIN_PATIENCE,
        ) {
            Ok(Value::Integer(id)) if id > 0 => break id as u64,
            Ok(other) => return Err(format!("add_server_rpc answered {other:?}, not an id")),
            Err(e) if retryable(&e) && Instant::now() < deadline => {
                info!("{name}: {e}; retrying");
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => return Err(format!("{via} did not add {name}: {e}")),
        }
    };
    info!("{name}: added as node {id} (a learner until it has caught up)");
    let joined = Joined {
        id,
        name: name.into(),
        addr: addr.into(),
    };
    meta::write_joined(dir, &joined).map_err(|e| e.to_string())?;
    Ok(joined)
}

/// No leader yet, a change still pending, a new leader: worth asking again.
pub fn retryable(e: &CallError) -> bool {
    match e {
        CallError::Unreachable(_) => false,
        CallError::Fault(f) => {
            f.code() == FAULT_UNAVAILABLE
                || f.string().contains("retry")
                || f.string().contains("not the leader")
        }
    }
}
