//! Raw bindings to the system DPDK, generated at build time by bindgen from
//! the headers `pkg-config libdpdk` names, and the `shim_*` functions of a
//! small C shim that export DPDK's static-inline fast path (`rte_eth_rx_burst`,
//! mbuf data access and free, `rte_lcore_id`, the TSC, prefetch, software RSS).
//!
//! Everything here is `unsafe`; the sensor uses it only through its safe
//! wrapper module, `mirador::capture::dpdk`.

#![allow(non_upper_case_globals, non_camel_case_types, non_snake_case)]
#![allow(clippy::all)]

include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
