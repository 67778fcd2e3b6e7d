/*
 * Exported wrappers for DPDK's static-inline fast-path functions and macros,
 * which bindgen cannot bind. Every function here is a one-line call into DPDK.
 */
#ifndef MIRADOR_DPDK_SHIM_H
#define MIRADOR_DPDK_SHIM_H

#include <stdint.h>

#include <rte_config.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>
#include <rte_mempool.h>
#include <rte_cycles.h>
#include <rte_thash.h>

/* rte_errno of the calling thread. */
int shim_errno(void);

/* rte_eth_rx_burst. */
uint16_t shim_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);

/* rte_pktmbuf_free_bulk. */
void shim_pktmbuf_free_bulk(struct rte_mbuf **pkts, unsigned int n);

/* rte_pktmbuf_mtod of the first segment, and its length. */
const uint8_t *shim_pktmbuf_data(const struct rte_mbuf *m, uint16_t *data_len);

/* Total length of the packet over all its segments. */
uint32_t shim_pktmbuf_pkt_len(const struct rte_mbuf *m);

/* rte_pktmbuf_read: `len` bytes at `off`, copied into `buf` when the packet
 * is segmented; NULL when the packet is shorter. */
const uint8_t *shim_pktmbuf_read(const struct rte_mbuf *m, uint32_t off, uint32_t len, uint8_t *buf);

/* The Rx timestamp dynamic field, when `flag` is set on the mbuf; else 0. */
uint64_t shim_mbuf_timestamp(const struct rte_mbuf *m, int offset, uint64_t flag, int *present);

/* rte_prefetch0. */
void shim_prefetch0(const void *p);

/* rte_lcore_id. */
unsigned int shim_lcore_id(void);

/* rte_get_tsc_cycles. */
uint64_t shim_tsc_cycles(void);

/* rte_softrss: the Toeplitz hash DPDK computes in software, for checking
 * that a key is symmetric. `tuple` is in host order, `len` in 32-bit words. */
uint32_t shim_softrss(const uint32_t *tuple, uint32_t len, const uint8_t *rss_key);

/* RSS hash types mirador asks for: IP, TCP and UDP (RTE_ETH_RSS_IP |
 * RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP), which are function-like macros. */
extern const uint64_t shim_rss_hf_ip_tcp_udp;

#endif
