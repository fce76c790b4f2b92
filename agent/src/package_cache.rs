//! TODO(owner): package_cache
