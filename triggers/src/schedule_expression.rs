//! AWS EventBridge schedule expressions: `cron(...)` and `rate(...)`.
//!
//! All times are UTC with one-minute granularity for cron expressions. Rate
//! expressions fire at `anchor + k * period` for `k >= 1`, where the anchor is
//! the creation time of the trigger.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Timelike, Utc};

/// Largest accepted value of a `rate(...)` expression.
const MAX_RATE_VALUE: u32 = 1_000_000;
/// First year a cron expression may name.
const MIN_YEAR: u32 = 1970;
/// Last year a cron expression may name (and the search horizon).
const MAX_YEAR: u32 = 2199;

/// A parsed schedule expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScheduleExpression {
    /// A `cron(...)` expression.
    Cron(CronSchedule),
    /// A `rate(...)` expression.
    Rate(RateSchedule),
}

/// A parsed `cron(Minutes Hours Day-of-month Month Day-of-week Year)` expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronSchedule {
    /// Allowed minutes, indexed by value (0-59).
    minutes: Vec<bool>,
    /// Allowed hours, indexed by value (0-23).
    hours: Vec<bool>,
    /// Allowed months, indexed by value (1-12).
    months: Vec<bool>,
    /// Allowed years, indexed by `year - MIN_YEAR`.
    years: Vec<bool>,
    /// The day rule (exactly one of day-of-month / day-of-week is used).
    days: DayRule,
}

/// Which of the two day fields is in effect, and its rule.
#[derive(Debug, Clone, PartialEq, Eq)]
enum DayRule {
    Month(DayOfMonthRule),
    Week(DayOfWeekRule),
}

/// The day-of-month field.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DayOfMonthRule {
    /// Plain days of the month, indexed by value (1-31).
    days: Vec<bool>,
    /// `L`: the last day of the month.
    last: bool,
    /// `LW`: the last weekday (Mon-Fri) of the month.
    last_weekday: bool,
    /// `nW`: the weekday nearest day n.
    nearest_weekday: Vec<u32>,
}

/// The day-of-week field (1 = Sunday ... 7 = Saturday).
#[derive(Debug, Clone, PartialEq, Eq)]
struct DayOfWeekRule {
    /// Plain days of the week, indexed by value (1-7).
    days: Vec<bool>,
    /// `nL`: the last weekday n of the month.
    last_of: Vec<u32>,
    /// `n#k`: the k-th weekday n of the month, as (n, k).
    nth: Vec<(u32, u32)>,
}

/// A parsed `rate(value unit)` expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateSchedule {
    /// How many units make up one period (>= 1).
    pub value: u32,
    /// The unit of the period.
    pub unit: RateUnit,
}

/// The unit of a `rate(...)` expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateUnit {
    /// Sixty seconds.
    Minute,
    /// Sixty minutes.
    Hour,
    /// Twenty-four hours.
    Day,
}

impl RateUnit {
    fn seconds(self) -> i64 {
        match self {
            RateUnit::Minute => 60,
            RateUnit::Hour => 3_600,
            RateUnit::Day => 86_400,
        }
    }
}

/// Why a schedule expression could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid schedule expression {expression:?}: {reason}")]
pub struct ScheduleError {
    /// The expression as given.
    pub expression: String,
    /// A human-readable explanation.
    pub reason: String,
}

/// Parses an EventBridge schedule expression (`cron(...)` or `rate(...)`).
pub fn parse(expression: &str) -> Result<ScheduleExpression, ScheduleError> {
    parse_inner(expression).map_err(|reason| ScheduleError {
        expression: expression.to_string(),
        reason,
    })
}

fn parse_inner(expression: &str) -> Result<ScheduleExpression, String> {
    let (kind, rest) = if let Some(rest) = expression.strip_prefix("cron(") {
        ("cron", rest)
    } else if let Some(rest) = expression.strip_prefix("rate(") {
        ("rate", rest)
    } else {
        return Err("expected cron(...) or rate(...)".to_string());
    };
    let inner = rest
        .strip_suffix(')')
        .ok_or_else(|| "missing closing parenthesis".to_string())?;
    if kind == "cron" {
        parse_cron(inner).map(ScheduleExpression::Cron)
    } else {
        parse_rate(inner).map(ScheduleExpression::Rate)
    }
}

fn parse_rate(inner: &str) -> Result<RateSchedule, String> {
    const SHAPE: &str = "expected rate(value unit), e.g. rate(5 minutes)";
    let (number, rest) = inner.split_once(' ').ok_or_else(|| SHAPE.to_string())?;
    let unit_text = rest.trim_start_matches(' ');
    if number.is_empty() || unit_text.is_empty() || unit_text.contains(char::is_whitespace) {
        return Err(SHAPE.to_string());
    }
    if !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("rate value {number:?} is not a positive integer"));
    }
    let value = match number.parse::<u32>() {
        Ok(v) if v <= MAX_RATE_VALUE => v,
        _ => {
            return Err(format!(
                "rate value {number} is too large (maximum {MAX_RATE_VALUE})"
            ))
        }
    };
    if value == 0 {
        return Err("rate value must be at least 1".to_string());
    }
    let (unit, plural) = match unit_text {
        "minute" => (RateUnit::Minute, false),
        "minutes" => (RateUnit::Minute, true),
        "hour" => (RateUnit::Hour, false),
        "hours" => (RateUnit::Hour, true),
        "day" => (RateUnit::Day, false),
        "days" => (RateUnit::Day, true),
        other => {
            return Err(format!(
                "unknown rate unit {other:?} (expected minute(s), hour(s) or day(s))"
            ))
        }
    };
    let singular_name = unit_text.trim_end_matches('s');
    if value == 1 && plural {
        return Err(format!(
            "use the singular unit {singular_name:?} when the value is 1"
        ));
    }
    if value > 1 && !plural {
        return Err(format!(
            "use the plural unit \"{singular_name}s\" when the value is greater than 1"
        ));
    }
    Ok(RateSchedule { value, unit })
}

/// Static description of one cron field.
struct FieldSpec {
    name: &'static str,
    min: u32,
    max: u32,
    /// Names for `min`, `min + 1`, ... (upper case).
    names: &'static [&'static str],
}

const MINUTES: FieldSpec = FieldSpec {
    name: "minutes",
    min: 0,
    max: 59,
    names: &[],
};
const HOURS: FieldSpec = FieldSpec {
    name: "hours",
    min: 0,
    max: 23,
    names: &[],
};
const DAY_OF_MONTH: FieldSpec = FieldSpec {
    name: "day-of-month",
    min: 1,
    max: 31,
    names: &[],
};
const MONTH: FieldSpec = FieldSpec {
    name: "month",
    min: 1,
    max: 12,
    names: &[
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ],
};
const DAY_OF_WEEK: FieldSpec = FieldSpec {
    name: "day-of-week",
    min: 1,
    max: 7,
    names: &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
};
const YEAR: FieldSpec = FieldSpec {
    name: "year",
    min: MIN_YEAR,
    max: MAX_YEAR,
    names: &[],
};

fn parse_cron(inner: &str) -> Result<CronSchedule, String> {
    let fields: Vec<&str> = inner.split_whitespace().collect();
    if fields.len() != 6 {
        return Err(format!(
            "expected 6 fields (minutes hours day-of-month month day-of-week year), found {}",
            fields.len()
        ));
    }
    let (dom, dow) = (fields[2], fields[4]);
    if (dom == "?") == (dow == "?") {
        return Err("exactly one of day-of-month and day-of-week must be ?".to_string());
    }
    let minutes = parse_set(fields[0], &MINUTES)?;
    let hours = parse_set(fields[1], &HOURS)?;
    let dom_rule = if dom == "?" {
        None
    } else {
        Some(parse_day_of_month(dom)?)
    };
    let months = parse_set(fields[3], &MONTH)?;
    let days = match dom_rule {
        Some(rule) => DayRule::Month(rule),
        None => DayRule::Week(parse_day_of_week(dow)?),
    };
    let year_set = parse_set(fields[5], &YEAR)?;
    let years = year_set
        .get(MIN_YEAR as usize..)
        .unwrap_or_default()
        .to_vec();
    Ok(CronSchedule {
        minutes,
        hours,
        months,
        years,
        days,
    })
}

/// Parses a single value (number or name) and checks its range.
fn parse_value(token: &str, spec: &FieldSpec) -> Result<u32, String> {
    if token.is_empty() {
        return Err(format!("{}: empty value", spec.name));
    }
    let value = if token.bytes().all(|b| b.is_ascii_digit()) {
        token.parse::<u32>().map_err(|_| {
            format!(
                "{}: {token} is outside {}-{}",
                spec.name, spec.min, spec.max
            )
        })?
    } else {
        let upper = token.to_ascii_uppercase();
        match spec.names.iter().position(|n| *n == upper) {
            Some(index) => spec.min + index as u32,
            None => return Err(format!("{}: unknown value {token:?}", spec.name)),
        }
    };
    if value < spec.min || value > spec.max {
        return Err(format!(
            "{}: {value} is outside {}-{}",
            spec.name, spec.min, spec.max
        ));
    }
    Ok(value)
}

/// Parses a comma-separated list of values, ranges and steps into a set
/// indexed by value (length `spec.max + 1`).
fn parse_set(field: &str, spec: &FieldSpec) -> Result<Vec<bool>, String> {
    let mut set = vec![false; spec.max as usize + 1];
    for item in field.split(',') {
        add_item(item, spec, &mut set)?;
    }
    Ok(set)
}

/// Adds one list element (`*`, `a`, `a-b`, each optionally `/step`) to `set`.
fn add_item(item: &str, spec: &FieldSpec, set: &mut [bool]) -> Result<(), String> {
    if item.is_empty() {
        return Err(format!("{}: empty list element", spec.name));
    }
    let (base, step) = match item.split_once('/') {
        Some((base, step)) => {
            let parsed = if !step.is_empty() && step.bytes().all(|b| b.is_ascii_digit()) {
                step.parse::<u32>().ok()
            } else {
                None
            };
            match parsed {
                Some(s) if s >= 1 => (base, Some(s)),
                _ => {
                    return Err(format!(
                        "{}: step {step:?} must be an integer of at least 1",
                        spec.name
                    ))
                }
            }
        }
        None => (item, None),
    };
    let (start, end) = if base == "*" {
        (spec.min, spec.max)
    } else if let Some((a, b)) = base.split_once('-') {
        (parse_value(a, spec)?, parse_value(b, spec)?)
    } else {
        let a = parse_value(base, spec)?;
        (a, if step.is_some() { spec.max } else { a })
    };
    let width = spec.max - spec.min + 1;
    // Number of values from start to end, wrapping past max back to min.
    let len = if end >= start {
        end - start + 1
    } else {
        width - (start - end) + 1
    };
    let step = step.unwrap_or(1) as usize;
    for offset in (0..len).step_by(step) {
        let value = spec.min + (start - spec.min + offset) % width;
        if let Some(slot) = set.get_mut(value as usize) {
            *slot = true;
        }
    }
    Ok(())
}

fn parse_day_of_month(field: &str) -> Result<DayOfMonthRule, String> {
    let mut rule = DayOfMonthRule {
        days: vec![false; 32],
        last: false,
        last_weekday: false,
        nearest_weekday: Vec::new(),
    };
    for item in field.split(',') {
        if item == "L" {
            rule.last = true;
        } else if item == "LW" {
            rule.last_weekday = true;
        } else if let Some(day) = item.strip_suffix('W').filter(|d| !d.is_empty()) {
            if !day.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("day-of-month: invalid weekday rule {item:?}"));
            }
            rule.nearest_weekday.push(parse_value(day, &DAY_OF_MONTH)?);
        } else {
            add_item(item, &DAY_OF_MONTH, &mut rule.days)?;
        }
    }
    Ok(rule)
}

fn parse_day_of_week(field: &str) -> Result<DayOfWeekRule, String> {
    let mut rule = DayOfWeekRule {
        days: vec![false; 8],
        last_of: Vec::new(),
        nth: Vec::new(),
    };
    for item in field.split(',') {
        if item == "L" {
            rule.days[7] = true;
        } else if let Some((day, nth)) = item.split_once('#') {
            let day = parse_value(day, &DAY_OF_WEEK)?;
            let k = if !nth.is_empty() && nth.bytes().all(|b| b.is_ascii_digit()) {
                nth.parse::<u32>().ok().filter(|k| (1..=5).contains(k))
            } else {
                None
            };
            let k = k.ok_or_else(|| format!("day-of-week: occurrence {nth:?} is outside 1-5"))?;
            rule.nth.push((day, k));
        } else if let Some(day) = item.strip_suffix('L').filter(|d| !d.is_empty()) {
            rule.last_of.push(parse_value(day, &DAY_OF_WEEK)?);
        } else {
            add_item(item, &DAY_OF_WEEK, &mut rule.days)?;
        }
    }
    Ok(rule)
}

/// Number of days in `month` of `year`.
fn days_in_month(year: i32, month: u32) -> u32 {
    let (ny, nm) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    match (
        NaiveDate::from_ymd_opt(ny, nm, 1),
        NaiveDate::from_ymd_opt(year, month, 1),
    ) {
        (Some(next), Some(first)) => (next - first).num_days() as u32,
        _ => 0,
    }
}

/// Day of week of `day` (1 = Sunday ... 7 = Saturday) given that of the 1st.
fn weekday_of(first_weekday: u32, day: u32) -> u32 {
    (first_weekday - 1 + day - 1) % 7 + 1
}

impl DayRule {
    /// The set of matching days (index 1..=31) in the given month.
    fn matching_days(&self, year: i32, month: u32) -> [bool; 32] {
        let mut out = [false; 32];
        let dim = days_in_month(year, month);
        let Some(first) = NaiveDate::from_ymd_opt(year, month, 1) else {
            return out;
        };
        let first_wd = first.weekday().number_from_sunday();
        match self {
            DayRule::Month(rule) => {
                for day in 1..=dim {
                    out[day as usize] = rule.days.get(day as usize).copied().unwrap_or(false);
                }
                if rule.last {
                    out[dim as usize] = true;
                }
                if rule.last_weekday {
                    let day = match weekday_of(first_wd, dim) {
                        7 => dim - 1,
                        1 => dim - 2,
                        _ => dim,
                    };
                    out[day as usize] = true;
                }
                for &n in &rule.nearest_weekday {
                    if n > dim {
                        continue;
                    }
                    let day = match weekday_of(first_wd, n) {
                        7 if n == 1 => 3,
                        7 => n - 1,
                        1 if n == dim => n - 2,
                        1 => n + 1,
                        _ => n,
                    };
                    out[day as usize] = true;
                }
            }
            DayRule::Week(rule) => {
                for day in 1..=dim {
                    let wd = weekday_of(first_wd, day);
                    out[day as usize] = rule.days.get(wd as usize).copied().unwrap_or(false);
                }
                for &n in &rule.last_of {
                    for day in (dim - 6)..=dim {
                        if weekday_of(first_wd, day) == n {
                            out[day as usize] = true;
                        }
                    }
                }
                for &(n, k) in &rule.nth {
                    let day = 1 + (n + 7 - first_wd) % 7 + 7 * (k - 1);
                    if day <= dim {
                        out[day as usize] = true;
                    }
                }
            }
        }
        out
    }
}

impl CronSchedule {
    /// The first matching minute at or after `start` (seconds already zero).
    fn first_at_or_after(&self, start: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let start_year = u32::try_from(start.year()).ok()?;
        if start_year > MAX_YEAR {
            return None;
        }
        let first_year = start_year.max(MIN_YEAR);
        let mut at_start = first_year == start_year;
        for year in first_year..=MAX_YEAR {
            if !self
                .years
                .get((year - MIN_YEAR) as usize)
                .copied()
                .unwrap_or(false)
            {
                at_start = false;
                continue;
            }
            let first_month = if at_start { start.month() } else { 1 };
            for month in first_month..=12 {
                if !self.months[month as usize] {
                    at_start = false;
                    continue;
                }
                let days = self.days.matching_days(year as i32, month);
                let first_day = if at_start { start.day() } else { 1 };
                for day in first_day..=31 {
                    if !days[day as usize] {
                        at_start = false;
                        continue;
                    }
                    let first_hour = if at_start { start.hour() } else { 0 };
                    for hour in first_hour..=23 {
                        if !self.hours[hour as usize] {
                            at_start = false;
                            continue;
                        }
                        let first_minute = if at_start { start.minute() } else { 0 };
                        if let Some(minute) =
                            (first_minute..=59).find(|m| self.minutes[*m as usize])
                        {
                            return NaiveDate::from_ymd_opt(year as i32, month, day)?
                                .and_hms_opt(hour, minute, 0)
                                .map(|t| t.and_utc());
                        }
                        at_start = false;
                    }
                    at_start = false;
                }
                at_start = false;
            }
            at_start = false;
        }
        None
    }
}

impl RateSchedule {
    fn next_after(&self, after: DateTime<Utc>, anchor: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let period_secs = i64::from(self.value).checked_mul(self.unit.seconds())?;
        let elapsed = after.signed_duration_since(anchor).num_seconds();
        let mut k = (elapsed.div_euclid(period_secs)).checked_add(1)?.max(1);
        loop {
            let offset = Duration::try_seconds(period_secs.checked_mul(k)?)?;
            let candidate = anchor.checked_add_signed(offset)?;
            if candidate > after {
                return Some(candidate);
            }
            // Sub-second remainders need at most one extra step.
            k = k.checked_add(1)?;
        }
    }
}

impl ScheduleExpression {
    /// The first fire time strictly after `after`. For rate(), fire times are
    /// anchor + k*period (k >= 1) where `anchor` is the trigger's creation
    /// time; cron ignores anchor. None when the cron has no future match (e.g.
    /// year range in the past, or beyond 2199).
    pub fn next_after(&self, after: DateTime<Utc>, anchor: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            ScheduleExpression::Rate(rate) => rate.next_after(after, anchor),
            ScheduleExpression::Cron(cron) => {
                let truncated = after.with_nanosecond(0)?.with_second(0)?;
                let start = truncated.checked_add_signed(Duration::try_minutes(1)?)?;
                cron.first_at_or_after(start)
            }
        }
    }

    /// The next `count` fire times after `after`.
    pub fn upcoming(
        &self,
        after: DateTime<Utc>,
        anchor: DateTime<Utc>,
        count: usize,
    ) -> Vec<DateTime<Utc>> {
        let mut out = Vec::with_capacity(count.min(1024));
        let mut current = after;
        while out.len() < count {
            match self.next_after(current, anchor) {
                Some(next) => {
                    out.push(next);
                    current = next;
                }
                None => break,
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
