//! The one parser of what callers name a layer version by: `NAME:VERSION`
//! or a full ARN `arn:PARTITION:lambda:REGION:ACCOUNT:layer:NAME:VERSION`
//! (docs/wire-formats.md §13), and the rules on a function's layer list.

use super::ValidationError;

/// Most layers a function may list (docs/wire-formats.md §13).
pub const MAX_LAYERS: usize = 5;
/// Longest layer name.
pub const MAX_LAYER_NAME_CHARS: usize = 140;
/// Most compatible runtimes a layer version may list.
pub const MAX_COMPATIBLE_RUNTIMES: usize = 15;

/// A layer version as a caller named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerVersionRef {
    /// The layer name.
    pub name: String,
    /// Its version number (1, 2, …).
    pub version: u64,
    /// The region of a full ARN.
    pub region: Option<String>,
    /// The account of a full ARN.
    pub account: Option<String>,
}

/// Checks a layer name: 1–140 characters of `A-Z a-z 0-9 - _`.
pub fn validate_layer_name(name: &str) -> Result<(), ValidationError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_LAYER_NAME_CHARS
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ValidationError::new(
            "layer_name",
            format!("{name:?} must be 1-{MAX_LAYER_NAME_CHARS} characters of letters, digits, '-' and '_'"),
        ))
    }
}

impl LayerVersionRef {
    /// Parses `NAME:VERSION` or a layer version ARN.
    pub fn parse(given: &str) -> Result<Self, ValidationError> {
        let malformed = || {
            ValidationError::new(
                "layers",
                format!("{given:?} is not a layer version ARN (arn:aws:lambda:REGION:ACCOUNT:layer:NAME:VERSION) or NAME:VERSION"),
            )
        };
        let parts: Vec<&str> = given.split(':').collect();
        let (region, account, name, version) = match parts[..] {
            [name, version] => (None, None, name, version),
            ["arn", _, "lambda", region, account, "layer", name, version] => {
                (Some(region), Some(account), name, version)
            }
            _ => return Err(malformed()),
        };
        validate_layer_name(name).map_err(|_| malformed())?;
        let version: u64 = version
            .parse()
            .ok()
            .filter(|v| *v > 0 && !version.starts_with('0'))
            .ok_or_else(malformed)?;
        Ok(Self {
            name: name.to_string(),
            version,
            region: region.map(str::to_string),
            account: account.map(str::to_string),
        })
    }

    /// True unless an ARN named a different region or account.
    pub fn is_in(&self, region: &str, account: &str) -> bool {
        self.region.as_deref().is_none_or(|r| r == region)
            && self.account.as_deref().is_none_or(|a| a == account)
    }
}

/// The ARN of a layer (without a version).
pub fn layer_arn(region: &str, account: &str, name: &str) -> String {
    format!("arn:aws:lambda:{region}:{account}:layer:{name}")
}

/// The ARN of a layer version.
pub fn layer_version_arn(region: &str, account: &str, name: &str, version: u64) -> String {
    format!("{}:{version}", layer_arn(region, account, name))
}

/// Checks a function's layer list: at most [`MAX_LAYERS`], each a layer
/// version reference, no layer twice (as Lambda refuses two versions of one
/// layer).
pub fn validate_layer_list(layers: &[String]) -> Result<Vec<LayerVersionRef>, ValidationError> {
    if layers.len() > MAX_LAYERS {
        return Err(ValidationError::new(
            "layers",
            format!(
                "{} layers given; a function may use at most {MAX_LAYERS}",
                layers.len()
            ),
        ));
    }
    let mut parsed: Vec<LayerVersionRef> = Vec::with_capacity(layers.len());
    for given in layers {
        let layer = LayerVersionRef::parse(given.trim())?;
        if parsed.iter().any(|p| p.name == layer.name) {
            return Err(ValidationError::new(
                "layers",
                format!(
                    "layer {:?} is listed twice; a function may use one version of each layer",
                    layer.name
                ),
            ));
        }
        parsed.push(layer);
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_arns_parse() {
        let short = LayerVersionRef::parse("boto3:2").unwrap();
        assert_eq!((short.name.as_str(), short.version), ("boto3", 2));
        assert!(short.is_in("us-east-1", "000000000000"));
        let arn = LayerVersionRef::parse("arn:aws:lambda:eu-west-1:123456789012:layer:my-libs:17")
            .unwrap();
        assert_eq!(arn.name, "my-libs");
        assert_eq!(arn.version, 17);
        assert!(arn.is_in("eu-west-1", "123456789012"));
        assert!(!arn.is_in("us-east-1", "123456789012"));
        assert!(!arn.is_in("eu-west-1", "000000000000"));
        for bad in [
            "",
            "boto3",
            "boto3:",
            "boto3:0",
            "boto3:01",
            "boto3:x",
            "boto3:-1",
            "a/b:1",
            "arn:aws:lambda:r:a:function:f:1",
            "arn:aws:lambda:r:a:layer:n",
            "arn:aws:lambda:r:a:layer:n:1:2",
        ] {
            let err = LayerVersionRef::parse(bad).unwrap_err();
            assert!(
                err.to_string().contains("layer version ARN"),
                "{bad}: {err}"
            );
        }
        assert!(validate_layer_name(&"x".repeat(140)).is_ok());
        assert!(validate_layer_name(&"x".repeat(141)).is_err());
    }

    #[test]
    fn lists_hold_at_most_five_distinct_layers() {
        let list = |n: usize| (1..=n).map(|i| format!("l{i}:1")).collect::<Vec<_>>();
        assert_eq!(validate_layer_list(&list(5)).unwrap().len(), 5);
        let err = validate_layer_list(&list(6)).unwrap_err();
        assert!(err.to_string().contains("at most 5"), "{err}");
        let err = validate_layer_list(&["a:1".into(), "a:2".into()]).unwrap_err();
        assert!(err.to_string().contains("twice"), "{err}");
    }
}
