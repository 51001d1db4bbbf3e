//! The `courier-agent` binary: the agent alone, with `courier agent`'s
//! arguments (parsed by the same definitions in [`courier::cli`]). Built
//! without the server and the console, it costs a destination less memory.

use std::process::ExitCode;

fn main() -> ExitCode {
    courier::cli::agent_main()
}
