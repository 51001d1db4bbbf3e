//! Rollouts in rings: a task's destinations split into rings that start
//! one after the other (`--rings 5,25%,100%`), the next only once the
//! current one has finished and its gate holds (`--gate failures=10%`,
//! `--gate signature=new`). A gate that trips pauses the task, with why.
//!
//! Invariant: pure; the service counts, these decide.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where a ring of a task stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RingState {
    /// Every destination of it has finished.
    Done,
    /// Started, with work left.
    Running,
    /// Started, with work left, and the task is paused.
    Paused,
    /// Not started.
    Waiting,
}

impl RingState {
    pub fn as_str(self) -> &'static str {
        match self {
            RingState::Done => "done",
            RingState::Running => "running",
            RingState::Paused => "paused",
            RingState::Waiting => "waiting",
        }
    }
}

/// The most rings a task may have.
pub const MAX_RINGS: usize = 10;

/// One ring's size: a count of destinations, or a percentage of all of
/// them; sizes are cumulative (`5,25%,100%`: the first 5, then up to a
/// quarter of all, then the rest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    Count(u64),
    Percent(u8),
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Size::Count(n) => write!(f, "{n}"),
            Size::Percent(p) => write!(f, "{p}%"),
        }
    }
}

/// Parses `5,25%,100%`; the error is one line naming what is wrong.
pub fn parse_rings(spec: &str) -> Result<Vec<Size>, String> {
    let bad = |why: String| format!("rings '{spec}': {why}");
    let sizes: Vec<Size> = spec
        .split(',')
        .map(|part| {
            let p = part.trim();
            let size = match p.strip_suffix('%') {
                Some(n) => match n.trim().parse::<u8>() {
                    Ok(v @ 1..=100) => Size::Percent(v),
                    _ => return Err(bad(format!("'{p}' is not a percentage from 1% to 100%"))),
                },
                None => match p.parse::<u64>() {
                    Ok(v) if v > 0 => Size::Count(v),
                    _ => {
                        return Err(bad(format!(
                            "'{p}' is neither a count of destinations nor a percentage"
                        )));
                    }
                },
            };
            Ok(size)
        })
        .collect::<Result<_, _>>()?;
    if sizes.len() < 2 {
        return Err(bad("give at least two rings, e.g. 5,100%".into()));
    }
    if sizes.len() > MAX_RINGS {
        return Err(bad(format!("at most {MAX_RINGS} rings")));
    }
    Ok(sizes)
}

/// The ring of each of `n` destinations in order: ring `i` takes them up
/// to its cumulative size; the last ring takes all that remain. A ring
/// that would be empty (5 then 1% of 100) is empty.
pub fn assign(sizes: &[Size], n: usize) -> Vec<usize> {
    let mut ends = Vec::with_capacity(sizes.len());
    let mut last = 0usize;
    for (i, s) in sizes.iter().enumerate() {
        let end = if i + 1 == sizes.len() {
            n
        } else {
            match *s {
                Size::Count(c) => usize::try_from(c).unwrap_or(usize::MAX),
                Size::Percent(p) => (n * p as usize).div_ceil(100),
            }
        };
        last = end.clamp(last, n);
        ends.push(last);
    }
    (0..n)
        .map(|k| ends.iter().position(|e| k < *e).unwrap_or(sizes.len() - 1))
        .collect()
}

/// When a ring may be followed by the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// At most this percentage of the finished destinations failed.
    FailureRate(u8),
    /// At most this many failed.
    Failures(u64),
    /// No failure of the last ring has a cause the earlier rings had not
    /// shown (in the first ring, any failure is new).
    NewSignature,
}

impl fmt::Display for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Gate::FailureRate(p) => write!(f, "failures={p}%"),
            Gate::Failures(n) => write!(f, "failures={n}"),
            Gate::NewSignature => write!(f, "signature=new"),
        }
    }
}

pub fn parse_gate(spec: &str) -> Result<Gate, String> {
    let bad = || format!("gate '{spec}': use failures=N%, failures=N or signature=new");
    let (k, v) = spec.split_once('=').ok_or_else(bad)?;
    match (k.trim(), v.trim()) {
        ("signature", "new") => Ok(Gate::NewSignature),
        ("failures", v) => match v.strip_suffix('%') {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= 100)
                .map(Gate::FailureRate)
                .ok_or_else(bad),
            None => v.parse::<u64>().map(Gate::Failures).map_err(|_| bad()),
        },
        _ => Err(bad()),
    }
}

/// What a gate is judged on, over the rings opened so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    pub finished: u64,
    pub failed: u64,
    /// Causes of the last ring's failures not seen in earlier rings.
    pub new_causes: Vec<String>,
}

/// Ok when the next ring may start; else why the gate trips.
pub fn check(gate: Option<Gate>, ring: usize, o: &Outcome) -> Result<(), String> {
    let after = format!("after ring {}", ring + 1);
    match gate {
        None => Ok(()),
        Some(g @ Gate::FailureRate(p)) => {
            let rate = (o.failed * 100).checked_div(o.finished).unwrap_or(0);
            // Integer percentages round down: 1 of 9 is 11 %, over 10 %.
            if o.failed * 100 > u64::from(p) * o.finished {
                Err(format!(
                    "gate {g} tripped {after}: {} of {} failed ({rate}%)",
                    o.failed, o.finished
                ))
            } else {
                Ok(())
            }
        }
        Some(g @ Gate::Failures(n)) if o.failed > n => Err(format!(
            "gate {g} tripped {after}: {} of {} failed",
            o.failed, o.finished
        )),
        Some(Gate::Failures(_)) => Ok(()),
        Some(g @ Gate::NewSignature) => match o.new_causes.first() {
            Some(c) => Err(format!(
                "gate {g} tripped {after}: a new failure cause, {c}"
            )),
            None => Ok(()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rings_are_cumulative_and_the_last_takes_the_rest() {
        let r = parse_rings("5, 25%,100%").unwrap();
        assert_eq!(r, [Size::Count(5), Size::Percent(25), Size::Percent(100)]);
        let a = assign(&r, 40);
        let count = |i| a.iter().filter(|x| **x == i).count();
        assert_eq!((count(0), count(1), count(2)), (5, 5, 30));
        // Fewer destinations than the first ring: all in it.
        assert_eq!(assign(&r, 3), [0, 0, 0]);
        // A later ring smaller than an earlier one is empty.
        let a = assign(&parse_rings("10,1%,100%").unwrap(), 20);
        assert_eq!(a.iter().filter(|x| **x == 1).count(), 0);
        assert_eq!(a.iter().filter(|x| **x == 2).count(), 10);
        // "2,50%" ends with the rest, whatever its size says.
        assert_eq!(
            assign(&parse_rings("2,50%").unwrap(), 6),
            [0, 0, 1, 1, 1, 1]
        );
        for bad in [
            "",
            "5",
            "0,100%",
            "5,0%",
            "5,101%",
            "5,x",
            "1,2,3,4,5,6,7,8,9,10,11",
        ] {
            let e = parse_rings(bad).unwrap_err();
            assert!(e.starts_with(&format!("rings '{bad}': ")), "{e}");
        }
    }

    #[test]
    fn gates_trip_on_too_many_failures_or_a_new_cause() {
        let g = parse_gate("failures=10%").unwrap();
        assert_eq!(g.to_string(), "failures=10%");
        let o = |finished, failed| Outcome {
            finished,
            failed,
            new_causes: Vec::new(),
        };
        assert_eq!(check(Some(g), 0, &o(10, 1)), Ok(()));
        assert_eq!(
            check(Some(g), 0, &o(9, 1)),
            Err("gate failures=10% tripped after ring 1: 1 of 9 failed (11%)".into())
        );
        assert_eq!(
            check(Some(parse_gate("failures=0").unwrap()), 1, &o(5, 0)),
            Ok(())
        );
        assert!(check(Some(parse_gate("failures=0").unwrap()), 1, &o(5, 1)).is_err());
        let new = Outcome {
            new_causes: vec!["exit 1 · error: disk full".into()],
            ..o(5, 1)
        };
        assert_eq!(
            check(Some(Gate::NewSignature), 1, &new),
            Err("gate signature=new tripped after ring 2: a new failure cause, exit 1 · error: disk full".into())
        );
        assert_eq!(check(Some(Gate::NewSignature), 1, &o(5, 1)), Ok(()));
        assert_eq!(check(None, 0, &o(1, 1)), Ok(()));
        for bad in [
            "failures",
            "failures=x%",
            "failures=101%",
            "signature=old",
            "x=1",
        ] {
            assert!(parse_gate(bad).unwrap_err().starts_with("gate '"), "{bad}");
        }
    }
}
