//! CPU and RSS sampling from `/proc`.

use std::path::Path;
use std::time::Instant;

/// Linux's USER_HZ, the unit of /proc CPU times; 100 if the system will not
/// say.
pub(super) fn clk_tck() -> f64 {
    #[cfg(unix)]
    {
        // SAFETY: sysconf only reads a configuration value; it has no
        // preconditions and touches no memory of ours.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        if ticks > 0 {
            return ticks as f64;
        }
    }
    100.0
}

/// utime + stime of a process, in clock ticks.
pub(super) fn cpu_ticks(pid: u32) -> Option<u64> {
    proc_ticks(Path::new(&format!("/proc/{pid}/stat")))
}

/// utime + stime of a /proc stat file (a process's or a thread's).
fn proc_ticks(stat: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(stat).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After "pid (comm)": state is field 3, utime 14, stime 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// CPU ticks of every thread of this process but the calling one.
pub(super) fn other_threads_ticks() -> Option<u64> {
    let me = std::fs::read_link("/proc/thread-self").ok()?;
    let my_tid = me.file_name()?.to_owned();
    let mut total = 0;
    for entry in std::fs::read_dir("/proc/self/task").ok()? {
        let entry = entry.ok()?;
        if entry.file_name() == my_tid {
            continue;
        }
        total += proc_ticks(&entry.path().join("stat")).unwrap_or(0);
    }
    Some(total)
}

/// A `/proc/<pid>/status` field in kB (VmRSS, VmHWM).
pub(super) fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// Busy and total jiffies of the whole machine (`/proc/stat`).
pub(super) fn machine_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4)?;
    Some((total - idle, total))
}

/// Cores kept busy on the whole machine between two `machine_ticks`.
pub(super) fn machine_cores(before: Option<(u64, u64)>, cores: f64) -> f64 {
    match (before, machine_ticks()) {
        (Some((b0, t0)), Some((b1, t1))) if t1 > t0 => (b1 - b0) as f64 / (t1 - t0) as f64 * cores,
        _ => 0.0,
    }
}

pub(super) fn cores() -> f64 {
    std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64)
}

pub(super) fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

/// Nanoseconds on a CPU of one task (`/proc/.../schedstat`, first field:
/// the scheduler's own accounting, not sampled in clock ticks).
fn schedstat_ns(path: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// Nanoseconds on a CPU of every live thread of process `pid`, summed
/// over `/proc/<pid>/task/*/schedstat` (`/proc/<pid>/schedstat` alone is
/// the main thread only). Falls back to utime + stime in clock ticks where
/// the kernel has no schedstat. Threads that exited between two samples
/// are missed (a node's threads live as long as it does).
pub(super) fn cpu_ns(pid: u32) -> Option<u64> {
    let tasks = Path::new("/proc").join(pid.to_string()).join("task");
    let mut total = 0;
    let mut any = false;
    if let Ok(dir) = std::fs::read_dir(&tasks) {
        for entry in dir.flatten() {
            if let Some(ns) = schedstat_ns(&entry.path().join("schedstat")) {
                total += ns;
                any = true;
            }
        }
    }
    if any {
        return Some(total);
    }
    cpu_ticks(pid).map(|t| (t as f64 / clk_tck() * 1e9) as u64)
}

/// CPU use of processes between two samples.
pub(super) struct CpuSample {
    at: Instant,
    ns: Vec<Option<u64>>,
}

impl CpuSample {
    pub(super) fn take(pids: &[Option<u32>]) -> Self {
        CpuSample {
            at: Instant::now(),
            ns: pids.iter().map(|p| p.and_then(cpu_ns)).collect(),
        }
    }

    /// CPU nanoseconds per process since `self`, and the wall-clock
    /// seconds between the samples.
    pub(super) fn ns_since(&self, pids: &[Option<u32>]) -> (Vec<Option<u64>>, f64) {
        let secs = self.at.elapsed().as_secs_f64().max(1e-6);
        let used = pids
            .iter()
            .zip(&self.ns)
            .map(|(p, before)| Some(p.and_then(cpu_ns)?.saturating_sub((*before)?)))
            .collect();
        (used, secs)
    }

    /// Percent of one core per process since `self`.
    pub(super) fn percent_since(&self, pids: &[Option<u32>]) -> Vec<Option<f64>> {
        let (used, secs) = self.ns_since(pids);
        used.iter()
            .map(|u| u.map(|ns| ns as f64 / 1e9 / secs * 100.0))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_is_read() {
        assert!(proc_ticks(Path::new("/proc/self/stat")).is_some());
        assert!(other_threads_ticks().is_some());
        assert_eq!(proc_ticks(Path::new("/nonexistent/stat")), None);
    }

    #[test]
    fn schedstat_counts_nanoseconds_on_cpu() {
        let me = std::process::id();
        let a = cpu_ns(me).unwrap();
        // Burn a little CPU: the count must grow by about as much.
        let t = Instant::now();
        let mut x = 0u64;
        while t.elapsed().as_millis() < 20 {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let b = cpu_ns(me).unwrap();
        assert!(b > a + 5_000_000, "{a} -> {b}");
        assert_eq!(cpu_ns(u32::MAX), None);
    }

    #[test]
    fn clock_tick_is_positive() {
        assert!(clk_tck() > 0.0);
    }
}
