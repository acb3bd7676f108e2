//! The benchmarks of docs/BENCHMARKS.md: every row of issue 6, each printed
//! with its figure and its ratio to a baseline measured in the same run.
//!
//! ```sh
//! cargo bench -p swarm-tests --bench swarm              # every row
//! cargo bench -p swarm-tests --bench swarm -- mailbox   # rows by name
//! ```
//!
//! Rows: `spawn`, `roundtrip`, `throughput`, `density`, `overhead`, `e2e`,
//! `cold`. A plain `harness = false` binary, not criterion: the rows need
//! percentiles, ratios and child processes, and one table at the end.
//! The native-backend lines of rows 1 and 2 (headless process, tmux pane,
//! Unix socket) are in `native.rs`; they need the `swarm-host` binary
//! built in release mode (`cargo build --release -p swarm-host`).

mod cold;
mod common;
mod density;
mod e2e;
mod file_inbox;
mod native;
mod overhead;
mod roundtrip;
mod spawn;
mod stats;
mod throughput;

use stats::Line;

type Row = (&'static str, fn() -> Vec<Line>);

const ROWS: &[Row] = &[
    ("spawn", spawn::run),
    ("roundtrip", roundtrip::run),
    ("throughput", throughput::run),
    ("density", density::run),
    ("overhead", overhead::run),
    ("e2e", e2e::run),
    ("cold", cold::run),
];

fn main() {
    // `cargo bench` passes `--bench`; anything else not starting with `-`
    // selects rows.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    if let [mode, n] = args.as_slice()
        && mode == "density-child"
    {
        density::child_main(n.parse().expect("density-child <n>"));
        return;
    }
    if let [mode, socket] = args.as_slice()
        && mode == "echo-child"
    {
        native::echo_child(std::path::Path::new(socket));
        return;
    }
    let selected: Vec<&Row> =
        ROWS.iter().filter(|(name, _)| args.is_empty() || args.iter().any(|a| a == name)).collect();
    if selected.is_empty() {
        let names: Vec<_> = ROWS.iter().map(|(n, _)| *n).collect();
        eprintln!("no row named {args:?}; rows: {}", names.join(", "));
        std::process::exit(2);
    }
    println!("{}", machine());
    let mut all = Vec::new();
    for (name, row) in selected {
        eprintln!("running row `{name}` ...");
        let (started, cpu) = (std::time::Instant::now(), stats::CpuTime::now());
        let lines = row();
        for line in &lines {
            eprintln!("  {}", line.render());
        }
        eprintln!(
            "  ({name} took {:.1} s; the hypervisor took {:.1}% of the CPU time meanwhile)",
            started.elapsed().as_secs_f64(),
            stats::CpuTime::now().stolen_since(&cpu)
        );
        all.extend(lines);
    }
    println!("\n{}", Line::header());
    for line in &all {
        println!("{}", line.render());
    }
}

/// One line naming the machine: CPU model, cores, memory, kernel.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model =
        cpuinfo.lines().find_map(|l| l.strip_prefix("model name")).map(|m| m.trim_start_matches([' ', '\t', ':']));
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "machine: {} | {cores} cores available | {:.1} GiB RAM | Linux {}",
        model.unwrap_or("unknown CPU"),
        mem_kib as f64 / (1024.0 * 1024.0),
        kernel.trim()
    )
}
