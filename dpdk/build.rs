//! Finds the system DPDK with pkg-config, generates bindings with bindgen and
//! compiles the C shim against the same headers.

use std::env;
use std::path::PathBuf;
use std::process::Command;

const MIN_VERSION: &str = "22.11";

fn pkg_config(args: &[&str]) -> Option<String> {
    let output = Command::new("pkg-config")
        .args(args)
        .arg("libdpdk")
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

fn main() {
    println!("cargo:rerun-if-changed=shim/shim.c");
    println!("cargo:rerun-if-changed=shim/shim.h");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");

    if pkg_config(&[&format!("--atleast-version={MIN_VERSION}")]).is_none() {
        panic!(
            "\n\nDPDK {MIN_VERSION} or later was not found by `pkg-config libdpdk`.\n\
             Install the development package: `apt-get install libdpdk-dev pkg-config` \
             (Debian/Ubuntu), or run scripts/setup.sh. For a DPDK built from source, \
             point PKG_CONFIG_PATH at its libdpdk.pc.\n\n"
        );
    }
    let cflags: Vec<String> = pkg_config(&["--cflags"])
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    for flag in pkg_config(&["--libs"])
        .unwrap_or_default()
        .split_whitespace()
    {
        if let Some(lib) = flag.strip_prefix("-l") {
            println!("cargo:rustc-link-lib={lib}");
        } else if let Some(dir) = flag.strip_prefix("-L") {
            println!("cargo:rustc-link-search=native={dir}");
        }
    }

    let mut shim = cc::Build::new();
    shim.file("shim/shim.c")
        .include("shim")
        .warnings(true)
        .opt_level(3);
    for flag in &cflags {
        shim.flag(flag);
    }
    shim.compile("mirador_dpdk_shim");

    let bindings = bindgen::Builder::default()
        .header("shim/shim.h")
        .clang_args(&cflags)
        .allowlist_function("shim_.*")
        .allowlist_var("shim_.*")
        .allowlist_function("rte_eal_(init|cleanup|remote_launch|wait_lcore|process_type)")
        .allowlist_function("rte_(get_next_lcore|get_main_lcore|lcore_count|lcore_to_socket_id|socket_id|get_tsc_hz|strerror)")
        .allowlist_function("rte_eth_(dev_configure|dev_info_get|dev_start|dev_stop|dev_close|rx_queue_setup|stats_get|find_next|dev_get_name_by_port|dev_socket_id|promiscuous_enable|dev_rss_hash_conf_get)")
        .allowlist_function("rte_pktmbuf_pool_create|rte_mempool_free|rte_mempool_avail_count")
        .allowlist_function("rte_mbuf_dynfield_lookup|rte_mbuf_dynflag_lookup")
        .allowlist_var("RTE_MAX_ETHPORTS|RTE_MAX_LCORE|RTE_ETHDEV_QUEUE_STAT_CNTRS|RTE_PKTMBUF_HEADROOM")
        .allowlist_var("RTE_MBUF_DYNFIELD_TIMESTAMP_NAME|RTE_MBUF_DYNFLAG_RX_TIMESTAMP_NAME")
        .allowlist_var("RTE_ETH_MQ_RX_.*|RTE_ETH_HASH_FUNCTION_.*")
        .allowlist_type("rte_eth_conf|rte_eth_dev_info|rte_eth_stats|rte_mbuf|rte_mempool")
        .opaque_type("rte_mbuf")
        .opaque_type("rte_mempool")
        .derive_default(true)
        .layout_tests(false)
        .generate_comments(false)
        .prepend_enum_name(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .generate()
        .expect("bindgen could not generate the DPDK bindings");
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR is set by cargo"));
    bindings
        .write_to_file(out.join("bindings.rs"))
        .expect("writing the DPDK bindings");
}
