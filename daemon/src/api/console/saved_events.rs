//! Saved test events on the Test tab: save the event in the editor under a
//! name, pick a saved one, delete one ([`crate::state::test_events`]).

use hyper::Response;

use super::html::Body;
use super::{test_invoke, Call};

/// `value` as JSON safe inside a `<script>` element: every `<` is
/// escaped, so no text can close the element.
pub(super) fn script_json(value: &serde_json::Value) -> String {
    value.to_string().replace('<', "\\u003c")
}

/// `POST /console/fn/{name}/test` with `action=save`.
pub(super) async fn save(call: &Call<'_>, name: &str) -> Response<Body> {
    let events = call.console.test_events.clone();
    let (function, event_name, event) = (
        name.to_string(),
        call.arg("save_as").trim().to_string(),
        call.arg("event").to_string(),
    );
    let label = event_name.clone();
    let saved =
        tokio::task::spawn_blocking(move || events.save(&function, &event_name, &event)).await;
    let notice = match saved {
        Ok(Ok(())) => format!("Saved test event {label}."),
        Ok(Err(e)) => e.to_string(),
        Err(e) => format!("saving the test event failed: {e}"),
    };
    test_invoke::page(call, name, None, Some(&notice)).await
}

/// `POST /console/fn/{name}/test` with `action=delete`: deletes the saved
/// event chosen in the page.
pub(super) async fn delete(call: &Call<'_>, name: &str) -> Response<Body> {
    let events = call.console.test_events.clone();
    let (function, event_name) = (name.to_string(), call.arg("saved").to_string());
    let label = event_name.clone();
    let deleted = tokio::task::spawn_blocking(move || events.delete(&function, &event_name)).await;
    let notice = match deleted {
        Ok(Ok(true)) => format!("Deleted test event {label}."),
        Ok(Ok(false)) => format!("There is no saved test event {label:?}."),
        Ok(Err(e)) => e.to_string(),
        Err(e) => format!("deleting the test event failed: {e}"),
    };
    test_invoke::page(call, name, None, Some(&notice)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_json_cannot_close_its_element() {
        let value = serde_json::json!({"a": "</script><script>alert(1)</script>"});
        let text = script_json(&value);
        assert!(!text.contains('<'), "{text}");
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, value);
    }
}
