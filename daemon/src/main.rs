//! kumod binary.
fn main() {}
