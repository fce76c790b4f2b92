//! Any text given to the schedule-expression parser must parse or be
//! refused, never panic; a parsed expression must yield increasing fire
//! times without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(expression) = kumo_triggers::schedule_expression::parse(text) else {
        return;
    };
    let Some(start) = chrono::DateTime::from_timestamp(1_790_000_000, 0) else {
        return;
    };
    let fires = expression.upcoming(start, start, 4);
    assert!(fires.windows(2).all(|w| w[0] < w[1]), "{text}: {fires:?}");
    assert!(fires.iter().all(|f| *f > start), "{text}: {fires:?}");
});
