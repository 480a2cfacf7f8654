//! The `switchyard` binary: hand over to [`switchyard::cli`], which sets up logging from
//! its flags and config and runs the command.

fn main() -> std::process::ExitCode {
    switchyard::cli::main()
}
