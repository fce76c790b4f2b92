//! kumo-agent command line (owner: lead).
