//! The `swarm-host` binary; everything lives in the library's `cli` module.

fn main() -> std::process::ExitCode {
    swarm_host::cli::main()
}
