//! The cluster file (TOML): every node's id, name and address, and the
//! optional static leader and seeded logs of the paper's setup.
//!
//! ```toml
//! leader = 0                       # optional: the paper's static leader
//! heartbeat_ms = 50                # optional
//! election_timeout_ms = [150, 300] # optional
//! [[node]]
//! id = 0
//! name = "raftian"
//! addr = "127.0.0.1:8000"
//! log = [[1, 4, 5], [1, 5, 5]]     # optional seeded log: [term, index, command]
//! ```

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::raft::{Command, Entry, Member, Membership, NodeId, RaftConfig};

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum CommandValue {
    Int(i32),
    Text(String),
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NodeEntry {
    pub id: NodeId,
    pub name: String,
    pub addr: String,
    #[serde(default)]
    pub log: Vec<(u64, u64, CommandValue)>,
    /// The node's ed25519 public key, base64 (`raftian keygen` prints it).
    /// All nodes have one, or none does.
    #[serde(default)]
    pub public_key: Option<String>,
    /// An original Python node (it cannot sign: no keys beside it).
    #[serde(default)]
    pub original: bool,
}

impl NodeEntry {
    pub fn socket_addr(&self) -> Result<SocketAddr, String> {
        self.addr
            .parse()
            .map_err(|e| format!("node {} has a bad addr '{}': {e}", self.id, self.addr))
    }

    pub fn initial_log(&self) -> Vec<Entry> {
        self.log
            .iter()
            .map(|(term, index, c)| Entry {
                term: *term,
                index: *index,
                command: match c {
                    CommandValue::Int(i) => Command::Int(*i),
                    CommandValue::Text(s) => Command::Text(s.clone()),
                },
                client: None,
                sig: None,
            })
            .collect()
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// The paper's static leader: no elections, every node starts at term 1.
    pub leader: Option<NodeId>,
    pub heartbeat_ms: Option<u64>,
    pub election_timeout_ms: Option<[u64; 2]>,
    /// `service_actions` period (the paper's 5 ms).
    pub tick_ms: Option<u64>,
    /// Timeout of one outgoing RPC.
    pub rpc_timeout_ms: Option<u64>,
    pub pre_vote: Option<bool>,
    pub check_quorum: Option<bool>,
    /// Snapshot (and compact the log) after this many applied entries;
    /// 0: never. Default 10,000.
    pub snapshot_entries: Option<u64>,
    /// Bytes per `install_snapshot_rpc` chunk. Default 64 KiB.
    pub snapshot_chunk_bytes: Option<usize>,
    /// A player's clicks per second beyond which the game drops them
    /// (issue 11); none: no limit. Rust nodes only.
    pub max_clicks_per_sec: Option<u32>,
    #[serde(rename = "node")]
    pub nodes: Vec<NodeEntry>,
}

impl ClusterConfig {
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read cluster file {}: {e}", path.display()))?;
        Self::from_toml_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn from_toml_str(text: &str) -> Result<Self, String> {
        let cfg: ClusterConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), String> {
        if self.nodes.is_empty() {
            return Err("the cluster has no [[node]]".into());
        }
        let mut ids: Vec<NodeId> = self.nodes.iter().map(|n| n.id).collect();
        ids.sort_unstable();
        if ids.windows(2).any(|w| w[0] == w[1]) {
            return Err("two nodes share an id".into());
        }
        for n in &self.nodes {
            n.socket_addr()?;
            if n.name.is_empty() || n.name.contains(['/', '\\']) {
                return Err(format!("node {} needs a plain name (no slashes)", n.id));
            }
            crate::raft::RaftLog::new(n.initial_log())
                .map_err(|e| format!("node {}'s log: {e}", n.id))?;
        }
        self.try_membership()?;
        self.check_keys()?;
        self.check_rate_limit()?;
        if let Some(l) = self.leader
            && !ids.contains(&l)
        {
            return Err(format!("leader {l} is not a node of the cluster"));
        }
        if let Some([lo, hi]) = self.election_timeout_ms
            && (lo == 0 || hi < lo)
        {
            return Err("election_timeout_ms must be [min, max] with 0 < min <= max".into());
        }
        Ok(())
    }

    /// Keys for all or for none, well formed, never beside an original node.
    fn check_keys(&self) -> Result<(), String> {
        let keyed = self.nodes.iter().filter(|n| n.public_key.is_some()).count();
        if keyed == 0 {
            return Ok(());
        }
        if keyed < self.nodes.len() {
            let bare: Vec<String> = self
                .nodes
                .iter()
                .filter(|n| n.public_key.is_none())
                .map(|n| n.name.clone())
                .collect();
            return Err(format!(
                "some nodes have a public_key and {} do not: give every node one (raftian keygen), or none",
                bare.join(", ")
            ));
        }
        if let Some(n) = self.nodes.iter().find(|n| n.original) {
            return Err(format!(
                "{} is an original Python node, which cannot sign: an authenticated cluster cannot have one",
                n.name
            ));
        }
        for n in &self.nodes {
            let k = n.public_key.as_deref().unwrap_or_default();
            crate::keys::parse_public(k).map_err(|e| format!("node {}: {e}", n.name))?;
        }
        Ok(())
    }

    /// A rate limit of at least one click, and no original node (its log
    /// cannot hold the limit's stamps).
    pub fn check_rate_limit(&self) -> Result<(), String> {
        let Some(n) = self.max_clicks_per_sec else {
            return Ok(());
        };
        if n == 0 || n > i32::MAX as u32 {
            return Err(format!(
                "max_clicks_per_sec must be from 1 to {}, not {n}",
                i32::MAX
            ));
        }
        if let Some(o) = self.nodes.iter().find(|n| n.original) {
            return Err(format!(
                "{} is an original Python node, whose log cannot hold the rate limit's stamps: leave max_clicks_per_sec out",
                o.name
            ));
        }
        Ok(())
    }

    /// Does every node have a public key?
    pub fn authenticated(&self) -> bool {
        self.nodes.iter().all(|n| n.public_key.is_some())
    }

    /// A cluster of these nodes with every setting at its default (a node
    /// that joined has no cluster file).
    pub fn from_nodes(nodes: Vec<NodeEntry>) -> Self {
        ClusterConfig {
            leader: None,
            heartbeat_ms: None,
            election_timeout_ms: None,
            tick_ms: None,
            rpc_timeout_ms: None,
            pre_vote: None,
            check_quorum: None,
            snapshot_entries: None,
            snapshot_chunk_bytes: None,
            max_clicks_per_sec: None,
            nodes,
        }
    }

    /// The starting configuration: every node a voter.
    pub fn membership(&self) -> Membership {
        self.try_membership()
            .expect("validated: distinct ids, names, addrs")
    }

    fn try_membership(&self) -> Result<Membership, String> {
        let members = self.nodes.iter().map(|n| Member {
            id: n.id,
            name: n.name.clone(),
            addr: n.addr.clone(),
            voter: true,
            public_key: n.public_key.clone(),
        });
        Membership::new(members.collect())
    }

    pub fn node(&self, id: NodeId) -> Option<&NodeEntry> {
        self.nodes.iter().find(|n| n.id == id)
    }

    pub fn tick(&self) -> Duration {
        Duration::from_millis(self.tick_ms.unwrap_or(5).max(1))
    }

    pub fn rpc_timeout(&self) -> Duration {
        Duration::from_millis(self.rpc_timeout_ms.unwrap_or(500).max(1))
    }

    /// The core's configuration for node `id`.
    pub fn raft_config(&self, id: NodeId) -> RaftConfig {
        let peers = self
            .nodes
            .iter()
            .map(|n| n.id)
            .filter(|p| *p != id)
            .collect();
        let mut c = RaftConfig::new(id, peers);
        c.members = Some(std::sync::Arc::new(self.membership()));
        c.static_leader = self.leader;
        if let Some(h) = self.heartbeat_ms {
            c.heartbeat_interval = Duration::from_millis(h.max(1));
        }
        if let Some([lo, hi]) = self.election_timeout_ms {
            c.election_timeout_min = Duration::from_millis(lo);
            c.election_timeout_max = Duration::from_millis(hi);
        }
        if let Some(p) = self.pre_vote {
            c.pre_vote = p;
        }
        if let Some(q) = self.check_quorum {
            c.check_quorum = q;
        }
        c.retry_interval = c.heartbeat_interval;
        c.request_timeout = self.rpc_timeout() * 2;
        if let Some(n) = self.snapshot_entries {
            c.snapshot_entries = n;
        }
        if let Some(b) = self.snapshot_chunk_bytes {
            c.snapshot_chunk = b.clamp(1, 1 << 20);
        }
        c.rate_limit = self.max_clicks_per_sec;
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_papers_cluster() {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/cluster.toml"))
                .unwrap();
        let c = ClusterConfig::from_toml_str(&text).unwrap();
        assert_eq!(c.nodes.len(), 5);
        assert_eq!(c.leader, Some(0));
        assert_eq!(c.node(0).unwrap().initial_log()[0].index, 4);
        assert_eq!(c.node(3).unwrap().initial_log()[3].command, Command::Int(9));
    }

    #[test]
    fn refuses_bad_files() {
        let bad = [
            "",
            "[[node]]\nid = 0\nname = \"a\"\naddr = \"nowhere\"\n",
            "leader = 7\n[[node]]\nid = 0\nname = \"a\"\naddr = \"127.0.0.1:1\"\n",
            "[[node]]\nid = 0\nname = \"a\"\naddr = \"127.0.0.1:1\"\nlog = [[1, 0, 1], [1, 2, 1]]\n",
            "[[node]]\nid = 0\nname = \"a\"\naddr = \"127.0.0.1:1\"\ncolour = 3\n",
            "max_clicks_per_sec = 0\n[[node]]\nid = 0\nname = \"a\"\naddr = \"127.0.0.1:1\"\n",
            "max_clicks_per_sec = 5\n[[node]]\nid = 0\nname = \"a\"\naddr = \"127.0.0.1:1\"\noriginal = true\n",
        ];
        for b in bad {
            assert!(ClusterConfig::from_toml_str(b).is_err(), "{b}");
        }
    }
}
