//! TODO(owner): unzip
