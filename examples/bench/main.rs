//! The load tool behind `bench/run scale` and `bench/run store`
//! (docs/PERFORMANCE.md).
//!
//! ```text
//! bench scale --courier PATH --agents 1000,10000 [--sources 8] [--serve-arg ARG]…
//! bench store --destinations N [--clients C] [--rounds R]
//! ```
//!
//! Figures go to stdout as `ROW metric value unit [reference]` lines, which
//! `bench/*.sh` turn into bench-results JSON; progress goes to stderr.

mod scale;
mod store;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let out = match args.first().map(String::as_str) {
        Some("scale") => rt.block_on(scale::main(&args[1..])),
        Some("store") => rt.block_on(store::main(&args[1..])),
        _ => Err(anyhow::anyhow!(
            "usage: bench scale|store … (see examples/bench/main.rs)"
        )),
    };
    match out {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Prints one figure for the bench script.
pub fn row(metric: &str, value: f64, unit: &str, reference: Option<f64>) {
    match reference {
        Some(r) => println!("ROW {metric} {value:.3} {unit} {r:.3}"),
        None => println!("ROW {metric} {value:.3} {unit}"),
    }
}

/// The value of `--name V` among `args`.
pub fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

/// Every value of a repeatable `--name V`.
pub fn flags<'a>(args: &'a [String], name: &str) -> Vec<&'a str> {
    args.windows(2)
        .filter(|w| w[0] == name)
        .map(|w| w[1].as_str())
        .collect()
}

/// The `q`-quantile of `v` (sorted in place).
pub fn quantile(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let i = ((v.len() as f64 - 1.0) * q).round() as usize;
    v[i.min(v.len() - 1)]
}

pub fn median(v: &mut [f64]) -> f64 {
    quantile(v, 0.5)
}
