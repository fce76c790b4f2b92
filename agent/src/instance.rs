//! TODO(owner): instance
