//! kumo CLI.
fn main() {}
