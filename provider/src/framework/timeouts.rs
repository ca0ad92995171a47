//! The `timeouts { create = "1h30m" }` block every long-running resource
//! gets: defaults per operation, durations parsed and range-checked at
//! validate time, so a typo fails `terraform validate`, not a 40-minute apply.

use std::time::Duration;

use super::dynamic::Value;
use super::path::AttrPath;
use super::schema::{Attribute, Block};
use super::{Diagnostics, Type};

/// Name of the block in configuration and state.
pub const BLOCK: &str = "timeouts";

/// The longest timeout accepted: a week is past any AWS operation's limit,
/// and anything longer is a typo (`400h` for `40h`?) or an overflow.
pub const MAX: Duration = Duration::from_secs(7 * 24 * 3600);

/// The operations a timeout can bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    /// Creating the object.
    Create,
    /// Reading it back (refresh, import).
    Read,
    /// Changing it in place.
    Update,
    /// Deleting it.
    Delete,
}

impl Operation {
    /// The attribute name in the block.
    pub fn name(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Read => "read",
            Operation::Update => "update",
            Operation::Delete => "delete",
        }
    }
}

/// Default timeouts of a resource; operations without one have no
/// attribute in the block.
#[derive(Clone, Debug, Default)]
pub struct TimeoutDefaults(Vec<(Operation, Duration)>);

impl TimeoutDefaults {
    /// No timeouts block.
    pub fn none() -> Self {
        TimeoutDefaults(Vec::new())
    }

    /// Adds an operation with its default.
    pub fn with(mut self, op: Operation, default: Duration) -> Self {
        self.0.push((op, default));
        self
    }

    /// Whether the resource has a timeouts block.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The default for `op`, if the resource bounds it.
    pub fn default_for(&self, op: Operation) -> Option<Duration> {
        self.0.iter().find(|(o, _)| *o == op).map(|(_, d)| *d)
    }

    /// The block's schema.
    pub fn block(&self) -> Block {
        self.0.iter().fold(
            Block::new("How long each operation may take, e.g. `45s`, `30m`, `1h30m`."),
            |b, (op, d)| {
                b.attr(
                    Attribute::optional(op.name(), Type::String)
                        .describe(&format!("Default `{}`.", format_duration(*d))),
                )
            },
        )
    }

    /// Checks the configured block (unknown values pass).
    pub fn validate(&self, config: &Value) -> Diagnostics {
        let mut d = Diagnostics::new();
        let block = config.attr(BLOCK);
        for (op, _) in &self.0 {
            if let Some(text) = block.attr(op.name()).as_str() {
                if let Err(why) = parse_duration(text) {
                    d.attr_error(
                        AttrPath::root(BLOCK).attr(op.name()),
                        "Invalid timeout",
                        format!("{text:?} {why}."),
                    );
                }
            }
        }
        d
    }

    /// The timeout for `op` under `config` (the resource's whole value):
    /// the configured one if valid, else the default.
    pub fn resolve(&self, config: &Value, op: Operation) -> Duration {
        let default = self.default_for(op).unwrap_or(MAX);
        config
            .attr(BLOCK)
            .attr(op.name())
            .as_str()
            .and_then(|t| parse_duration(t).ok())
            .unwrap_or(default)
    }
}

/// Parses a Go-style duration: one or more `<number><unit>` with units
/// `ms`, `s`, `m` and `h` and decimal fractions (`1.5h`, `1h30m`, `45s`).
/// Errors say what is wrong in words that follow the quoted input.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    const HINT: &str = "such as \"45s\", \"30m\" or \"1h30m\"";
    let s = text.trim();
    if s.is_empty() {
        return Err(format!("is empty; give a duration {HINT}"));
    }
    let mut total: u128 = 0; // milliseconds
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(num_len);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let unit_ms: u128 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "" => {
                return Err(format!(
                    "has a number without a unit; give a duration {HINT}"
                ))
            }
            other => {
                return Err(format!(
                    "has unknown unit {other:?}; use ms, s, m or h ({HINT})"
                ))
            }
        };
        total = total
            .checked_add(scaled(num, unit_ms).ok_or_else(|| format!("is not a duration {HINT}"))?)
            .ok_or_else(too_long)?;
        rest = tail;
    }
    let ms = u64::try_from(total).map_err(|_| too_long())?;
    let d = Duration::from_millis(ms);
    if d > MAX {
        return Err(too_long());
    }
    if d.is_zero() {
        return Err("is zero; a timeout must be positive".to_owned());
    }
    Ok(d)
}

fn too_long() -> String {
    format!("is longer than the maximum of {}", format_duration(MAX))
}

/// `digits[.digits]` times `unit_ms`, saturating far past [`MAX`] so that
/// overflow reads as "too long" rather than wrapping.
fn scaled(num: &str, unit_ms: u128) -> Option<u128> {
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    if int.is_empty() && frac.is_empty() || frac.contains('.') {
        return None;
    }
    let cap = u128::from(u64::MAX);
    let mut whole: u128 = 0;
    for b in int.bytes() {
        whole = (whole * 10 + u128::from(b - b'0')).min(cap);
    }
    // Digits past the twelfth are below a millisecond for every unit.
    let frac = frac.get(..frac.len().min(12)).unwrap_or_default();
    let mut frac_num: u128 = 0;
    for b in frac.bytes() {
        frac_num = frac_num * 10 + u128::from(b - b'0');
    }
    let frac_ms = frac_num * unit_ms / 10_u128.pow(frac.len() as u32);
    let ms = whole.saturating_mul(unit_ms).min(cap) + frac_ms;
    Some(ms)
}

/// `1h30m`, `45s`, `250ms`: the shortest form [`parse_duration`] reads back.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let secs = ms / 1000;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_style_durations() {
        assert_eq!(parse_duration("45s"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m0.5s"), Ok(Duration::from_millis(120_500)));
        assert_eq!(parse_duration("168h"), Ok(MAX));
    }

    #[test]
    fn refuses_malformed_zero_and_huge_values() {
        for bad in [
            "",
            "30",
            "10x",
            "h",
            "1..5h",
            "0s",
            "169h",
            "99999999999999999999999h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
        let e = parse_duration("184467440737095516150000h").unwrap_err();
        assert!(e.contains("longer than the maximum"), "{e}");
    }

    #[test]
    fn formats_what_it_parses() {
        for d in [45, 5400, 3600, 60, 1] {
            let d = Duration::from_secs(d);
            assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }
    }

    #[test]
    fn validate_points_at_the_attribute_and_resolve_falls_back() {
        let t = TimeoutDefaults::none()
            .with(Operation::Create, Duration::from_secs(600))
            .with(Operation::Delete, Duration::from_secs(60));
        let config = Value::object([(
            BLOCK,
            Value::object([
                ("create", Value::string("10y")),
                ("delete", Value::unknown()),
            ]),
        )]);
        let d = t.validate(&config);
        let paths: Vec<String> = d
            .iter()
            .filter_map(|d| d.path.as_ref().map(ToString::to_string))
            .collect();
        assert_eq!(paths, ["timeouts.create"]);
        assert_eq!(
            t.resolve(&config, Operation::Delete),
            Duration::from_secs(60)
        );
    }
}
