//! `kumo-agent`: runs function instances on this node for kumod.

fn main() -> std::process::ExitCode {
    // The sandbox init re-execs this binary; it must run before any thread exists.
    if std::env::args().nth(1).as_deref() == Some(kumo_agent::sandbox::INIT_SUBCOMMAND) {
        kumo_agent::sandbox::init_main();
    }
    kumo_agent::cli::main()
}
