//! SNS HTTP(S) subscription deliveries (docs/wire-formats.md §10): the
//! JSON body SNS POSTs to a subscribed endpoint, the string its signature
//! covers, the checks on the URLs it names, and the Lambda SNS event a
//! Notification becomes. Signature checking itself is in
//! [`crate::sns_signature`], filter policies in [`crate::sns_filter`].

use serde::Deserialize;
use serde_json::{json, Map, Value};

/// Largest body accepted (SNS messages are at most 256 KiB; the envelope
/// and JSON escaping add to that).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The kind of a delivery (`Type`, also `x-amz-sns-message-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum MessageType {
    /// Asks the endpoint to confirm a new subscription.
    SubscriptionConfirmation,
    /// A published message.
    Notification,
    /// Tells the endpoint it was unsubscribed.
    UnsubscribeConfirmation,
}

impl MessageType {
    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SubscriptionConfirmation => "SubscriptionConfirmation",
            Self::Notification => "Notification",
            Self::UnsubscribeConfirmation => "UnsubscribeConfirmation",
        }
    }
}

/// One message attribute (`{"Type": "String", "Value": "v"}`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Attribute {
    /// `String`, `String.Array`, `Number` or `Binary`.
    #[serde(rename = "Type")]
    pub data_type: String,
    /// The value as text (base64 for `Binary`).
    #[serde(rename = "Value")]
    pub value: String,
}

/// A delivery's JSON body, as SNS spells it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Delivery {
    /// The kind of delivery.
    #[serde(rename = "Type")]
    pub message_type: MessageType,
    /// SNS's id of the message; redeliveries keep it.
    pub message_id: String,
    /// The topic.
    pub topic_arn: String,
    /// The subject, if the publisher gave one (Notification only).
    #[serde(default)]
    pub subject: Option<String>,
    /// The message text.
    pub message: String,
    /// When SNS sent it (ISO 8601).
    pub timestamp: String,
    /// `1` (SHA1withRSA) or `2` (SHA256withRSA).
    pub signature_version: String,
    /// Base64 RSA signature over [`Delivery::string_to_sign`].
    pub signature: String,
    /// Where the signing certificate is.
    #[serde(rename = "SigningCertURL")]
    pub signing_cert_url: String,
    /// Confirmation token ((Un)SubscriptionConfirmation only).
    #[serde(default)]
    pub token: Option<String>,
    /// The URL confirming the subscription ((Un)SubscriptionConfirmation).
    #[serde(rename = "SubscribeURL", default)]
    pub subscribe_url: Option<String>,
    /// The URL ending the subscription (Notification).
    #[serde(rename = "UnsubscribeURL", default)]
    pub unsubscribe_url: Option<String>,
    /// Message attributes by name (Notification).
    #[serde(default)]
    pub message_attributes: Map<String, Value>,
}

/// A delivery body could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// Not a delivery body.
    #[error("SNS delivery body is not valid: {0}")]
    Body(String),
    /// A field the delivery's type needs is missing.
    #[error("SNS {kind} delivery lacks {field}")]
    Missing {
        /// The delivery's type.
        kind: &'static str,
        /// The missing field.
        field: &'static str,
    },
    /// A URL in the delivery is not on the SNS host or not https.
    #[error("SNS delivery's {field} {url:?} refused: {reason}")]
    Url {
        /// Which URL.
        field: &'static str,
        /// The URL as given.
        url: String,
        /// Why.
        reason: String,
    },
}

impl Delivery {
    /// Parses and checks a body: the fields its type needs are present,
    /// `SignatureVersion` is 1 or 2, attributes are `{Type, Value}`.
    pub fn parse(body: &[u8]) -> Result<Self, DeliveryError> {
        if body.len() > MAX_BODY_BYTES {
            return Err(DeliveryError::Body(format!(
                "{} bytes, over {MAX_BODY_BYTES}",
                body.len()
            )));
        }
        let delivery: Delivery =
            serde_json::from_slice(body).map_err(|e| DeliveryError::Body(e.to_string()))?;
        let kind = delivery.message_type.as_str();
        if !matches!(delivery.signature_version.as_str(), "1" | "2") {
            return Err(DeliveryError::Body(format!(
                "SignatureVersion {:?} is neither 1 nor 2",
                delivery.signature_version
            )));
        }
        if delivery.message_type != MessageType::Notification {
            if delivery.token.is_none() {
                return Err(DeliveryError::Missing {
                    kind,
                    field: "Token",
                });
            }
            if delivery.subscribe_url.is_none() {
                return Err(DeliveryError::Missing {
                    kind,
                    field: "SubscribeURL",
                });
            }
        }
        for (name, value) in &delivery.message_attributes {
            serde_json::from_value::<Attribute>(value.clone())
                .map_err(|e| DeliveryError::Body(format!("MessageAttributes.{name}: {e}")))?;
        }
        Ok(delivery)
    }

    /// The attributes, typed.
    pub fn attributes(&self) -> Vec<(String, Attribute)> {
        self.message_attributes
            .iter()
            .filter_map(|(name, value)| {
                serde_json::from_value::<Attribute>(value.clone())
                    .ok()
                    .map(|a| (name.clone(), a))
            })
            .collect()
    }

    /// The text the signature covers: `Key\nValue\n` pairs in §10's order.
    pub fn string_to_sign(&self) -> String {
        let mut pairs: Vec<(&str, &str)> =
            vec![("Message", &self.message), ("MessageId", &self.message_id)];
        match self.message_type {
            MessageType::Notification => {
                if let Some(subject) = &self.subject {
                    pairs.push(("Subject", subject));
                }
                pairs.push(("Timestamp", &self.timestamp));
            }
            MessageType::SubscriptionConfirmation | MessageType::UnsubscribeConfirmation => {
                pairs.push(("SubscribeURL", self.subscribe_url.as_deref().unwrap_or("")));
                pairs.push(("Timestamp", &self.timestamp));
                pairs.push(("Token", self.token.as_deref().unwrap_or("")));
            }
        }
        pairs.push(("TopicArn", &self.topic_arn));
        pairs.push(("Type", self.message_type.as_str()));
        pairs
            .into_iter()
            .map(|(k, v)| format!("{k}\n{v}\n"))
            .collect()
    }

    /// Lambda's SNS event for this Notification (§10), for the
    /// subscription `subscription_arn`.
    pub fn lambda_event(&self, subscription_arn: &str) -> Value {
        json!({"Records": [{
            "EventVersion": "1.0",
            "EventSubscriptionArn": subscription_arn,
            "EventSource": "aws:sns",
            "Sns": {
                "SignatureVersion": self.signature_version,
                "Timestamp": self.timestamp,
                "Signature": self.signature,
                "SigningCertUrl": self.signing_cert_url,
                "MessageId": self.message_id,
                "Message": self.message,
                "MessageAttributes": self.message_attributes,
                "Type": self.message_type.as_str(),
                "UnsubscribeUrl": self.unsubscribe_url,
                "TopicArn": self.topic_arn,
                "Subject": self.subject,
            }
        }]})
    }
}

/// Scheme, host and port of an absolute `http(s)://` URL (no userinfo).
fn split_url(url: &str) -> Option<(&str, String)> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    Some((scheme, authority.to_ascii_lowercase()))
}

/// The host (with port, when given) SNS URLs must name for an endpoint:
/// the configured `endpoint`'s, or AWS's `sns.<region>.amazonaws.com`
/// when it is empty.
pub fn sns_host(endpoint: &str, region: &str) -> Option<String> {
    if endpoint.is_empty() {
        return Some(format!("sns.{region}.amazonaws.com"));
    }
    split_url(endpoint).map(|(_, authority)| authority)
}

/// Refuses a URL not on `host` (host and port as [`sns_host`] gives
/// them), or not https when `https_only`.
pub fn check_url(
    field: &'static str,
    url: &str,
    host: &str,
    https_only: bool,
) -> Result<(), DeliveryError> {
    let refuse = |reason: String| DeliveryError::Url {
        field,
        url: url.to_string(),
        reason,
    };
    let (scheme, authority) =
        split_url(url).ok_or_else(|| refuse("not an absolute URL without userinfo".into()))?;
    match scheme {
        "https" => {}
        "http" if !https_only => {}
        other => return Err(refuse(format!("scheme {other:?} is not https"))),
    }
    let bare = |a: &str, default: &str| {
        a.strip_suffix(default)
            .map(str::to_string)
            .unwrap_or_else(|| a.to_string())
    };
    let default_port = if scheme == "https" { ":443" } else { ":80" };
    if bare(&authority, default_port) != bare(&host.to_ascii_lowercase(), default_port) {
        return Err(refuse(format!(
            "host {authority:?} is not the SNS host {host:?}"
        )));
    }
    Ok(())
}

#[cfg(test)]
#[path = "sns_tests.rs"]
mod tests;
