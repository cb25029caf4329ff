//! The committed pages engineers read, rendered from campaigns' summaries and the benchmarks'
//! results: the durability matrix (`durability`), the hazards page (`hazards`), the write-latency
//! report (`bench`). They measure nothing themselves.
pub mod bench;
pub mod durability;
pub mod hazards;
