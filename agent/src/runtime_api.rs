//! TODO(owner): runtime_api
