//! Security policies, the seed's automatic countermeasures, as pure rules:
//! whether a destination's installed programs violate a policy, what its
//! row in the policy's countermeasure task should do about it, and the
//! command that removes a program an inventory listed.

use std::cmp::Ordering;

use wildmatch::WildMatch;

use super::state::WorkState;
use crate::clock::UnixTime;

/// Exit codes an uninstallation from the inventory counts as done: 0, a
/// restart asked for (1641) or needed (3010), and Windows Installer's
/// "this product is not installed" (1605): what was to go is gone.
pub const REMOVAL_SUCCESS_CODES: [i64; 4] = [0, 1605, 1641, 3010];

/// One installed program as an inventory lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Program<'a> {
    pub name: &'a str,
    pub version: Option<&'a str>,
    /// `registry`, `dpkg`, `rpm`, or `courier` (a package courier installed).
    pub source: &'a str,
    pub product_code: Option<&'a str>,
    pub uninstall: Option<&'a str>,
    pub quiet: bool,
}

/// What a policy asks, with the names it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule<'a> {
    /// A program named `name` (any case), at `min_version` or later.
    Mandatory {
        name: &'a str,
        min_version: Option<&'a str>,
    },
    /// No program whose name matches the glob `pattern` (any case).
    Prohibited { pattern: &'a str },
    /// The update package: its ProductCode registered, or a program of
    /// its name at its version or later.
    Update {
        name: &'a str,
        version: Option<&'a str>,
        product_code: Option<&'a str>,
    },
}

/// How a destination violates a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// In a sentence: "lacks X", "has X 1.0, below 2.0", "has X".
    pub reason: String,
    /// For a prohibited program: the index of the one to remove first
    /// (one that can be removed, where there is one).
    pub remove: Option<usize>,
}

/// Whether `programs` (a destination's inventory) violate `rule`; None
/// when they comply.
pub fn violation(rule: Rule, programs: &[Program]) -> Option<Violation> {
    match rule {
        Rule::Mandatory { name, min_version } => {
            let found: Vec<&Program> = programs
                .iter()
                .filter(|p| p.name.eq_ignore_ascii_case(name))
                .collect();
            if found.is_empty() {
                return Some(Violation {
                    reason: format!("lacks {name}"),
                    remove: None,
                });
            }
            let min = min_version?;
            if found.iter().any(|p| at_least(p.version, min)) {
                return None;
            }
            let have = found
                .iter()
                .filter_map(|p| p.version)
                .max_by(|a, b| compare_versions(a, b))
                .unwrap_or("of no version");
            Some(Violation {
                reason: format!("has {name} {have}, below {min}"),
                remove: None,
            })
        }
        Rule::Prohibited { pattern } => {
            let glob = WildMatch::new_case_insensitive(pattern);
            let matching: Vec<usize> = (0..programs.len())
                .filter(|i| glob.matches(programs[*i].name))
                .collect();
            let first = *matching.first()?;
            let remove = matching
                .iter()
                .copied()
                .find(|i| removal_command(&programs[*i]).is_ok())
                .unwrap_or(first);
            let p = &programs[remove];
            Some(Violation {
                reason: match p.version {
                    Some(v) => format!("has {} {v}", p.name),
                    None => format!("has {}", p.name),
                },
                remove: Some(remove),
            })
        }
        Rule::Update {
            name,
            version,
            product_code,
        } => {
            let has = programs.iter().any(|p| {
                let by_code = product_code
                    .is_some_and(|c| p.product_code.is_some_and(|pc| pc.eq_ignore_ascii_case(c)));
                let by_name = p.name.eq_ignore_ascii_case(name)
                    && version.is_none_or(|v| at_least(p.version, v));
                by_code || by_name
            });
            (!has).then(|| Violation {
                reason: match version {
                    Some(v) => format!("lacks update {name} {v}"),
                    None => format!("lacks update {name}"),
                },
                remove: None,
            })
        }
    }
}

/// Which programs can bear on `rule`, as a name test SQL can make: the
/// rule itself decides, over those.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameTest {
    /// Names equal to this one, any case (the name index).
    Is(String),
    /// Names equal to this one, or programs with this ProductCode.
    IsOrCode(String, String),
    /// SQL `LIKE` pattern with `\` as escape (ASCII names fold their case
    /// in LIKE as in the glob).
    Like(String),
    /// Every program (a pattern LIKE cannot say exactly).
    Any,
}

pub fn name_test(rule: Rule) -> NameTest {
    match rule {
        Rule::Mandatory { name, .. } => NameTest::Is(name.to_string()),
        Rule::Update {
            name,
            product_code: Some(code),
            ..
        } => NameTest::IsOrCode(name.to_string(), code.to_string()),
        Rule::Update { name, .. } => NameTest::Is(name.to_string()),
        Rule::Prohibited { pattern } if pattern.is_ascii() => {
            let mut like = String::with_capacity(pattern.len() + 4);
            for c in pattern.chars() {
                match c {
                    '*' => like.push('%'),
                    '?' => like.push('_'),
                    '%' | '_' | '\\' => {
                        like.push('\\');
                        like.push(c);
                    }
                    c => like.push(c),
                }
            }
            NameTest::Like(like)
        }
        Rule::Prohibited { .. } => NameTest::Any,
    }
}

/// Whether a program at `have` is at `min` or later; one without a
/// version is not.
fn at_least(have: Option<&str>, min: &str) -> bool {
    have.is_some_and(|v| compare_versions(v, min) != Ordering::Less)
}

/// Orders two version strings as people read them: runs of digits by
/// their value, runs of letters alphabetically (any case), separators
/// (`.`, `-`, `+`, `_`, `~`, `:`) only between runs; a number is later
/// than letters in the same place (1.0.1 > 1.0a), and a version that goes
/// on is later than its beginning (1.0.1 > 1.0).
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    let (mut x, mut y) = (runs(a), runs(b));
    loop {
        match (x.next(), y.next()) {
            (None, None) => return Ordering::Equal,
            (Some(_), None) => return Ordering::Greater,
            (None, Some(_)) => return Ordering::Less,
            (Some(p), Some(q)) => {
                let o = match (p.parse::<u128>(), q.parse::<u128>()) {
                    (Ok(m), Ok(n)) => m.cmp(&n),
                    (Ok(_), Err(_)) => Ordering::Greater,
                    (Err(_), Ok(_)) => Ordering::Less,
                    (Err(_), Err(_)) => p.to_lowercase().cmp(&q.to_lowercase()),
                };
                if o != Ordering::Equal {
                    return o;
                }
            }
        }
    }
}

/// The runs of digits and of other characters in `v`, separators left out.
fn runs(v: &str) -> impl Iterator<Item = &str> {
    let mut rest = v;
    std::iter::from_fn(move || {
        rest = rest.trim_start_matches(|c: char| !c.is_alphanumeric());
        let first = rest.chars().next()?;
        let digits = first.is_ascii_digit();
        let end = rest
            .find(|c: char| !c.is_alphanumeric() || c.is_ascii_digit() != digits)
            .unwrap_or(rest.len());
        let (run, tail) = rest.split_at(end);
        rest = tail;
        // Leading zeros say nothing of a number's value; a run too long
        // for u128 compares as text, after zeros are dropped.
        Some(if digits && run.len() > 1 {
            let t = run.trim_start_matches('0');
            if t.is_empty() { "0" } else { t }
        } else {
            run
        })
    })
}

/// The command that removes `p` without anyone at the computer: a
/// Windows Installer product by its ProductCode, else the program's quiet
/// uninstall string (a package manager's removal is one). Otherwise the
/// reason none can be run.
pub fn removal_command(p: &Program) -> Result<String, String> {
    if p.source == "courier" {
        return Err(format!(
            "{} was installed by a courier package: uninstall it with that package's uninstall task",
            p.name
        ));
    }
    if let Some(code) = p.product_code.filter(|c| is_product_code(c)) {
        return Ok(format!("msiexec /x {code} /qn /norestart"));
    }
    match p.uninstall.filter(|u| !u.trim().is_empty()) {
        Some(u) if p.quiet => Ok(u.to_string()),
        Some(u) => Err(format!(
            "{} gives no quiet uninstall command: its uninstall string '{u}' would wait for someone at the computer",
            p.name
        )),
        None => Err(format!("{} reports no uninstall command", p.name)),
    }
}

/// `{XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}`, hex digits in any case: the
/// only ProductCode put into a command.
pub fn is_product_code(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 38
        && b[0] == b'{'
        && b[37] == b'}'
        && b[1..37].iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// A destination's row in a policy's countermeasure task, as it stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row<'a> {
    pub state: WorkState,
    /// When the row last changed (for a finished row: when it ended).
    pub updated_at: UnixTime,
    /// The removal command it ran or runs (prohibited programs).
    pub command: Option<&'a str>,
}

/// What to do with a destination's countermeasure row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Add the destination to the task, waiting.
    Add,
    /// Start it again (a new attempt): it violates again, or still, with
    /// something new to try.
    Requeue,
    /// Its violation is fixed before the work started: finish it.
    Complete,
    Leave,
}

/// The countermeasure for one destination: `violating` now, with
/// `command` the removal to run (prohibited programs), its `row` in the
/// task if any, and when its inventory last changed. A finished row
/// starts again only when there is something new: another program to
/// remove, or an inventory taken after the row ended; so a countermeasure
/// whose work changes nothing does not run again and again.
pub fn step(
    violating: bool,
    command: Option<&str>,
    row: Option<Row>,
    inventory_at: Option<UnixTime>,
) -> Step {
    match (violating, row) {
        (true, None) => Step::Add,
        (true, Some(r)) if r.state.is_final() => {
            let other = command.is_some() && command != r.command;
            let newer = inventory_at.is_some_and(|at| at > r.updated_at);
            if other || newer {
                Step::Requeue
            } else {
                Step::Leave
            }
        }
        (false, Some(r)) if r.state == WorkState::Waiting => Step::Complete,
        _ => Step::Leave,
    }
}
