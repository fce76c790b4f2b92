//! Lambda's error shape (docs/wire-formats.md §12): an HTTP status, the
//! `X-Amzn-ErrorType` header SDKs read the code from, and a JSON body
//! `{"Type":"User","message":…}`; plus the mapping of Kumo's typed state
//! errors onto Lambda's codes.

use serde_json::json;

use super::ApiResponse;
use crate::state::functions::FunctionError;
use crate::state::layers::LayerError;
use crate::state::packages::PackageError;
use crate::state::versions::VersionError;

/// The AWS error shape: `X-Amzn-ErrorType` plus a JSON body.
pub fn aws_error(status: u16, code: &str, message: &str) -> ApiResponse {
    let request_id = uuid::Uuid::new_v4().to_string();
    ApiResponse {
        status,
        headers: vec![
            ("X-Amzn-ErrorType".into(), code.into()),
            ("x-amzn-RequestId".into(), request_id),
            ("Content-Type".into(), "application/json".into()),
        ],
        body: json!({"Type": "User", "message": message, "Message": message, "__type": code})
            .to_string()
            .into_bytes(),
    }
}

/// A management call refused or failed: Lambda's status and error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code} ({status}): {message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// Lambda's error code, e.g. `ResourceNotFoundException`.
    pub code: &'static str,
    /// One line for the user.
    pub message: String,
}

impl ApiError {
    /// 400 InvalidParameterValueException.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(400, "InvalidParameterValueException", message)
    }

    /// 404 ResourceNotFoundException.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, "ResourceNotFoundException", message)
    }

    /// Any status and code.
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// The HTTP answer.
    pub fn response(&self) -> ApiResponse {
        aws_error(self.status, self.code, &self.message)
    }
}

impl From<FunctionError> for ApiError {
    fn from(err: FunctionError) -> Self {
        let message = err.to_string();
        match err {
            FunctionError::NotFound { .. } => Self::not_found(message),
            FunctionError::AlreadyExists { .. } => {
                Self::new(409, "ResourceConflictException", message)
            }
            FunctionError::RevisionMismatch { .. } => {
                Self::new(412, "PreconditionFailedException", message)
            }
            FunctionError::Invalid(_)
            | FunctionError::Reservation(_)
            | FunctionError::UnknownDestination { .. }
            | FunctionError::DestinationNeedsCredentials { .. }
            | FunctionError::UnknownLayer { .. }
            | FunctionError::LayersTooLarge { .. }
            | FunctionError::Credentials(_)
            | FunctionError::Package(PackageError::Invalid(_) | PackageError::EntryPoint(_)) => {
                Self::invalid(message)
            }
            FunctionError::Package(_) | FunctionError::Store(_) => {
                tracing::error!(%message, "management call failed");
                Self::new(500, "ServiceException", message)
            }
        }
    }
}

impl From<VersionError> for ApiError {
    fn from(err: VersionError) -> Self {
        let message = err.to_string();
        match err {
            VersionError::Function(f) => f.into(),
            VersionError::ShaMismatch { .. } => {
                Self::new(412, "PreconditionFailedException", message)
            }
            VersionError::InUse { .. } | VersionError::AliasExists { .. } => {
                Self::new(409, "ResourceConflictException", message)
            }
            VersionError::Invalid(_) => Self::invalid(message),
            VersionError::Store(_) => Self::new(500, "ServiceException", message),
        }
    }
}

impl From<LayerError> for ApiError {
    fn from(err: LayerError) -> Self {
        let message = err.to_string();
        match err {
            LayerError::Function(f) => f.into(),
            LayerError::NotFound { .. } => Self::not_found(message),
            LayerError::InUse { .. } => Self::new(409, "ResourceConflictException", message),
            LayerError::Invalid(_)
            | LayerError::Package(PackageError::Invalid(_) | PackageError::EntryPoint(_)) => {
                Self::invalid(message)
            }
            LayerError::Package(_) | LayerError::Store(_) => {
                tracing::error!(%message, "layer call failed");
                Self::new(500, "ServiceException", message)
            }
        }
    }
}
