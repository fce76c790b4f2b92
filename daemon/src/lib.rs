//! kumod library.
