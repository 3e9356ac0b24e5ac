//! Stopping rules (helper B).
