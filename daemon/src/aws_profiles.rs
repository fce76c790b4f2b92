//! AWS service profiles: named endpoints and credentials for S3, SQS and
//! SNS (AWS itself or a self-hosted compatible server), read from kumod's
//! configuration as `[aws.profiles.NAME]`. The older `[s3.profiles.NAME]`
//! spelling is still read, into the same set of names. Secrets come from
//! files, never from the command line. The S3 operations live in
//! `crate::s3`, the SQS pollers in `crate::sources::sqs`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use aws_sdk_s3::config::Credentials;
use serde::{Deserialize, Serialize};

/// The SDKs' endpoint for every service without its own variable; a
/// function's own `--env AWS_ENDPOINT_URL=…` wins over its profile's.
pub const GENERIC_ENDPOINT_VARIABLE: &str = "AWS_ENDPOINT_URL";

/// `[aws]` (and the older `[s3]`) in kumod.toml.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AwsConfig {
    /// Profiles by name.
    pub profiles: BTreeMap<String, AwsProfile>,
}

/// One AWS-compatible endpoint set with its credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsProfile {
    /// Endpoint of every service, e.g. `http://127.0.0.1:9000`; empty for
    /// AWS itself (each service's regional endpoint).
    #[serde(default)]
    pub endpoint: String,
    /// S3's endpoint when it differs from `endpoint`.
    #[serde(default)]
    pub s3_endpoint: String,
    /// SQS's endpoint when it differs from `endpoint`.
    #[serde(default)]
    pub sqs_endpoint: String,
    /// SNS's endpoint when it differs from `endpoint`.
    #[serde(default)]
    pub sns_endpoint: String,
    /// Signing region.
    #[serde(default = "default_region")]
    pub region: String,
    /// Access key id.
    pub access_key_id: String,
    /// File holding the secret access key (trailing whitespace ignored).
    pub secret_access_key_file: PathBuf,
    /// S3 path-style addressing (`endpoint/bucket/key`), as MinIO needs.
    #[serde(default = "default_true")]
    pub path_style: bool,
    /// The MinIO webhook target id (`MINIO_NOTIFY_WEBHOOK_ENABLE_<ID>`);
    /// `--configure-bucket` uses `arn:minio:sqs:<REGION>:<ID>:webhook`.
    #[serde(default = "default_target")]
    pub webhook_target_id: String,
    /// The region in that ARN: empty for a MinIO without `MINIO_REGION`
    /// (`arn:minio:sqs::<ID>:webhook`), else the server's region.
    #[serde(default)]
    pub webhook_arn_region: String,
    /// Check the signatures of SNS deliveries (on by default; off only
    /// for a trusted test server that does not sign, such as moto).
    #[serde(default = "default_true")]
    pub sns_verify_signatures: bool,
    /// The host (`host[:port]`) SNS signing certificates must come from
    /// (over https); empty = the SNS endpoint's host, or
    /// `sns.<region>.amazonaws.com` on AWS.
    #[serde(default)]
    pub sns_cert_host: String,
    /// A PEM file of extra CAs trusted when fetching signing certificates
    /// (besides the system's).
    #[serde(default)]
    pub sns_ca_file: Option<PathBuf>,
}

/// A service a profile names an endpoint for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// S3.
    S3,
    /// SQS.
    Sqs,
    /// SNS.
    Sns,
}

impl AwsProfile {
    /// The queue ARN of the MinIO webhook target.
    pub fn webhook_arn(&self) -> String {
        format!(
            "arn:minio:sqs:{}:{}:webhook",
            self.webhook_arn_region, self.webhook_target_id
        )
    }

    /// The endpoint of `service`: its own if set, else the common one;
    /// empty means AWS's regional endpoint.
    pub fn endpoint_of(&self, service: Service) -> &str {
        let own = match service {
            Service::S3 => &self.s3_endpoint,
            Service::Sqs => &self.sqs_endpoint,
            Service::Sns => &self.sns_endpoint,
        };
        if own.is_empty() {
            &self.endpoint
        } else {
            own
        }
    }
}

fn default_region() -> String {
    "us-east-1".into()
}

fn default_true() -> bool {
    true
}

fn default_target() -> String {
    "KUMO".into()
}

/// A profile could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// No profile of that name.
    #[error("no AWS profile {name:?} in kumod's configuration ([aws.profiles] or [s3.profiles]; known: {known})")]
    UnknownProfile {
        /// The name asked for.
        name: String,
        /// The configured names.
        known: String,
    },
    /// The secret file could not be read.
    #[error("AWS profile {profile}: reading secret_access_key_file {path}: {source}")]
    Secret {
        /// The profile.
        profile: String,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// Checks that no name is both an `[aws.profiles]` and an `[s3.profiles]`
/// entry (the message names the key).
pub fn check_no_clash(aws: &AwsConfig, s3: &AwsConfig) -> Result<(), String> {
    match aws.profiles.keys().find(|k| s3.profiles.contains_key(*k)) {
        Some(name) => Err(format!(
            "profile {name:?} is defined twice, as [aws.profiles.{name}] and [s3.profiles.{name}]; keep one"
        )),
        None => Ok(()),
    }
}

/// The configured profiles.
#[derive(Clone, Default)]
pub struct AwsProfiles {
    profiles: BTreeMap<String, AwsProfile>,
}

impl AwsProfiles {
    /// The profiles of `[aws]` and of the older `[s3]` together (a name
    /// in both is refused by `DaemonConfig::validate`; `[aws]` wins here).
    pub fn new(aws: &AwsConfig, s3: &AwsConfig) -> Self {
        let mut profiles = s3.profiles.clone();
        profiles.extend(aws.profiles.clone());
        Self { profiles }
    }

    /// One profile, or an error listing the known ones.
    pub fn profile(&self, name: &str) -> Result<&AwsProfile, ProfileError> {
        self.profiles
            .get(name)
            .ok_or_else(|| ProfileError::UnknownProfile {
                name: name.to_string(),
                known: if self.profiles.is_empty() {
                    "none configured".into()
                } else {
                    self.profiles.keys().cloned().collect::<Vec<_>>().join(", ")
                },
            })
    }

    /// The secret access key of a profile, read from its file.
    pub fn secret(&self, name: &str) -> Result<String, ProfileError> {
        let profile = self.profile(name)?;
        std::fs::read_to_string(&profile.secret_access_key_file)
            .map(|s| s.trim_end().to_string())
            .map_err(|source| ProfileError::Secret {
                profile: name.to_string(),
                path: profile.secret_access_key_file.clone(),
                source,
            })
    }

    /// A profile with its credentials, for building an SDK client.
    pub fn credentials(&self, name: &str) -> Result<(&AwsProfile, Credentials), ProfileError> {
        let profile = self.profile(name)?;
        let credentials = Credentials::new(
            profile.access_key_id.clone(),
            self.secret(name)?,
            None,
            None,
            "kumo-aws-profile",
        );
        Ok((profile, credentials))
    }

    /// The environment a function with these credentials gets: Kumo's
    /// stand-in for an execution role (keys, region, and the endpoints of
    /// a self-hosted server as `AWS_ENDPOINT_URL_<SERVICE>`, and the common
    /// `endpoint` as `AWS_ENDPOINT_URL` for every other service the SDKs
    /// call: DynamoDB, SES, …).
    pub fn function_environment(&self, name: &str) -> Result<Vec<(String, String)>, ProfileError> {
        let profile = self.profile(name)?;
        let mut env = vec![
            (
                "AWS_ACCESS_KEY_ID".to_string(),
                profile.access_key_id.clone(),
            ),
            ("AWS_SECRET_ACCESS_KEY".to_string(), self.secret(name)?),
            ("AWS_REGION".to_string(), profile.region.clone()),
            ("AWS_DEFAULT_REGION".to_string(), profile.region.clone()),
        ];
        for (service, variable) in [
            (Service::S3, "AWS_ENDPOINT_URL_S3"),
            (Service::Sqs, "AWS_ENDPOINT_URL_SQS"),
            (Service::Sns, "AWS_ENDPOINT_URL_SNS"),
        ] {
            let endpoint = profile.endpoint_of(service);
            if !endpoint.is_empty() {
                env.push((variable.to_string(), endpoint.to_string()));
            }
        }
        if !profile.endpoint.is_empty() {
            env.push((
                GENERIC_ENDPOINT_VARIABLE.to_string(),
                profile.endpoint.clone(),
            ));
        }
        Ok(env)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(endpoint: &str, sqs: &str) -> AwsProfile {
        AwsProfile {
            endpoint: endpoint.into(),
            s3_endpoint: String::new(),
            sqs_endpoint: sqs.into(),
            sns_endpoint: String::new(),
            region: "eu-west-1".into(),
            access_key_id: "k".into(),
            secret_access_key_file: "/nonexistent/secret".into(),
            path_style: true,
            webhook_target_id: "KUMO".into(),
            webhook_arn_region: String::new(),
            sns_verify_signatures: true,
            sns_cert_host: String::new(),
            sns_ca_file: None,
        }
    }

    #[test]
    fn functions_get_every_endpoint_and_the_common_one_for_other_services() {
        let mut aws = AwsConfig::default();
        aws.profiles
            .insert("p".into(), profile("http://all:1", "http://queues:2"));
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "s3cret\n").unwrap();
        aws.profiles.get_mut("p").unwrap().secret_access_key_file = secret;
        let env: std::collections::HashMap<String, String> =
            AwsProfiles::new(&aws, &AwsConfig::default())
                .function_environment("p")
                .unwrap()
                .into_iter()
                .collect();
        assert_eq!(env["AWS_SECRET_ACCESS_KEY"], "s3cret");
        assert_eq!(env["AWS_ENDPOINT_URL_SQS"], "http://queues:2");
        assert_eq!(env["AWS_ENDPOINT_URL_S3"], "http://all:1");
        assert_eq!(env["AWS_ENDPOINT_URL"], "http://all:1", "DynamoDB, SES, …");
        aws.profiles.get_mut("p").unwrap().endpoint = String::new();
        let env = AwsProfiles::new(&aws, &AwsConfig::default())
            .function_environment("p")
            .unwrap();
        assert!(
            !env.iter().any(|(k, _)| k == "AWS_ENDPOINT_URL"),
            "AWS itself: no endpoint"
        );
    }

    #[test]
    fn a_service_endpoint_overrides_the_common_one() {
        let p = profile("http://all:1", "http://queues:2");
        assert_eq!(p.endpoint_of(Service::S3), "http://all:1");
        assert_eq!(p.endpoint_of(Service::Sqs), "http://queues:2");
        assert_eq!(p.endpoint_of(Service::Sns), "http://all:1");
        assert_eq!(profile("", "").endpoint_of(Service::Sqs), "");
    }

    #[test]
    fn both_spellings_merge_and_a_clash_is_refused() {
        let mut aws = AwsConfig::default();
        aws.profiles.insert("new".into(), profile("http://a:1", ""));
        let mut s3 = AwsConfig::default();
        s3.profiles.insert("old".into(), profile("http://b:1", ""));
        assert!(check_no_clash(&aws, &s3).is_ok());
        let profiles = AwsProfiles::new(&aws, &s3);
        assert!(profiles.profile("new").is_ok());
        assert!(profiles.profile("old").is_ok());
        let err = profiles.profile("nope").unwrap_err().to_string();
        assert!(err.contains("new, old"), "{err}");
        s3.profiles.insert("new".into(), profile("http://c:1", ""));
        let clash = check_no_clash(&aws, &s3).unwrap_err();
        assert!(clash.contains("[aws.profiles.new]"), "{clash}");
        let secret = profiles.secret("new").unwrap_err().to_string();
        assert!(secret.contains("/nonexistent/secret"), "{secret}");
    }
}
