//! TODO(owner): executor
