//! Adaptive search: which trials to run, which to continue, which to stop.
//!
//! Every decision is a pure function of rows ([`state::State`]: the decisions taken so far
//! and the events jobs reported), taken in the transaction that records the event, under the
//! sweep's lock. There is no controller process: whichever orchestrator records a rung
//! decides, the unique keys make a duplicate trial or promotion impossible, a restart loses
//! nothing, and `sweep replay` re-derives the whole log from the database.
//!
//! - [`space`]: typed distributions (values, never exponents);
//! - [`sampler`]: proposals (`random`, `sobol`, `tpe`), small strategy objects;
//! - [`rule`]: stopping rules (`median`, `asha`, `paired`), each a pure function of rung results;
//! - [`policy`]: what the sweep file asked for; [`state`]: the rows; [`decide`]: the step.

pub mod action;
pub mod decide;
pub mod policy;
pub mod rank;
pub mod rng;
pub mod rule;
pub mod sampler;
pub mod simulate;
pub mod space;
pub mod state;

pub use action::Action;
pub use decide::decide;
pub use policy::{Fidelity, Goal, Policy, RuleKind, StopSpec};
pub use state::{Event, EventKind, State};
