//! The `courier` binary: parses arguments and hands over to [`courier::cli`].

use std::process::ExitCode;

#[cfg(all(unix, not(target_env = "musl")))]
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    courier::cli::main()
}
