//! The one parser of what callers name a function by: `NAME`,
//! `NAME:QUALIFIER`, a partial ARN `ACCOUNT:function:NAME[:QUALIFIER]`, or a
//! full ARN `arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]`,
//! with a qualifier optionally given separately as well.

use super::validate_function_name;

/// A function as a caller named it, split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionRef {
    /// The function name.
    pub name: String,
    /// `$LATEST`, a version number or an alias; None for `$LATEST`
    /// implicitly.
    pub qualifier: Option<String>,
    /// The region of a full ARN.
    pub region: Option<String>,
    /// The account of a full or partial ARN.
    pub account: Option<String>,
}

/// A function reference that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FunctionRefError {
    /// Not a name, `name:qualifier` or function ARN.
    #[error("{0:?} is not a function name, name:qualifier or function ARN")]
    Malformed(String),
    /// The qualifier in the name and the one given separately differ.
    #[error(
        "The derived qualifier from the function name does not match the specified qualifier."
    )]
    QualifierMismatch,
}

impl FunctionRef {
    /// Parses `given`; `qualifier` is one given separately (a query
    /// parameter or request field; empty means none), which must agree
    /// with one given inline.
    pub fn parse(given: &str, qualifier: Option<&str>) -> Result<Self, FunctionRefError> {
        let malformed = || FunctionRefError::Malformed(given.to_string());
        let parts: Vec<&str> = given.split(':').collect();
        let (region, account, name, inline) = match parts[..] {
            [name] => (None, None, name, None),
            [name, q] => (None, None, name, Some(q)),
            [account, "function", name] => (None, Some(account), name, None),
            [account, "function", name, q] => (None, Some(account), name, Some(q)),
            ["arn", _, "lambda", region, account, "function", name] => {
                (Some(region), Some(account), name, None)
            }
            ["arn", _, "lambda", region, account, "function", name, q] => {
                (Some(region), Some(account), name, Some(q))
            }
            _ => return Err(malformed()),
        };
        validate_function_name(name).map_err(|_| malformed())?;
        if inline.is_some_and(str::is_empty) {
            return Err(malformed());
        }
        let separate = qualifier.filter(|q| !q.is_empty());
        let qualifier = match (inline, separate) {
            (Some(a), Some(b)) if a != b => return Err(FunctionRefError::QualifierMismatch),
            (a, b) => a.or(b).map(str::to_string),
        };
        Ok(Self {
            name: name.to_string(),
            qualifier,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(given: &str, q: Option<&str>) -> Option<(String, Option<String>)> {
        FunctionRef::parse(given, q)
            .ok()
            .map(|r| (r.name, r.qualifier))
    }

    #[test]
    fn function_names_in_every_form() {
        let p = |s: &str| parts(s, None);
        assert_eq!(p("fn"), Some(("fn".into(), None)));
        assert_eq!(p("fn:prod"), Some(("fn".into(), Some("prod".into()))));
        assert_eq!(p("123456789012:function:fn"), Some(("fn".into(), None)));
        assert_eq!(
            p("arn:aws:lambda:us-east-1:000000000000:function:fn:2"),
            Some(("fn".into(), Some("2".into())))
        );
        assert_eq!(p("arn:aws:s3:::bucket"), None);
        assert_eq!(p("bad/name"), None);
        assert_eq!(p(""), None);
        assert_eq!(p("fn:"), None);
    }

    #[test]
    fn arns_keep_region_and_account() {
        let r =
            FunctionRef::parse("arn:aws:lambda:eu-west-1:123456789012:function:fn", None).unwrap();
        assert!(r.is_in("eu-west-1", "123456789012"));
        assert!(!r.is_in("us-east-1", "123456789012"));
        assert!(!r.is_in("eu-west-1", "000000000000"));
        let partial = FunctionRef::parse("123456789012:function:fn", None).unwrap();
        assert_eq!(partial.region, None);
        assert!(partial.is_in("anywhere", "123456789012"));
        assert!(FunctionRef::parse("fn", None).unwrap().is_in("x", "y"));
    }

    #[test]
    fn a_separate_qualifier_must_agree_with_the_inline_one() {
        assert_eq!(
            parts("fn", Some("prod")),
            Some(("fn".into(), Some("prod".into())))
        );
        assert_eq!(parts("fn", Some("")), Some(("fn".into(), None)));
        assert_eq!(
            parts("fn:prod", Some("prod")),
            Some(("fn".into(), Some("prod".into())))
        );
        assert_eq!(
            FunctionRef::parse("fn:prod", Some("2")),
            Err(FunctionRefError::QualifierMismatch)
        );
    }
}
