//! How a call reaches a sandbox: the invoke front door every entry point
//! calls ([`invoke`]), the durable asynchronous queue with retries and dead
//! letters ([`async_queue`]), Lambda's concurrency limits ([`concurrency`]),
//! and the agents with their placement ([`agents`]).

pub(crate) mod agents;
pub(crate) mod async_queue;
pub(crate) mod concurrency;
pub(crate) mod invoke;
