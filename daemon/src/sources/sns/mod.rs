//! SNS topics as event sources (docs/wire-formats.md §10): creating an
//! SNS trigger checks it ([`check`]), stores it, then subscribes
//! `<[sns] public_url>/sns/<trigger>` to the topic ([`subscribe`]); deleting it unsubscribes ([`unsubscribe`]). What SNS
//! POSTs there is handled by [`endpoint::SnsEndpoint`].

pub mod certs;
pub mod endpoint;

use aws_sdk_sns::config::{BehaviorVersion, Region};
use aws_sdk_sns::error::DisplayErrorContext;
use kumo_proto::control::SnsSource;
use kumo_triggers::sns_filter::FilterPolicy;

use crate::aws_profiles::{AwsProfiles, ProfileError, Service};
use crate::state::store::SnsSettings;

/// Path prefix of the subscription endpoints on kumod's HTTP listener.
pub const PATH_PREFIX: &str = "/sns/";

/// `[sns]` in kumod.toml.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SnsConfig {
    /// The URL at which SNS reaches kumod's HTTP listener, e.g.
    /// `http://kumo.example:7071`; SNS triggers need it.
    pub public_url: String,
}

/// An SNS source was refused or its subscription could not be changed.
#[derive(Debug, thiserror::Error)]
pub enum SnsError {
    /// A setting is wrong.
    #[error("SNS trigger: {0}")]
    Invalid(String),
    /// The profile is unknown or its secret unreadable.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// SNS refused an operation (unknown topic, wrong credentials, …).
    #[error("SNS {operation} on topic {topic}: {message}")]
    Sns {
        /// The SNS operation.
        operation: &'static str,
        /// The topic ARN.
        topic: String,
        /// SNS's error.
        message: String,
    },
}

/// An SNS client for `profile`.
pub fn client(profiles: &AwsProfiles, profile: &str) -> Result<aws_sdk_sns::Client, ProfileError> {
    let (settings, credentials) = profiles.credentials(profile)?;
    let mut builder = aws_sdk_sns::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(settings.region.clone()))
        .credentials_provider(credentials);
    let endpoint = settings.endpoint_of(Service::Sns);
    if !endpoint.is_empty() {
        builder = builder.endpoint_url(endpoint);
    }
    Ok(aws_sdk_sns::Client::from_conf(builder.build()))
}

fn is_topic_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.split(':').collect();
    matches!(parts.as_slice(), ["arn", p, "sns", r, a, n]
        if !p.is_empty() && !r.is_empty() && !a.is_empty() && !n.is_empty())
}

/// Checks `source`: the topic must exist and the credentials be
/// accepted. The settings returned are not subscribed yet.
pub async fn check(
    profiles: &AwsProfiles,
    public_url: &str,
    trigger: &str,
    source: SnsSource,
) -> Result<SnsSettings, SnsError> {
    let topic = source.topic_arn.trim().to_string();
    if !is_topic_arn(&topic) {
        return Err(SnsError::Invalid(format!(
            "{topic:?} is not an SNS topic ARN (arn:PARTITION:sns:REGION:ACCOUNT:NAME)"
        )));
    }
    let public_url = public_url.trim().trim_end_matches('/');
    match public_url.split_once("://") {
        Some(("http" | "https", rest)) if !rest.is_empty() => {}
        _ => {
            return Err(SnsError::Invalid(
                "kumod has no [sns] public_url (http:// or https://, the URL at which SNS reaches its HTTP listener)".into(),
            ))
        }
    }
    let filter_policy = source.filter_policy.trim();
    let filter_policy = if filter_policy.is_empty() {
        None
    } else {
        FilterPolicy::parse(filter_policy).map_err(|e| SnsError::Invalid(e.to_string()))?;
        Some(filter_policy.to_string())
    };
    profiles.profile(&source.profile)?;
    let sns = client(profiles, &source.profile)?;
    let fail = |operation: &'static str, message: String| SnsError::Sns {
        operation,
        topic: topic.clone(),
        message,
    };
    sns.get_topic_attributes()
        .topic_arn(&topic)
        .send()
        .await
        .map_err(|e| fail("GetTopicAttributes", DisplayErrorContext(&e).to_string()))?;
    Ok(SnsSettings {
        topic_arn: topic,
        profile: source.profile,
        filter_policy,
        subscription_arn: String::new(),
        endpoint: format!("{public_url}{PATH_PREFIX}{trigger}"),
    })
}

/// Subscribes `settings.endpoint` to its topic, recording the
/// subscription's ARN.
pub async fn subscribe(profiles: &AwsProfiles, settings: &mut SnsSettings) -> Result<(), SnsError> {
    let sns = client(profiles, &settings.profile)?;
    let protocol = if settings.endpoint.starts_with("https://") {
        "https"
    } else {
        "http"
    };
    let subscribed = sns
        .subscribe()
        .topic_arn(&settings.topic_arn)
        .protocol(protocol)
        .endpoint(&settings.endpoint)
        .return_subscription_arn(true)
        .send()
        .await
        .map_err(|e| SnsError::Sns {
            operation: "Subscribe",
            topic: settings.topic_arn.clone(),
            message: DisplayErrorContext(&e).to_string(),
        })?;
    settings.subscription_arn = subscribed.subscription_arn.unwrap_or_default();
    Ok(())
}

/// Ends the subscription of `settings`.
pub async fn unsubscribe(profiles: &AwsProfiles, settings: &SnsSettings) -> Result<(), SnsError> {
    let sns = client(profiles, &settings.profile)?;
    sns.unsubscribe()
        .subscription_arn(&settings.subscription_arn)
        .send()
        .await
        .map_err(|e| SnsError::Sns {
            operation: "Unsubscribe",
            topic: settings.topic_arn.clone(),
            message: DisplayErrorContext(&e).to_string(),
        })?;
    Ok(())
}

/// The protocol view of `settings`.
pub fn source(settings: &SnsSettings) -> SnsSource {
    SnsSource {
        topic_arn: settings.topic_arn.clone(),
        profile: settings.profile.clone(),
        filter_policy: settings.filter_policy.clone().unwrap_or_default(),
        subscription_arn: settings.subscription_arn.clone(),
        endpoint: settings.endpoint.clone(),
    }
}
