//! Checking an SNS delivery's signature (docs/wire-formats.md §10):
//! base64 RSA PKCS#1 v1.5 over [`Delivery::string_to_sign`], SHA-1 for
//! `SignatureVersion` 1 and SHA-256 for 2, with the public key of the
//! certificate from `SigningCertURL` (PEM or DER; fetching it, only from
//! the SNS host over https, is the caller's job).

use base64::Engine;
use ring::signature::{self, UnparsedPublicKey};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::sns::Delivery;

/// A signature could not be checked or is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The signing certificate is not a certificate.
    #[error("SNS signing certificate is not a PEM or DER X.509 certificate: {0}")]
    Certificate(String),
    /// The `Signature` field is not base64.
    #[error("SNS delivery's Signature is not base64")]
    Encoding,
    /// The signature does not match the message and certificate.
    #[error(
        "SNS delivery's signature does not match its content and SigningCertURL's certificate"
    )]
    Mismatch,
    /// A `SignatureVersion` other than 1 or 2.
    #[error("SNS SignatureVersion {0:?} is neither 1 nor 2")]
    Version(String),
}

/// The DER of a certificate given as PEM or DER.
fn certificate_der(certificate: &[u8]) -> Result<Vec<u8>, SignatureError> {
    if certificate.starts_with(b"-----BEGIN") {
        let (_, pem) = x509_parser::pem::parse_x509_pem(certificate)
            .map_err(|e| SignatureError::Certificate(e.to_string()))?;
        Ok(pem.contents)
    } else {
        Ok(certificate.to_vec())
    }
}

/// Checks `delivery`'s signature against `certificate` (PEM or DER).
pub fn verify(delivery: &Delivery, certificate: &[u8]) -> Result<(), SignatureError> {
    let algorithm: &dyn signature::VerificationAlgorithm = match delivery.signature_version.as_str()
    {
        "1" => &signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
        "2" => &signature::RSA_PKCS1_2048_8192_SHA256,
        other => return Err(SignatureError::Version(other.to_string())),
    };
    let der = certificate_der(certificate)?;
    let (_, cert) =
        X509Certificate::from_der(&der).map_err(|e| SignatureError::Certificate(e.to_string()))?;
    let key = cert.public_key().subject_public_key.data.to_vec();
    let signature = base64::engine::general_purpose::STANDARD
        .decode(delivery.signature.trim())
        .map_err(|_| SignatureError::Encoding)?;
    UnparsedPublicKey::new(algorithm, key)
        .verify(delivery.string_to_sign().as_bytes(), &signature)
        .map_err(|_| SignatureError::Mismatch)
}
