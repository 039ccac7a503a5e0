//! Token formats: one module per format.

pub mod jwt;
pub mod lookup;
pub mod reference;
