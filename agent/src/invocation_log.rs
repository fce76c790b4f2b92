//! TODO(owner): invocation_log
