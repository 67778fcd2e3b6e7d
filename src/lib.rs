//! mirador: a network detection sensor.
//!
//! The crate is laid out as its pipeline: [`capture`] (packet sources),
//! [`decode`] (link, IP, transport and tunnel headers, IP defragmentation),
//! [`flow`] (the per-worker flow table), [`reassembly`] (TCP streams),
//! [`applayer`] (protocol parsers over streams),
//! [`detect`] (rules), [`output`]
//! (Parquet), with
//! [`worker`] running those stages to completion over each batch and
//! [`runtime`] wiring sources, workers and writers together.

pub mod applayer;
pub mod capture;
pub mod config;
pub mod decode;
pub mod detect;
pub mod evidence;
pub mod export;
pub mod flow;
pub mod fuzzing;
pub mod metrics;
pub mod output;
pub mod reassembly;
pub mod runtime;
pub mod units;
pub mod utc;
pub mod worker;
