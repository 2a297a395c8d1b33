//! Command-line tools that talk to running nodes over XML-RPC:
//! `raftian status` (the cluster as a table or JSON) and `raftian click`.

pub mod click;
pub mod rpc;
pub mod status;
