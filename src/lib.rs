//! Raftian: the paper's Raft-replicated real-time strategy game, in Rust.
//!
//! Arrows point inward: `game` knows nothing of Raft, `raft` knows nothing of
//! dxr, tokio or minifb. `wire` maps XML-RPC values to the core's types,
//! `node` runs a core with timers, queues and peers, `window` draws the game.

pub mod bench;
pub mod cli;
pub mod config;
pub mod game;
pub mod keys;
pub mod logfile;
pub mod node;
pub mod queues;
pub mod raft;
pub mod storage;
pub mod window;
pub mod wire;
