//! Kumo's Python bootstrap.
