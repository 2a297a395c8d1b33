//! The Raft core: pure state machine, no I/O (see `core`).

mod core;
pub mod log;
pub mod progress;
pub mod quorum;
pub mod types;

pub use self::core::{Raft, RaftConfig, WIRE_MAX};
pub use self::log::RaftLog;
pub use self::types::*;
