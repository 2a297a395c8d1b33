//! `raftian bench`: end-to-end benchmark of a 5-node loopback cluster.
//! Placeholder until the benchmark lands.

/// `raftian bench` arguments.
#[derive(clap::Args, Clone, Debug)]
pub struct BenchArgs {}

pub fn run(_args: &BenchArgs) -> Result<(), String> {
    Err("bench: not built yet".into())
}
