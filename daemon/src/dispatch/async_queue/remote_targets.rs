//! SQS queues and SNS topics as targets of asynchronous results
//! (docs/wire-formats.md §11): the on-failure destination may be a queue
//! or topic ARN as well as a function. Messages go out through the AWS
//! profile of the function's `--credentials` (Kumo's stand-in for an
//! execution role).

use aws_sdk_sns::error::DisplayErrorContext;

use crate::aws_profiles::{AwsProfiles, ProfileError};

/// A queue or topic named by ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteTarget {
    /// `arn:PARTITION:sqs:REGION:ACCOUNT:NAME`.
    Sqs {
        /// The owning account.
        account: String,
        /// The queue name.
        name: String,
    },
    /// `arn:PARTITION:sns:REGION:ACCOUNT:NAME`.
    Sns {
        /// The topic ARN.
        arn: String,
    },
}

impl RemoteTarget {
    /// The target an ARN names, if it is an SQS queue or SNS topic.
    pub fn parse(arn: &str) -> Option<Self> {
        let parts: Vec<&str> = arn.split(':').collect();
        match parts.as_slice() {
            ["arn", _, "sqs", _, account, name] if !account.is_empty() && !name.is_empty() => {
                Some(Self::Sqs {
                    account: account.to_string(),
                    name: name.to_string(),
                })
            }
            ["arn", _, "sns", _, account, name] if !account.is_empty() && !name.is_empty() => {
                Some(Self::Sns {
                    arn: arn.to_string(),
                })
            }
            _ => None,
        }
    }
}

/// A message attribute: name, value, and `String` or `Number`.
pub struct Attribute {
    /// The name.
    pub name: &'static str,
    /// The value.
    pub value: String,
    /// `String` or `Number`.
    pub data_type: &'static str,
}

/// Sending to a queue or topic failed.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The profile is unknown or its secret unreadable.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// The server refused or could not be reached.
    #[error("{op} to {arn}: {message}")]
    Request {
        /// The operation.
        op: &'static str,
        /// The target's ARN.
        arn: String,
        /// The SDK's error with its context.
        message: String,
    },
}

/// Sends `body` with `attributes` to `target` through `profile`.
pub async fn send(
    profiles: &AwsProfiles,
    profile: &str,
    arn: &str,
    target: &RemoteTarget,
    body: String,
    attributes: &[Attribute],
) -> Result<(), TargetError> {
    let fail = |op: &'static str, message: String| TargetError::Request {
        op,
        arn: arn.to_string(),
        message,
    };
    match target {
        RemoteTarget::Sqs { account, name } => {
            let sqs = crate::sources::sqs::client::client(profiles, profile)?;
            let url = sqs
                .get_queue_url()
                .queue_name(name)
                .queue_owner_aws_account_id(account)
                .send()
                .await
                .map_err(|e| fail("GetQueueUrl", DisplayErrorContext(&e).to_string()))?
                .queue_url
                .unwrap_or_default();
            let mut send = sqs.send_message().queue_url(url).message_body(body);
            for a in attributes {
                let value = aws_sdk_sqs::types::MessageAttributeValue::builder()
                    .data_type(a.data_type)
                    .string_value(&a.value)
                    .build()
                    .map_err(|e| fail("SendMessage", e.to_string()))?;
                send = send.message_attributes(a.name, value);
            }
            send.send()
                .await
                .map_err(|e| fail("SendMessage", DisplayErrorContext(&e).to_string()))?;
        }
        RemoteTarget::Sns { arn } => {
            let sns = crate::sources::sns::client(profiles, profile)?;
            let mut publish = sns.publish().topic_arn(arn).message(body);
            for a in attributes {
                let value = aws_sdk_sns::types::MessageAttributeValue::builder()
                    .data_type(a.data_type)
                    .string_value(&a.value)
                    .build()
                    .map_err(|e| fail("Publish", e.to_string()))?;
                publish = publish.message_attributes(a.name, value);
            }
            publish
                .send()
                .await
                .map_err(|e| fail("Publish", DisplayErrorContext(&e).to_string()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_and_topic_arns_are_targets_functions_are_not() {
        assert_eq!(
            RemoteTarget::parse("arn:aws:sqs:us-east-1:123456789012:failed"),
            Some(RemoteTarget::Sqs {
                account: "123456789012".into(),
                name: "failed".into()
            })
        );
        assert!(matches!(
            RemoteTarget::parse("arn:aws:sns:eu-west-1:1:alerts"),
            Some(RemoteTarget::Sns { .. })
        ));
        assert_eq!(
            RemoteTarget::parse("arn:aws:lambda:us-east-1:1:function:f"),
            None
        );
        assert_eq!(RemoteTarget::parse("handler"), None);
        assert_eq!(RemoteTarget::parse("arn:aws:sqs:us-east-1::q"), None);
    }
}
