//! `raftian status`: every member's `status()`, asked concurrently, as a
//! table (once, or redrawn in place with `--watch`) or one JSON document.
//!
//! The members are the cluster file's nodes plus any other member a node
//! lists in its `status().members` (once membership can change). A node that
//! does not answer within the timeout is a row saying `down`, not an error.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use comfy_table::{CellAlignment, ContentArrangement, Table, presets};
use dxr::Value;
use serde::Serialize;

use super::rpc::{CallError, RpcClient};
use crate::config::ClusterConfig;

#[derive(clap::Args, Clone, Debug)]
pub struct StatusArgs {
    /// The cluster file (the nodes to ask; others are learned from their answers).
    #[arg(long)]
    pub config: PathBuf,
    /// Redraw the table in place until Ctrl+C.
    #[arg(long, conflicts_with = "json")]
    pub watch: bool,
    /// Print one JSON document instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Seconds between two redraws with --watch.
    #[arg(long, default_value = "0.5", value_parser = parse_interval)]
    pub interval: f64,
    /// How long to wait for each node's answer, in milliseconds.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub timeout_ms: u64,
    /// With --watch: stop after this many redraws.
    #[arg(long, requires = "watch")]
    pub count: Option<u64>,
}

fn parse_interval(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(s) if (0.05..=3600.0).contains(&s) => Ok(s),
        _ => Err(format!(
            "'{text}' is not an interval: seconds from 0.05 to 3600"
        )),
    }
}

/// Whom to ask.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub id: u64,
    pub name: String,
    pub addr: String,
    /// Where this member was found.
    pub source: Source,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// A node of the cluster file.
    Config,
    /// Listed in some node's `status().members`.
    Members,
}

/// A member as `status().members` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MemberInfo {
    pub id: u64,
    pub name: String,
    pub addr: String,
    pub voter: bool,
}

/// What a node said of itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct NodeView {
    pub role: String,
    pub term: u64,
    pub leader_id: Option<u64>,
    pub commit_index: Option<u64>,
    pub last_applied: Option<u64>,
    pub log_length: u64,
    pub snapshot_index: Option<u64>,
    /// HP by player id.
    pub hp: BTreeMap<u32, i64>,
    pub round: Option<u64>,
    #[serde(skip)]
    pub members: Vec<MemberInfo>,
}

/// One member: its answer, or why there is none.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub id: u64,
    pub name: String,
    pub addr: String,
    pub source: Source,
    /// As the members lists say (`None`: no node listed it).
    pub voter: Option<bool>,
    pub up: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(flatten)]
    pub node: Option<NodeView>,
    /// Entries this node's commit index is behind the leader's (`None`:
    /// down, or no leader answered).
    pub lag: Option<u64>,
}

/// The whole cluster at one moment.
#[derive(Clone, Debug)]
pub struct ClusterView {
    pub rows: Vec<Row>,
    /// Index in `rows` of the leader: the answering LEADER of the highest term.
    pub leader: Option<usize>,
    /// Every player id some node reported, ascending.
    pub players: Vec<u32>,
}

impl ClusterView {
    pub fn leader_row(&self) -> Option<&Row> {
        self.leader.map(|i| &self.rows[i])
    }

    fn name_of(&self, id: u64) -> String {
        self.rows
            .iter()
            .find(|r| r.id == id)
            .map_or_else(|| format!("#{id}"), |r| r.name.clone())
    }
}

/// The cluster file's nodes.
pub fn config_targets(cluster: &ClusterConfig) -> Vec<Target> {
    cluster
        .nodes
        .iter()
        .map(|n| Target {
            id: n.id,
            name: n.name.clone(),
            addr: n.addr.clone(),
            source: Source::Config,
        })
        .collect()
}

/// Ask `seeds`, then every member their answers name that was not asked
/// yet; all of one round at once.
pub async fn poll(client: &RpcClient, seeds: Vec<Target>) -> ClusterView {
    let mut rows: Vec<Row> = Vec::new();
    let mut next = seeds;
    // Members learned from members: a few rounds at most.
    for _ in 0..4 {
        if next.is_empty() {
            break;
        }
        rows.extend(query_all(client, next).await);
        next = unknown_members(&rows);
    }
    finish(rows)
}

/// Members listed by some answer that no row covers (by id or address).
fn unknown_members(rows: &[Row]) -> Vec<Target> {
    let ids: BTreeSet<u64> = rows.iter().map(|r| r.id).collect();
    let addrs: BTreeSet<&str> = rows.iter().map(|r| r.addr.as_str()).collect();
    let mut out: Vec<Target> = Vec::new();
    for m in rows
        .iter()
        .filter_map(|r| r.node.as_ref())
        .flat_map(|n| &n.members)
    {
        if ids.contains(&m.id)
            || addrs.contains(m.addr.as_str())
            || out.iter().any(|t| t.id == m.id)
        {
            continue;
        }
        out.push(Target {
            id: m.id,
            name: m.name.clone(),
            addr: m.addr.clone(),
            source: Source::Members,
        });
    }
    out
}

async fn query_all(client: &RpcClient, targets: Vec<Target>) -> Vec<Row> {
    let mut set = tokio::task::JoinSet::new();
    for (i, t) in targets.into_iter().enumerate() {
        let client = client.clone();
        set.spawn(async move {
            let answer = client.call(&t.addr, "status", Vec::new()).await;
            (i, row_from_answer(t, answer))
        });
    }
    let mut rows = Vec::new();
    while let Some(r) = set.join_next().await {
        if let Ok(r) = r {
            rows.push(r);
        }
    }
    rows.sort_by_key(|(i, _)| *i);
    rows.into_iter().map(|(_, r)| r).collect()
}

/// A row from `status()`'s answer (or failure).
pub fn row_from_answer(t: Target, answer: Result<Value, CallError>) -> Row {
    let (node, error) = match answer {
        Ok(v) => match parse_status(&v) {
            Ok(n) => (Some(n), None),
            Err(e) => (None, Some(format!("unreadable status(): {e}"))),
        },
        Err(CallError::Fault(_, m)) => (None, Some(format!("status() failed: {m}"))),
        Err(CallError::Unreachable(m)) => (None, Some(m)),
    };
    Row {
        id: t.id,
        name: t.name,
        addr: t.addr,
        source: t.source,
        voter: None,
        up: node.is_some(),
        error,
        node,
        lag: None,
    }
}

/// Leader, lag, voters and players, once every row is in.
pub fn finish(mut rows: Vec<Row>) -> ClusterView {
    rows.sort_by_key(|r| r.id);
    let leader = rows
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.node.as_ref().map(|n| (i, n)))
        .filter(|(_, n)| n.role == "LEADER")
        .max_by_key(|(_, n)| n.term)
        .map(|(i, _)| i);
    let leader_commit = leader.and_then(|i| rows[i].node.as_ref().map(|n| n.commit_index));
    let listed: BTreeMap<u64, bool> = rows
        .iter()
        .filter_map(|r| r.node.as_ref())
        .flat_map(|n| &n.members)
        .map(|m| (m.id, m.voter))
        .collect();
    for r in &mut rows {
        r.voter = listed.get(&r.id).copied();
        if let (Some(lc), Some(n)) = (leader_commit, &r.node) {
            // An index of None is "nothing committed": one before index 0.
            let pos = |c: Option<u64>| c.map_or(0, |c| c + 1);
            r.lag = Some(pos(lc).saturating_sub(pos(n.commit_index)));
        }
    }
    let players: BTreeSet<u32> = rows
        .iter()
        .filter_map(|r| r.node.as_ref())
        .flat_map(|n| n.hp.keys().copied())
        .collect();
    ClusterView {
        rows,
        leader,
        players: players.into_iter().collect(),
    }
}

/// Read a `status()` struct. Missing fields are tolerated (older nodes);
/// wrong types are not.
pub fn parse_status(v: &Value) -> Result<NodeView, String> {
    let Value::Struct(m) = v else {
        return Err("not a struct".into());
    };
    let num = |k: &str| crate::wire::status_count(m, k);
    let role = match m.get("mode") {
        Some(Value::String(s)) => s.clone(),
        None => "?".into(),
        Some(other) => return Err(format!("mode is {other:?}")),
    };
    Ok(NodeView {
        role,
        term: num("term")?.unwrap_or(0),
        leader_id: num("leader_id")?,
        commit_index: num("commit_index")?,
        last_applied: num("last_applied")?,
        log_length: num("log_length")?.unwrap_or(0),
        snapshot_index: num("snapshot_index")?,
        hp: parse_hp(m.get("hp"))?,
        round: num("round")?,
        members: parse_members(m.get("members"))?,
    })
}

/// HP by player id: an array (player i+1 at index i) or a struct keyed by id.
fn parse_hp(v: Option<&Value>) -> Result<BTreeMap<u32, i64>, String> {
    let int = |v: &Value| match v {
        Value::Integer(n) => Ok(i64::from(*n)),
        other => Err(format!("hp holds {other:?}")),
    };
    match v {
        None | Some(Value::Nil) => Ok(BTreeMap::new()),
        Some(Value::Array(a)) => a
            .iter()
            .enumerate()
            .map(|(i, h)| Ok((i as u32 + 1, int(h)?)))
            .collect(),
        Some(Value::Struct(m)) => m
            .iter()
            .map(|(k, h)| {
                let id = k
                    .to_string()
                    .parse::<u32>()
                    .map_err(|_| format!("hp key '{k}' is not a player id"))?;
                Ok((id, int(h)?))
            })
            .collect(),
        Some(other) => Err(format!("hp is {other:?}")),
    }
}

fn parse_members(v: Option<&Value>) -> Result<Vec<MemberInfo>, String> {
    let Some(Value::Array(a)) = v else {
        return Ok(Vec::new());
    };
    a.iter()
        .map(|m| {
            let Value::Struct(m) = m else {
                return Err(format!("a member is {m:?}"));
            };
            let text = |k: &str| match m.get(k) {
                Some(Value::String(s)) => Ok(s.clone()),
                other => Err(format!("member {k} is {other:?}")),
            };
            let id = match m.get("id") {
                Some(Value::Integer(n)) if *n >= 0 => *n as u64,
                other => return Err(format!("member id is {other:?}")),
            };
            Ok(MemberInfo {
                id,
                name: text("name")?,
                addr: text("addr")?,
                voter: !matches!(m.get("voter"), Some(Value::Boolean(false))),
            })
        })
        .collect()
}

fn opt(v: Option<u64>) -> String {
    v.map_or_else(|| "-".into(), |n| n.to_string())
}

/// The table, `width` columns wide at most (`None`: as wide as it needs).
pub fn table(view: &ClusterView, width: Option<u16>) -> String {
    let mut t = Table::new();
    t.load_style(presets::UTF8_FULL_CONDENSED);
    match width {
        Some(w) => {
            t.set_width(w);
            t.set_content_arrangement(ContentArrangement::Dynamic);
        }
        None => {
            t.force_no_tty();
            t.set_content_arrangement(ContentArrangement::Disabled);
        }
    }
    let mut header: Vec<String> = [
        "name", "address", "role", "term", "leader", "commit", "applied", "log", "snapshot", "lag",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    header.extend(view.players.iter().map(|p| format!("P{p}")));
    header.push("round".into());
    let numeric_from = 3;
    let columns = header.len();
    t.set_header(header);
    for r in &view.rows {
        let mut cells = vec![r.name.clone(), r.addr.clone()];
        match &r.node {
            None => {
                cells.push("down".into());
                cells.resize(columns, "-".into());
            }
            Some(n) => {
                cells.push(n.role.clone());
                cells.push(n.term.to_string());
                cells.push(n.leader_id.map_or_else(|| "-".into(), |l| view.name_of(l)));
                cells.push(opt(n.commit_index));
                cells.push(opt(n.last_applied));
                cells.push(n.log_length.to_string());
                cells.push(opt(n.snapshot_index));
                cells.push(opt(r.lag));
                for p in &view.players {
                    cells.push(n.hp.get(p).map_or_else(|| "-".into(), i64::to_string));
                }
                cells.push(opt(n.round));
            }
        }
        t.add_row(cells);
    }
    for i in numeric_from..columns {
        if i == 4 {
            continue; // the leader's name
        }
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    t.to_string()
}

/// One line over the table: how many answer, and who leads.
pub fn summary(view: &ClusterView) -> String {
    let up = view.rows.iter().filter(|r| r.up).count();
    let leader = view.leader_row().map_or_else(
        || "no leader".to_string(),
        |r| {
            let term = r.node.as_ref().map_or(0, |n| n.term);
            format!("leader {} (term {term})", r.name)
        },
    );
    format!("{} members, {up} up; {leader}", view.rows.len())
}

/// Why each row without an answer has none, one line each.
pub fn down_lines(view: &ClusterView) -> Vec<String> {
    view.rows
        .iter()
        .filter(|r| !r.up)
        .map(|r| {
            format!(
                "{} ({}): down: {}",
                r.name,
                r.addr,
                r.error.as_deref().unwrap_or("no answer")
            )
        })
        .collect()
}

/// How to click, with an address that answers and a player that can be
/// clicked (or `new` once the round is over).
pub fn click_hint(view: &ClusterView, program: &str) -> Option<String> {
    let up: Vec<&Row> = view.rows.iter().filter(|r| r.up).collect();
    let row = up
        .iter()
        .find(|r| view.leader.is_none_or(|l| view.rows[l].id != r.id))
        .or(up.first())?;
    let hp = &row.node.as_ref()?.hp;
    let alive: Vec<u32> = hp
        .iter()
        .filter(|(_, h)| **h > 0)
        .map(|(p, _)| *p)
        .collect();
    if alive.len() <= 1 && !hp.is_empty() {
        return Some(format!(
            "round over: start the next with  {program} click --addr {} new",
            row.addr
        ));
    }
    let player = alive.first().copied().unwrap_or(1);
    Some(format!(
        "click: {program} click --addr {} {player}   (any node, any living player)",
        row.addr
    ))
}

/// The JSON document `--json` prints.
pub fn json(view: &ClusterView, config: &std::path::Path) -> serde_json::Value {
    let leader = view.leader_row().map(|r| {
        serde_json::json!({
            "id": r.id,
            "name": r.name,
            "term": r.node.as_ref().map_or(0, |n| n.term),
        })
    });
    serde_json::json!({
        "config": config.display().to_string(),
        "time": chrono::Local::now().to_rfc3339(),
        "leader": leader,
        "players": view.players,
        "members": view.rows,
    })
}

/// `raftian status`.
pub fn run(args: &StatusArgs) -> Result<(), String> {
    let cluster = ClusterConfig::load(&args.config)?;
    let client = RpcClient::new(Duration::from_millis(args.timeout_ms))?;
    let targets = config_targets(&cluster);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start tokio: {e}"))?;
    rt.block_on(async {
        if args.watch {
            return watch(args, &client, targets).await;
        }
        let view = poll(&client, targets).await;
        let mut out = std::io::stdout().lock();
        let text = if args.json {
            serde_json::to_string_pretty(&json(&view, &args.config)).map_err(|e| e.to_string())?
        } else {
            plain_text(&view, &args.config, None)
        };
        writeln!(out, "{text}").map_err(|e| format!("cannot write: {e}"))
    })
}

/// Summary, table and the down nodes' reasons.
fn plain_text(view: &ClusterView, config: &std::path::Path, width: Option<u16>) -> String {
    let mut s = format!(
        "{}: {}\n{}",
        config.display(),
        summary(view),
        table(view, width)
    );
    for l in down_lines(view) {
        s.push('\n');
        s.push_str(&l);
    }
    s
}

/// `--watch`: redraw until Ctrl+C (or `--count` redraws).
async fn watch(args: &StatusArgs, client: &RpcClient, targets: Vec<Target>) -> Result<(), String> {
    let program = std::env::args().next().unwrap_or_else(|| "raftian".into());
    let mut screen = Screen::open().map_err(|e| format!("cannot use the terminal: {e}"))?;
    let stop = stop_signal();
    tokio::pin!(stop);
    let mut last = None;
    let mut drawn = 0u64;
    loop {
        let view = tokio::select! {
            v = poll(client, targets.clone()) => v,
            _ = &mut stop => break,
        };
        let width = screen.size().map(|(w, _)| w);
        let mut text = format!(
            "{}  {}\n",
            chrono::Local::now().format("%H:%M:%S"),
            plain_text(&view, &args.config, width)
        );
        if let Some(h) = click_hint(&view, &program) {
            text.push_str(&h);
            text.push('\n');
        }
        text.push_str("Ctrl+C to stop watching");
        screen
            .draw(&text)
            .map_err(|e| format!("cannot write: {e}"))?;
        last = Some(text);
        drawn += 1;
        if args.count.is_some_and(|c| drawn >= c) {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs_f64(args.interval)) => {}
            _ = &mut stop => break,
        }
    }
    // Back on the normal screen, the last table stays in view.
    let tty = screen.tty;
    drop(screen);
    if tty && let Some(text) = last {
        println!("{text}");
    }
    Ok(())
}

/// Ctrl+C or SIGTERM.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Where `--watch` draws: on a terminal, crossterm's alternate screen,
/// redrawn from the top each time (left on drop, also on a panic); anything
/// else gets one frame after another.
struct Screen {
    tty: bool,
}

impl Screen {
    fn open() -> std::io::Result<Self> {
        let tty = std::io::stdout().is_terminal();
        if tty {
            crossterm::execute!(
                std::io::stdout(),
                crossterm::terminal::EnterAlternateScreen,
                crossterm::cursor::Hide
            )?;
        }
        Ok(Screen { tty })
    }

    /// Columns and rows of the terminal, if it is one that knows its size
    /// (a pseudo-terminal may say 0x0).
    fn size(&self) -> Option<(u16, u16)> {
        if !self.tty {
            return None;
        }
        crossterm::terminal::size()
            .ok()
            .filter(|&(w, h)| w > 0 && h > 0)
    }

    fn draw(&mut self, text: &str) -> std::io::Result<()> {
        use crossterm::terminal::{Clear, ClearType};
        let mut out = std::io::stdout().lock();
        if !self.tty {
            writeln!(out, "{text}\n")?;
            return out.flush();
        }
        let rows = self.size().map_or(usize::MAX, |(_, r)| usize::from(r));
        crossterm::queue!(out, crossterm::cursor::MoveTo(0, 0))?;
        // One row short of the screen, so the last line never scrolls it.
        for line in text.lines().take(rows.saturating_sub(1)) {
            write!(out, "{line}")?;
            crossterm::queue!(out, Clear(ClearType::UntilNewLine))?;
            writeln!(out)?;
        }
        crossterm::queue!(out, Clear(ClearType::FromCursorDown))?;
        out.flush()
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        if self.tty {
            let _ = crossterm::execute!(
                std::io::stdout(),
                crossterm::cursor::Show,
                crossterm::terminal::LeaveAlternateScreen
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(mode: &str, term: i32, commit: Option<i32>, hp: &[i32]) -> Value {
        let mut m = BTreeMap::new();
        m.insert("mode".into(), Value::String(mode.into()));
        m.insert("term".into(), Value::Integer(term));
        m.insert("leader_id".into(), Value::Integer(0));
        m.insert(
            "commit_index".into(),
            commit.map_or(Value::Nil, Value::Integer),
        );
        m.insert("log_length".into(), Value::Integer(5));
        m.insert(
            "hp".into(),
            Value::Array(hp.iter().map(|h| Value::Integer(*h)).collect()),
        );
        m.insert("round".into(), Value::Integer(1));
        Value::Struct(m)
    }

    fn target(id: u64) -> Target {
        Target {
            id,
            name: format!("n{id}"),
            addr: format!("127.0.0.1:{}", 9000 + id),
            source: Source::Config,
        }
    }

    #[test]
    fn leader_lag_players_and_down_rows() {
        let rows = vec![
            row_from_answer(target(1), Ok(status("FOLLOWER", 3, Some(7), &[100, 70]))),
            row_from_answer(target(0), Ok(status("LEADER", 3, Some(10), &[100, 70]))),
            row_from_answer(target(3), Ok(status("LEADER", 2, Some(4), &[100, 100]))),
            row_from_answer(target(2), Ok(status("FOLLOWER", 3, None, &[]))),
            row_from_answer(
                target(4),
                Err(CallError::Unreachable("connection refused".into())),
            ),
        ];
        let v = finish(rows);
        assert_eq!(
            v.rows.iter().map(|r| r.id).collect::<Vec<_>>(),
            [0, 1, 2, 3, 4]
        );
        assert_eq!(v.leader_row().unwrap().id, 0, "the newest term's leader");
        let lags: Vec<Option<u64>> = v.rows.iter().map(|r| r.lag).collect();
        assert_eq!(lags, [Some(0), Some(3), Some(11), Some(6), None]);
        assert_eq!(v.players, [1, 2]);
        let t = table(&v, None);
        assert!(
            t.contains("P1") && t.contains("P2") && !t.contains("P3"),
            "{t}"
        );
        let down = t.lines().find(|l| l.contains("n4")).unwrap();
        assert!(down.contains("down"), "{down}");
        assert_eq!(
            down_lines(&v),
            ["n4 (127.0.0.1:9004): down: connection refused"]
        );
        assert_eq!(summary(&v), "5 members, 4 up; leader n0 (term 3)");
    }

    #[test]
    fn hp_columns_come_from_the_data() {
        let hp15: Vec<i32> = (1..=15).map(|p| 100 - p).collect();
        let mut s = status("LEADER", 1, Some(0), &hp15);
        let v = finish(vec![row_from_answer(target(0), Ok(s.clone()))]);
        assert_eq!(v.players, (1..=15).collect::<Vec<u32>>());
        assert!(table(&v, None).contains("P15"));
        // Keyed by id as a struct, too.
        if let Value::Struct(m) = &mut s {
            let mut hp = BTreeMap::new();
            hp.insert("12".into(), Value::Integer(40));
            hp.insert("3".into(), Value::Integer(0));
            m.insert("hp".into(), Value::Struct(hp));
        }
        let n = parse_status(&s).unwrap();
        assert_eq!(n.hp.into_iter().collect::<Vec<_>>(), [(3, 0), (12, 40)]);
    }

    #[test]
    fn members_not_in_the_file_are_asked_too() {
        let mut s = status("LEADER", 1, Some(0), &[100]);
        let member = |id: i32, addr: &str| {
            let mut e = BTreeMap::new();
            e.insert("id".into(), Value::Integer(id));
            e.insert("name".into(), Value::String(format!("m{id}")));
            e.insert("addr".into(), Value::String(addr.into()));
            e.insert("voter".into(), Value::Boolean(id != 7));
            Value::Struct(e)
        };
        if let Value::Struct(m) = &mut s {
            m.insert(
                "members".into(),
                Value::Array(vec![
                    member(0, "127.0.0.1:9000"),
                    member(7, "10.0.0.7:8000"),
                    member(8, "127.0.0.1:9000"),
                ]),
            );
        }
        let rows = vec![row_from_answer(target(0), Ok(s))];
        let extra = unknown_members(&rows);
        assert_eq!(extra.len(), 1, "{extra:?}");
        assert_eq!(extra[0].id, 7);
        assert_eq!(extra[0].source, Source::Members);
        let mut rows = rows;
        rows.push(row_from_answer(
            extra[0].clone(),
            Err(CallError::Unreachable("no answer within 300 ms".into())),
        ));
        let v = finish(rows);
        assert_eq!(v.rows[1].voter, Some(false));
        assert_eq!(v.rows[0].voter, Some(true));
        let j = json(&v, std::path::Path::new("c.toml"));
        assert_eq!(j["members"][1]["source"], "members");
        assert_eq!(j["members"][1]["up"], false);
        assert_eq!(j["members"][0]["hp"]["1"], 100);
        assert_eq!(j["leader"]["id"], 0);
    }

    #[test]
    fn bad_status_answers_are_reported_not_fatal() {
        let r = row_from_answer(target(0), Ok(Value::Integer(3)));
        assert!(!r.up && r.error.unwrap().contains("unreadable"));
        let r = row_from_answer(target(0), Err(CallError::Fault(1, "no such method".into())));
        assert!(r.error.unwrap().contains("no such method"));
    }

    #[test]
    fn the_hint_names_a_follower_and_a_living_player() {
        let rows = vec![
            row_from_answer(target(0), Ok(status("LEADER", 1, Some(3), &[0, 40, 100]))),
            row_from_answer(target(1), Ok(status("FOLLOWER", 1, Some(3), &[0, 40, 100]))),
        ];
        let v = finish(rows);
        assert_eq!(
            click_hint(&v, "raftian").unwrap(),
            "click: raftian click --addr 127.0.0.1:9001 2   (any node, any living player)"
        );
        let over = finish(vec![row_from_answer(
            target(0),
            Ok(status("LEADER", 1, Some(3), &[0, 40, 0])),
        )]);
        assert!(
            click_hint(&over, "r")
                .unwrap()
                .ends_with("click --addr 127.0.0.1:9000 new")
        );
    }

    #[test]
    fn intervals_are_checked() {
        assert_eq!(parse_interval("0.5"), Ok(0.5));
        assert!(parse_interval("0").is_err() && parse_interval("x").is_err());
    }
}
