//! The EventBridge "Scheduled Event" a schedule trigger sends
//! (docs/wire-formats.md §5c): `time` in UTC without milliseconds, the
//! rule's ARN in `resources`.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

/// The Scheduled Event for one fire of rule `rule` at `time`.
pub fn scheduled_event(
    id: &str,
    time: DateTime<Utc>,
    region: &str,
    account: &str,
    rule: &str,
) -> Value {
    json!({
        "version": "0",
        "id": id,
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": time.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "region": region,
        "resources": [format!("arn:aws:events:{region}:{account}:rule/{rule}")],
        "detail": {},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_matches_eventbridge() {
        let time = DateTime::parse_from_rfc3339("2015-10-08T16:53:06.250Z")
            .unwrap()
            .with_timezone(&Utc);
        let event = scheduled_event(
            "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
            time,
            "us-east-1",
            "123456789012",
            "my-rule",
        );
        assert_eq!(
            event.to_string(),
            r#"{"account":"123456789012","detail":{},"detail-type":"Scheduled Event","id":"53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa","region":"us-east-1","resources":["arn:aws:events:us-east-1:123456789012:rule/my-rule"],"source":"aws.events","time":"2015-10-08T16:53:06Z","version":"0"}"#
        );
    }
}
