//! What kumod keeps: the durable stores by record kind ([`store`]), package
//! blobs ([`packages`]), functions at `$LATEST` ([`functions`]), published
//! versions and aliases ([`versions`]), layers ([`layers`]) and what a qualified name runs
//! ([`qualifiers`]), Lambda's RevisionIds ([`revisions`]), per-function
//! logs ([`logs`]) and the console's saved test events ([`test_events`]).

pub(crate) mod functions;
pub(crate) mod layers;
pub(crate) mod log_writer;
pub(crate) mod logs;
pub(crate) mod packages;
pub(crate) mod qualifiers;
pub(crate) mod revisions;
pub mod store;
pub(crate) mod test_events;
pub(crate) mod versions;
