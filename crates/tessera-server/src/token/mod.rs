//! Token formats: one module per format.

pub mod jwt;
