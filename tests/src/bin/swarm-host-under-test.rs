//! The `swarm-host` CLI as a binary of the test package, for the tests of
//! this package that start teammate processes or `swarm-host run` children
//! (`CARGO_BIN_EXE_<name>` only names a package's own binaries).
//!
//! With `SWARM_TEST_PEAK_RSS` set it prints, last on stderr, the peak
//! resident memory of the process (`peak-rss-kib: <n>`, from `VmHWM` in
//! `/proc/self/status`), so a test can bound what a run costs.

fn main() -> std::process::ExitCode {
    let code = swarm_host::cli::main();
    if std::env::var_os("SWARM_TEST_PEAK_RSS").is_some() {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        if let Some(kib) = status.lines().find_map(|l| l.strip_prefix("VmHWM:")) {
            eprintln!("peak-rss-kib: {}", kib.trim().trim_end_matches("kB").trim());
        }
    }
    code
}
