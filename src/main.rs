//! The `tiny-forge` binary: parse, build a single-threaded runtime, run one command, print the
//! error once, exit with the code the command chose.

mod cli;

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let args = cli::args::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(cli::exit::USAGE);
        }
    };
    let result = runtime.block_on(cli::run(args));
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    match result {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            eprintln!("error: {}", cli::one_line(f.error.as_ref()));
            ExitCode::from(f.code)
        }
    }
}
