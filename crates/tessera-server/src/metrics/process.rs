//! The standard `process_*` metrics (the names every Prometheus client library uses), read
//! from `/proc` when scraped: nothing is counted on the request path.

use super::text::Text;

/// Appends the process metrics; on a system without `/proc` there are none.
pub(crate) fn render(out: &mut Text) {
    let Some(stat) = std::fs::read_to_string("/proc/self/stat").ok() else { return };
    // Fields after the command name, which is in parentheses and may contain spaces.
    let Some((_, rest)) = stat.rsplit_once(')') else { return };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // proc(5) numbers fields from 1 with the pid; `rest` starts at field 3 (state).
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<f64>().ok());
    // SAFETY: sysconf only reads a system constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    // SAFETY: as above.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as f64;
    if let (Some(utime), Some(stime)) = (field(14), field(15)) {
        out.counter("process_cpu_seconds_total", "User and system CPU time spent, seconds.", (utime + stime) / ticks);
    }
    if let Some(rss) = field(24) {
        out.gauge("process_resident_memory_bytes", "Resident memory size, bytes.", rss * page);
    }
    if let Some(vsize) = field(23) {
        out.gauge("process_virtual_memory_bytes", "Virtual memory size, bytes.", vsize);
    }
    if let Some(threads) = field(20) {
        out.gauge("process_threads", "OS threads in the process.", threads);
    }
    let boot = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("btime ")?.trim().parse::<f64>().ok()));
    if let (Some(boot), Some(start)) = (boot, field(22)) {
        out.gauge("process_start_time_seconds", "Start time since the Unix epoch, seconds.", boot + start / ticks);
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        out.gauge("process_open_fds", "Open file descriptors.", fds.count() as f64);
    }
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit only writes the struct passed by pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
        out.gauge("process_max_fds", "Limit on open file descriptors.", lim.rlim_cur as f64);
    }
}
