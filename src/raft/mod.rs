//! The Raft core: pure state machine, no I/O (see `core`).
//!
//! Input goes in through [`Raft::step`] (RPCs, replies, proposals, time);
//! output comes out as one [`Ready`] per loop turn.

mod core;
pub mod dialect;
pub mod log;
pub mod membership;
pub mod progress;
pub mod quorum;
pub mod sessions;
pub mod signing;
pub mod types;

pub use self::core::{Raft, RaftConfig, WIRE_MAX};
pub use self::log::RaftLog;
pub use self::membership::{ConfChange, Member, Membership};
pub use self::types::*;
