//! What the operating system says of a process's threads.

/// The scheduling policy (`SCHED_OTHER` 0, `SCHED_BATCH` 3, ...; field 41 of a task's `stat`)
/// of each thread of process `pid` whose name starts with `prefix`. Linux only.
pub fn thread_policies(pid: u32, prefix: &str) -> Vec<i32> {
    let mut policies = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let task = task.unwrap().path();
        let (Ok(comm), Ok(stat)) =
            (std::fs::read_to_string(task.join("comm")), std::fs::read_to_string(task.join("stat")))
        else {
            continue; // a thread that has just ended
        };
        if comm.starts_with(prefix) {
            // The fields after the command's closing parenthesis start at field 3.
            let rest = &stat[stat.rfind(')').unwrap() + 2..];
            policies.push(rest.split(' ').nth(41 - 3).unwrap().parse().unwrap());
        }
    }
    policies
}
