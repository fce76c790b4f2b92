//! Tests for schedule expression parsing and fire-time computation.

use super::*;

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("bad test time {s}: {e}"))
        .with_timezone(&Utc)
}

/// Thursday 2026-02-26T10:17:30Z.
fn now() -> DateTime<Utc> {
    t("2026-02-26T10:17:30Z")
}

fn upcoming(expr: &str, anchor: DateTime<Utc>, count: usize) -> Vec<String> {
    let parsed = parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
    parsed
        .upcoming(now(), anchor, count)
        .iter()
        .map(|d| d.format("%Y-%m-%dT%H:%M:%S").to_string())
        .collect()
}

#[test]
fn weekday_of_reference_instant() {
    assert_eq!(now().weekday(), chrono::Weekday::Thu);
}

#[test]
fn cron_fire_times() {
    let cases: &[(&str, &[&str])] = &[
        (
            "cron(0/5 * * * ? *)",
            &[
                "2026-02-26T10:20:00",
                "2026-02-26T10:25:00",
                "2026-02-26T10:30:00",
            ],
        ),
        (
            "cron(15 10 * * ? *)",
            &[
                "2026-02-27T10:15:00",
                "2026-02-28T10:15:00",
                "2026-03-01T10:15:00",
            ],
        ),
        (
            "cron(0 18 ? * MON-FRI *)",
            &[
                "2026-02-26T18:00:00",
                "2026-02-27T18:00:00",
                "2026-03-02T18:00:00",
            ],
        ),
        (
            "cron(0 8 1 * ? *)",
            &[
                "2026-03-01T08:00:00",
                "2026-04-01T08:00:00",
                "2026-05-01T08:00:00",
            ],
        ),
        (
            "cron(0 0 L * ? *)",
            &[
                "2026-02-28T00:00:00",
                "2026-03-31T00:00:00",
                "2026-04-30T00:00:00",
            ],
        ),
        ("cron(0 0 L 2 ? 2028)", &["2028-02-29T00:00:00"]),
        (
            "cron(0 0 29 2 ? *)",
            &[
                "2028-02-29T00:00:00",
                "2032-02-29T00:00:00",
                "2036-02-29T00:00:00",
            ],
        ),
        // 15th: Sun Mar 15 -> Mon 16, Wed Apr 15, Fri May 15, Mon Jun 15, Wed Jul 15, Sat Aug 15 -> Fri 14.
        (
            "cron(0 12 15W * ? *)",
            &[
                "2026-03-16T12:00:00",
                "2026-04-15T12:00:00",
                "2026-05-15T12:00:00",
                "2026-06-15T12:00:00",
                "2026-07-15T12:00:00",
                "2026-08-14T12:00:00",
            ],
        ),
        // 1st: Sun Mar 1 -> Mon 2, Wed Apr 1, Fri May 1.
        (
            "cron(0 12 1W * ? *)",
            &[
                "2026-03-02T12:00:00",
                "2026-04-01T12:00:00",
                "2026-05-01T12:00:00",
            ],
        ),
        // Feb 28 is a Saturday -> Fri 27; Mar 31 Tue; Apr 30 Thu.
        (
            "cron(0 12 LW * ? *)",
            &[
                "2026-02-27T12:00:00",
                "2026-03-31T12:00:00",
                "2026-04-30T12:00:00",
            ],
        ),
        // Mar 31 Tue; Apr has no 31st; May 31 is a Sunday at month end -> Fri 29.
        (
            "cron(0 12 31W * ? *)",
            &["2026-03-31T12:00:00", "2026-05-29T12:00:00"],
        ),
        (
            "cron(0 10 ? * 6L *)",
            &[
                "2026-02-27T10:00:00",
                "2026-03-27T10:00:00",
                "2026-04-24T10:00:00",
            ],
        ),
        (
            "cron(0 10 ? * FRIL *)",
            &[
                "2026-02-27T10:00:00",
                "2026-03-27T10:00:00",
                "2026-04-24T10:00:00",
            ],
        ),
        (
            "cron(0 10 ? * 3#2 *)",
            &[
                "2026-03-10T10:00:00",
                "2026-04-14T10:00:00",
                "2026-05-12T10:00:00",
            ],
        ),
        (
            "cron(0 10 ? * TUE#2 *)",
            &[
                "2026-03-10T10:00:00",
                "2026-04-14T10:00:00",
                "2026-05-12T10:00:00",
            ],
        ),
        // Bare L in day-of-week is Saturday.
        (
            "cron(0 0 ? * L *)",
            &[
                "2026-02-28T00:00:00",
                "2026-03-07T00:00:00",
                "2026-03-14T00:00:00",
            ],
        ),
        (
            "cron(0 20-2 * * ? *)",
            &[
                "2026-02-26T20:00:00",
                "2026-02-26T21:00:00",
                "2026-02-26T22:00:00",
                "2026-02-26T23:00:00",
                "2026-02-27T00:00:00",
                "2026-02-27T01:00:00",
                "2026-02-27T02:00:00",
                "2026-02-27T20:00:00",
            ],
        ),
        (
            "cron(0 0 ? * FRI-MON *)",
            &[
                "2026-02-27T00:00:00",
                "2026-02-28T00:00:00",
                "2026-03-01T00:00:00",
                "2026-03-02T00:00:00",
                "2026-03-06T00:00:00",
            ],
        ),
        (
            "cron(0 0 1 NOV-FEB ? *)",
            &[
                "2026-11-01T00:00:00",
                "2026-12-01T00:00:00",
                "2027-01-01T00:00:00",
                "2027-02-01T00:00:00",
                "2027-11-01T00:00:00",
            ],
        ),
        (
            "cron(0 0 28-2 3 ? *)",
            &[
                "2026-03-01T00:00:00",
                "2026-03-02T00:00:00",
                "2026-03-28T00:00:00",
            ],
        ),
        (
            "cron(0 0 31 * ? *)",
            &[
                "2026-03-31T00:00:00",
                "2026-05-31T00:00:00",
                "2026-07-31T00:00:00",
                "2026-08-31T00:00:00",
            ],
        ),
        (
            "cron(0 0 1 1 ? 2030-2031)",
            &["2030-01-01T00:00:00", "2031-01-01T00:00:00"],
        ),
        ("cron(0 0 1 1 ? 1999)", &[]),
        (
            "cron(0 0 1 1 ? 2020/5)",
            &[
                "2030-01-01T00:00:00",
                "2035-01-01T00:00:00",
                "2040-01-01T00:00:00",
            ],
        ),
        (
            "cron(0,30 9-17/4 ? * 2,4,6 *)",
            &[
                "2026-02-27T09:00:00",
                "2026-02-27T09:30:00",
                "2026-02-27T13:00:00",
                "2026-02-27T13:30:00",
                "2026-02-27T17:00:00",
                "2026-02-27T17:30:00",
                "2026-03-02T09:00:00",
            ],
        ),
        (
            "cron(0 0 ? jan mon 2027)",
            &[
                "2027-01-04T00:00:00",
                "2027-01-11T00:00:00",
                "2027-01-18T00:00:00",
            ],
        ),
        ("cron(  5   4 * * ? *  )", &["2026-02-27T04:05:00"]),
        ("cron(59 23 31 12 ? 2199)", &["2199-12-31T23:59:00"]),
    ];
    for (expr, expected) in cases {
        let got = upcoming(expr, now(), expected.len() + 1);
        let got: Vec<&str> = got
            .iter()
            .map(String::as_str)
            .take(expected.len())
            .collect();
        assert_eq!(&got, expected, "{expr}");
    }
    // Finite schedules stop.
    assert_eq!(upcoming("cron(0 0 1 1 ? 2030-2031)", now(), 5).len(), 2);
    assert_eq!(upcoming("cron(59 23 31 12 ? 2199)", now(), 5).len(), 1);
}

#[test]
fn cron_next_after_is_strict_and_ignores_anchor() {
    let expr = parse("cron(0/5 * * * ? *)").unwrap_or_else(|e| panic!("{e}"));
    let at = t("2026-02-26T10:20:00Z");
    assert_eq!(expr.next_after(at, now()), Some(t("2026-02-26T10:25:00Z")));
    assert_eq!(
        expr.next_after(at, t("1999-01-01T00:00:00Z")),
        Some(t("2026-02-26T10:25:00Z"))
    );
    let expr = parse("cron(0 12 1W * ? *)").unwrap_or_else(|e| panic!("{e}"));
    // August 2026 starts on a Saturday -> Monday the 3rd.
    assert_eq!(
        expr.next_after(t("2026-07-02T00:00:00Z"), now()),
        Some(t("2026-08-03T12:00:00Z"))
    );
    let far = parse("cron(* * * * ? *)").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(far.next_after(t("2199-12-31T23:59:00Z"), now()), None);
    assert_eq!(far.next_after(t("2500-01-01T00:00:00Z"), now()), None);
    assert_eq!(
        far.next_after(t("1900-01-01T00:00:00Z"), now()),
        Some(t("1970-01-01T00:00:00Z"))
    );
}

#[test]
fn rate_fire_times() {
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "rate(1 minute)",
            "2026-02-26T10:00:00Z",
            &[
                "2026-02-26T10:18:00",
                "2026-02-26T10:19:00",
                "2026-02-26T10:20:00",
            ],
        ),
        (
            "rate(5 minutes)",
            "2026-02-26T10:02:10Z",
            &[
                "2026-02-26T10:22:10",
                "2026-02-26T10:27:10",
                "2026-02-26T10:32:10",
            ],
        ),
        (
            "rate(1 day)",
            "2026-02-20T09:00:00Z",
            &[
                "2026-02-27T09:00:00",
                "2026-02-28T09:00:00",
                "2026-03-01T09:00:00",
            ],
        ),
        (
            "rate(2 hours)",
            "2026-02-26T07:30:00Z",
            &[
                "2026-02-26T11:30:00",
                "2026-02-26T13:30:00",
                "2026-02-26T15:30:00",
            ],
        ),
        // Anchor in the future: the first fire is anchor + period.
        (
            "rate(3 days)",
            "2026-03-01T00:00:00Z",
            &["2026-03-04T00:00:00", "2026-03-07T00:00:00"],
        ),
        (
            "rate(1 hour)",
            "2026-02-26T10:17:30Z",
            &["2026-02-26T11:17:30", "2026-02-26T12:17:30"],
        ),
    ];
    for (expr, anchor, expected) in cases {
        let got = upcoming(expr, t(anchor), expected.len());
        assert_eq!(&got, expected, "{expr}");
    }
    let rate = parse("rate(5 minutes)").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        rate,
        ScheduleExpression::Rate(RateSchedule {
            value: 5,
            unit: RateUnit::Minute
        })
    );
    let anchor = t("2026-02-26T10:00:00.500Z");
    assert_eq!(
        rate.next_after(t("2026-02-26T10:05:00.500Z"), anchor),
        Some(t("2026-02-26T10:10:00.500Z"))
    );
    assert_eq!(
        rate.next_after(t("2026-02-26T10:05:00.900Z"), anchor),
        Some(t("2026-02-26T10:10:00.500Z"))
    );
    let big = parse("rate(1000000 days)").unwrap_or_else(|e| panic!("{e}"));
    assert!(big.next_after(now(), now()).is_some());
}

#[test]
fn invalid_expressions() {
    let cases: &[(&str, &str)] = &[
        (
            "cron(* * * * * *)",
            "exactly one of day-of-month and day-of-week must be ?",
        ),
        (
            "cron(* * ? * ? *)",
            "exactly one of day-of-month and day-of-week must be ?",
        ),
        ("cron(60 * * * ? *)", "minutes: 60 is outside 0-59"),
        ("cron(0 24 * * ? *)", "hours: 24 is outside 0-23"),
        ("cron(0 0 32 * ? *)", "day-of-month: 32 is outside 1-31"),
        ("cron(0 0 0 * ? *)", "day-of-month: 0 is outside 1-31"),
        ("cron(0 0 ? 13 * *)", "month: 13 is outside 1-12"),
        ("cron(0 0 ? ? * *)", "month: unknown value \"?\""),
        ("cron(0 0 1 ? * *)", "exactly one"),
        ("cron(0 0 ? * 8 *)", "day-of-week: 8 is outside 1-7"),
        ("cron(0 0 ? * 0 *)", "day-of-week: 0 is outside 1-7"),
        ("cron(0 0 1 * ? 2200)", "year: 2200 is outside 1970-2199"),
        ("cron(0 0 1 * ? 1969)", "year: 1969 is outside 1970-2199"),
        ("cron(0 0 1 * ?)", "expected 6 fields"),
        ("cron(0 0 1 * ? * *)", "expected 6 fields"),
        ("cron(*/0 * * * ? *)", "minutes: step"),
        ("cron(0/ * * * ? *)", "minutes: step"),
        ("cron(0 0 ? * 3#6 *)", "day-of-week: occurrence"),
        ("cron(0 0 ? * 3#0 *)", "day-of-week: occurrence"),
        ("cron(0 0 1 FOO ? *)", "month: unknown value \"FOO\""),
        ("cron(L * * * ? *)", "minutes: unknown value \"L\""),
        ("cron(0 ? * * ? *)", "hours: unknown value \"?\""),
        ("cron(0 0 1#2 * ? *)", "day-of-month"),
        ("cron(0 0 L-3 * ? *)", "day-of-month"),
        ("cron(0 0 1, * ? *)", "day-of-month: empty list element"),
        (
            "cron(0 0 1 * ? 99999999999)",
            "year: 99999999999 is outside 1970-2199",
        ),
        ("cron(0 0 ? * 9L *)", "day-of-week: 9 is outside 1-7"),
        ("cron(0 0 +1 * ? *)", "day-of-month: unknown value"),
        ("rate(1 hours)", "singular"),
        ("rate(0 minutes)", "at least 1"),
        ("rate(5 minute)", "plural"),
        ("rate(-1 minutes)", "positive integer"),
        ("rate(1 fortnight)", "unknown rate unit"),
        ("rate(99999999999 minutes)", "too large"),
        ("rate(1000001 minutes)", "too large"),
        ("rate(5minutes)", "expected rate(value unit)"),
        ("rate( 5 minutes)", "expected rate(value unit)"),
        ("rate(5 minutes )", "expected rate(value unit)"),
        ("rate(5)", "expected rate(value unit)"),
        ("every 5 minutes", "expected cron(...) or rate(...)"),
        ("", "expected cron(...) or rate(...)"),
        ("cron()", "expected 6 fields"),
        ("cron(0 0 1 * ? *", "missing closing parenthesis"),
        ("cron(0 0 1 * ? *))", "year"),
    ];
    for (expr, reason) in cases {
        match parse(expr) {
            Ok(parsed) => panic!("{expr:?} unexpectedly parsed as {parsed:?}"),
            Err(err) => {
                assert_eq!(err.expression, *expr);
                assert!(
                    err.reason.contains(reason),
                    "{expr:?}: reason {:?} lacks {reason:?}",
                    err.reason
                );
                assert!(err.to_string().contains(&err.reason));
            }
        }
    }
}

#[test]
fn parse_never_panics() {
    const ALPHABET: &[u8] = b"0123456789*?,-/LW# ()cronrateMONFRI";
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) as usize
    };
    let mut parsed_ok = 0;
    for i in 0..2000 {
        let len = next() % 40;
        let mut body = String::new();
        for _ in 0..len {
            body.push(ALPHABET[next() % ALPHABET.len()] as char);
        }
        let expr = match i % 3 {
            0 => format!("cron({body})"),
            1 => format!("rate({body})"),
            _ => body,
        };
        if let Ok(parsed) = parse(&expr) {
            parsed_ok += 1;
            let _ = parsed.upcoming(now(), now(), 3);
        }
    }
    // Also random but structurally valid cron expressions.
    let tokens = [
        "*", "?", "0", "1", "5", "L", "LW", "15W", "1W", "6L", "3#2", "2-5", "20-2", "*/7", "1/3",
        "MON-FRI", "FRI-MON", "JAN", "NOV-FEB", "2026", "1,3,5",
    ];
    for _ in 0..2000 {
        let fields: Vec<&str> = (0..6).map(|_| tokens[next() % tokens.len()]).collect();
        let expr = format!("cron({})", fields.join(" "));
        if let Ok(parsed) = parse(&expr) {
            parsed_ok += 1;
            let _ = parsed.upcoming(now(), now(), 3);
        }
    }
    assert!(parsed_ok > 0);
}
