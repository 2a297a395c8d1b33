//! This node as a client of the cluster (Ongaro's thesis section 6.3): every
//! command it takes gets a [`ClientId`] of its session, and the node keeps
//! the command until it sees it applied, sending it again (to whatever
//! leader there is, or into its own log once it leads) when it may have
//! been lost: once the term has changed since it went out (a leader that
//! took it can only lose it by losing its leadership), or after a long
//! timeout. The replicated [`SessionTable`] makes the copies harmless;
//! resending on every slow commit would flood the log with them.
//!
//! [`SessionTable`]: crate::raft::sessions::SessionTable

use std::collections::BTreeMap;
use std::time::Duration;

use log::debug;

use super::*;

/// A command on its way into the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Proposal {
    pub command: Command,
    pub client: Option<ClientId>,
    /// The taker's signature (a cluster with keys).
    pub sig: Option<Sig>,
}

/// A command this node took and has not seen applied yet.
#[derive(Debug)]
struct Unapplied {
    command: Command,
    sig: Option<Sig>,
    /// When this node took it.
    taken_at: Duration,
    /// When it last went out (into our log, or to a leader), and in which
    /// term; `None` while it waits in `proposals`.
    sent_at: Option<(Duration, u64)>,
}

#[derive(Debug)]
pub(super) struct ClientSession {
    incarnation: u64,
    next_seq: u64,
    unapplied: BTreeMap<u64, Unapplied>,
}

impl ClientSession {
    pub fn new(incarnation: u64) -> Self {
        ClientSession {
            incarnation,
            next_seq: 1,
            unapplied: BTreeMap::new(),
        }
    }

    /// The seq the next command taken here gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    pub fn unapplied(&self) -> usize {
        self.unapplied.len()
    }

    /// When the oldest command not applied yet was taken (seqs are given
    /// in the order commands are taken: the first is the oldest). Asked on
    /// every loop turn, so it must not walk the whole map.
    pub fn oldest_taken(&self) -> Option<Duration> {
        self.unapplied.first_key_value().map(|(_, u)| u.taken_at)
    }
}

impl Raft {
    /// Commands from the game (`pygame_commands`): each gets the next id of
    /// this node's session.
    pub(super) fn take_commands(&mut self, now: Duration, commands: Vec<Command>) {
        for command in commands {
            let s = &mut self.client;
            let id = ClientId {
                node: self.cfg.id,
                incarnation: s.incarnation,
                seq: s.next_seq,
            };
            s.next_seq += 1;
            // Only a cluster with keys signs: an original node must never
            // see a fourth member in an entry.
            let keyed = self.membership().authenticated();
            let sig = (self.cfg.command_auth.as_ref())
                .filter(|_| keyed)
                .and_then(|a| a.sign(&id, &command));
            let u = Unapplied {
                command: command.clone(),
                sig: sig.clone(),
                taken_at: now,
                sent_at: None,
            };
            self.client.unapplied.insert(id.seq, u);
            self.proposals.push(Proposal {
                command,
                client: Some(id),
                sig,
            });
        }
    }

    fn own(&self, id: Option<ClientId>) -> Option<u64> {
        id.filter(|c| c.node == self.cfg.id && c.incarnation == self.client.incarnation)
            .map(|c| c.seq)
    }

    /// Commands left this node (into its log, or to a leader).
    pub(super) fn note_sent<'a>(
        &mut self,
        sent: impl IntoIterator<Item = &'a Option<ClientId>>,
        now: Duration,
    ) {
        let term = self.term;
        for id in sent {
            if let Some(seq) = self.own(*id)
                && let Some(u) = self.client.unapplied.get_mut(&seq)
            {
                u.sent_at = Some((now, term));
            }
        }
    }

    /// Commands went back into `proposals` (a forward failed).
    pub(super) fn note_requeued(&mut self, ids: impl IntoIterator<Item = Option<ClientId>>) {
        for id in ids {
            if let Some(seq) = self.own(id)
                && let Some(u) = self.client.unapplied.get_mut(&seq)
            {
                u.sent_at = None;
            }
        }
    }

    /// A leader that cannot carry ids (an original Python node) took these
    /// commands: from here on they are its to apply, as in the original.
    pub(super) fn forget(&mut self, ids: impl IntoIterator<Item = Option<ClientId>>) {
        for id in ids {
            if let Some(seq) = self.own(id) {
                self.client.unapplied.remove(&seq);
            }
        }
    }

    /// An entry of ours was applied (or skipped as a copy): done with it.
    pub(super) fn note_applied(&mut self, id: Option<ClientId>) {
        if let Some(seq) = self.own(id) {
            self.client.unapplied.remove(&seq);
        }
    }

    /// After a snapshot: what it shows applied is done.
    pub(super) fn forget_applied_commands(&mut self) {
        let (node, incarnation) = (self.cfg.id, self.client.incarnation);
        let sessions = &self.sessions;
        self.client.unapplied.retain(|seq, _| {
            !sessions.is_applied(ClientId {
                node,
                incarnation,
                seq: *seq,
            })
        });
    }

    /// How long a command may stay unapplied within one term before it is
    /// sent again anyway.
    fn resend_after(&self) -> Duration {
        self.cfg.request_timeout * 10
    }

    /// Send again what may have been lost and is still not applied (`all`:
    /// everything that went out, as a new leader does).
    pub(super) fn resend_unapplied(&mut self, now: Duration, all: bool) {
        let (wait, term) = (self.resend_after(), self.term);
        if !all && self.leader_id.is_none() {
            return; // nobody to send it to yet
        }
        let me = (self.cfg.id, self.client.incarnation);
        for (seq, u) in self.client.unapplied.iter_mut() {
            let due = u
                .sent_at
                .is_some_and(|(t, in_term)| all || in_term < term || now >= t + wait);
            if due {
                debug!("node {}: command {seq} not applied yet: sent again", me.0);
                u.sent_at = None;
                self.proposals.push(Proposal {
                    command: u.command.clone(),
                    client: Some(ClientId {
                        node: me.0,
                        incarnation: me.1,
                        seq: *seq,
                    }),
                    sig: u.sig.clone(),
                });
            }
        }
    }

    /// When the oldest command that went out is due to be sent again (a
    /// change of term wakes the node anyway: it comes with a message).
    pub(super) fn resend_deadline(&self) -> Duration {
        let wait = self.resend_after();
        self.client
            .unapplied
            .values()
            .filter_map(|u| u.sent_at.map(|(t, _)| t))
            .min()
            .map_or(Duration::MAX, |t| t + wait)
    }
}
