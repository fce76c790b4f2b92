//! What a call runs: `$LATEST`, a published version, or an alias (which
//! may split calls between two versions by weight), resolved to one
//! concrete configuration and package.

use kumo_proto::model::LATEST;

use crate::state::functions::{FunctionError, Functions};
use crate::state::store::{AliasRecord, FunctionRecord, StoredConfig};

/// One concrete version of a function, ready to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Function name.
    pub name: String,
    /// The qualifier the caller used (for the invoked ARN), if any.
    pub qualifier: Option<String>,
    /// `$LATEST` or the version number that runs.
    pub version: String,
    /// Its configuration.
    pub config: StoredConfig,
    /// Its package.
    pub package_digest: String,
    /// Instances are reused only for the same (version, revision).
    pub revision: u64,
}

/// True for a version qualifier ("1", "2", …).
pub fn is_version_number(qualifier: &str) -> bool {
    !qualifier.is_empty() && qualifier.len() <= 20 && qualifier.bytes().all(|b| b.is_ascii_digit())
}

fn latest(record: FunctionRecord, qualifier: Option<String>) -> Target {
    Target {
        name: record.config.name.clone(),
        qualifier,
        version: LATEST.to_string(),
        config: record.config,
        package_digest: record.package_digest,
        revision: record.revision,
    }
}

/// A uniform random number in [0, 1).
fn unit_random() -> f64 {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let value = u64::from_le_bytes(bytes[..8].try_into().unwrap_or([0; 8]));
    (value >> 11) as f64 / (1u64 << 53) as f64
}

/// Which version an alias sends this call to.
pub fn pick_version(alias: &AliasRecord, roll: f64) -> &str {
    match &alias.extra {
        Some((extra, weight)) if roll < *weight => extra,
        _ => &alias.version,
    }
}

/// Resolves `name` with an optional qualifier to what runs now.
pub fn resolve(
    functions: &Functions,
    name: &str,
    qualifier: Option<&str>,
) -> Result<Target, FunctionError> {
    let record = functions.get_record(name)?;
    let asked = qualifier.map(str::to_string);
    let not_found = || FunctionError::NotFound {
        arn: functions.arn(name, qualifier),
    };
    let version = match qualifier {
        None => return Ok(latest(record, asked)),
        Some(q) if q == LATEST => return Ok(latest(record, asked)),
        Some(q) if is_version_number(q) => q.to_string(),
        Some(alias) => {
            let alias = functions
                .store()
                .get_alias(name, alias)?
                .ok_or_else(not_found)?;
            pick_version(&alias, unit_random()).to_string()
        }
    };
    if version == LATEST {
        return Ok(latest(record, asked));
    }
    let number: u64 = version.parse().map_err(|_| not_found())?;
    let published = functions
        .store()
        .get_version(name, number)?
        .ok_or_else(not_found)?;
    Ok(Target {
        name: name.to_string(),
        qualifier: asked,
        version,
        config: published.config,
        package_digest: published.package_digest,
        revision: published.revision,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_route_by_the_roll() {
        let alias = AliasRecord {
            function: "f".into(),
            name: "prod".into(),
            version: "1".into(),
            extra: Some(("2".into(), 0.3)),
            description: String::new(),
            revision: 1,
        };
        assert_eq!(pick_version(&alias, 0.29), "2");
        assert_eq!(pick_version(&alias, 0.3), "1");
        assert_eq!(pick_version(&alias, 0.99), "1");
        let share = (0..10_000)
            .filter(|_| pick_version(&alias, unit_random()) == "2")
            .count();
        assert!((2_500..3_500).contains(&share), "{share}");
    }

    #[test]
    fn version_numbers_are_digits_only() {
        assert!(is_version_number("12"));
        assert!(!is_version_number("prod"));
        assert!(!is_version_number("1a"));
        assert!(!is_version_number(""));
        assert!(!is_version_number("$LATEST"));
    }
}
