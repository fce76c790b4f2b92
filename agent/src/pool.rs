//! TODO(owner): pool
