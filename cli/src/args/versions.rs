//! Arguments of `kumo layer`, `kumo version` and `kumo alias`.

use std::path::PathBuf;

use clap::Subcommand;

use super::{runtime_identifier, Output};

/// Layer subcommands.
#[derive(Debug, Subcommand)]
pub enum LayerCommand {
    /// Publish a directory or .zip as the layer's next version (its files
    /// appear under /opt: python/, lib/, bin/, nodejs/node_modules/).
    Publish {
        /// Layer name.
        name: String,
        /// Content: a directory (zipped by the CLI), a .zip file, or
        /// s3://bucket/key.zip (fetched by kumod; needs --s3-profile).
        #[arg(long)]
        code: PathBuf,
        /// Free text.
        #[arg(long, default_value = "")]
        description: String,
        /// Runtime identifiers it is meant for (informational, as on Lambda).
        #[arg(long, num_args = 1.., value_delimiter = ',', value_parser = runtime_identifier)]
        compatible_runtimes: Vec<String>,
        /// License name or URL.
        #[arg(long, default_value = "")]
        license_info: String,
        /// kumod's S3 profile to fetch an s3:// package with.
        #[arg(long)]
        s3_profile: Option<String>,
        /// Output format (text prints the layer version ARN).
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// List layers (their newest versions), or one layer's versions.
    List {
        /// Layer name: list its versions.
        name: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Show a layer version and the functions using it.
    Get {
        /// NAME:VERSION or a layer version ARN.
        layer: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Delete a layer version no function uses.
    Delete {
        /// NAME:VERSION or a layer version ARN.
        layer: String,
    },
}

/// Version subcommands.
#[derive(Debug, Subcommand)]
pub enum VersionCommand {
    /// Snapshot $LATEST as the next version (or return the last one if nothing changed).
    Publish {
        /// Function name.
        name: String,
        /// Free text.
        #[arg(long, default_value = "")]
        description: String,
        /// Refuse unless $LATEST's CodeSha256 (base64) is this.
        #[arg(long, value_name = "SHA256")]
        expect_sha256: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// List $LATEST and the published versions.
    List {
        /// Function name.
        name: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Delete a published version no alias or trigger uses.
    Delete {
        /// Function name.
        name: String,
        /// Version number.
        version: String,
    },
}

/// What an alias points at.
#[derive(Debug, clap::Args)]
pub struct AliasTarget {
    /// Function name.
    pub name: String,
    /// Alias name.
    pub alias: String,
    /// Version it points at (a number, or $LATEST).
    #[arg(long)]
    pub version: String,
    /// A second version that gets --weight of the calls.
    #[arg(long, requires = "weight")]
    pub extra_version: Option<String>,
    /// Share of calls (0-1) for --extra-version.
    #[arg(long, requires = "extra_version")]
    pub weight: Option<f64>,
    /// Free text.
    #[arg(long, default_value = "")]
    pub description: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
}

/// Alias subcommands.
#[derive(Debug, Subcommand)]
pub enum AliasCommand {
    /// Create an alias.
    Create(AliasTarget),
    /// Move an alias (takes effect for the next call).
    Update(AliasTarget),
    /// Show an alias.
    Get {
        /// Function name.
        name: String,
        /// Alias name.
        alias: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// List a function's aliases.
    List {
        /// Function name.
        name: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Delete an alias no trigger uses.
    Delete {
        /// Function name.
        name: String,
        /// Alias name.
        alias: String,
    },
}
