//! Rank correlation (helper B).
