//! The `courier` binary: parses arguments and hands over to [`courier::cli`].

use std::process::ExitCode;

fn main() -> ExitCode {
    courier::cli::main()
}
