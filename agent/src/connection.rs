//! TODO(owner): connection
