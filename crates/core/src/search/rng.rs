//! Seeded random numbers (helper A).
