//! Any webhook body must parse into records or be refused, never panic;
//! filters over parsed records must not panic either.
#![no_main]

use kumo_triggers::minio::{normalize_event_patterns, parse_body, EventFilter};
use kumo_triggers::s3_event::EventFormat;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(events) = parse_body(data) else {
        return;
    };
    let patterns: Vec<String> = events.iter().map(|e| e.event_name.clone()).collect();
    let events_filter = normalize_event_patterns(&patterns).unwrap_or_default();
    for event in &events {
        let filter = EventFilter {
            bucket: event.bucket.clone(),
            events: events_filter.clone(),
            prefix: String::from_utf8_lossy(&event.key).chars().take(3).collect(),
            suffix: String::new(),
        };
        let _ = filter.matches(event);
        let _ = event.identity();
        let _ = event.payload(EventFormat::Aws, "us-east-1").to_string();
        let _ = event.payload(EventFormat::Minio, "").to_string();
    }
});
