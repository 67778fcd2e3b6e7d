#include "shim.h"

#include <rte_prefetch.h>

const uint64_t shim_rss_hf_ip_tcp_udp = RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP;

int shim_errno(void) { return rte_errno; }

uint16_t shim_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{
	return rte_eth_rx_burst(port, queue, pkts, n);
}

void shim_pktmbuf_free_bulk(struct rte_mbuf **pkts, unsigned int n)
{
	rte_pktmbuf_free_bulk(pkts, n);
}

const uint8_t *shim_pktmbuf_data(const struct rte_mbuf *m, uint16_t *data_len)
{
	*data_len = m->data_len;
	return rte_pktmbuf_mtod(m, const uint8_t *);
}

uint32_t shim_pktmbuf_pkt_len(const struct rte_mbuf *m) { return m->pkt_len; }

const uint8_t *shim_pktmbuf_read(const struct rte_mbuf *m, uint32_t off, uint32_t len, uint8_t *buf)
{
	return rte_pktmbuf_read(m, off, len, buf);
}

uint64_t shim_mbuf_timestamp(const struct rte_mbuf *m, int offset, uint64_t flag, int *present)
{
	if (offset < 0 || flag == 0 || (m->ol_flags & flag) == 0) {
		*present = 0;
		return 0;
	}
	*present = 1;
	return *RTE_MBUF_DYNFIELD(m, offset, const rte_mbuf_timestamp_t *);
}

void shim_prefetch0(const void *p) { rte_prefetch0(p); }

unsigned int shim_lcore_id(void) { return rte_lcore_id(); }

uint64_t shim_tsc_cycles(void) { return rte_get_tsc_cycles(); }

uint32_t shim_softrss(const uint32_t *tuple, uint32_t len, const uint8_t *rss_key)
{
	return rte_softrss((uint32_t *)(uintptr_t)tuple, len, rss_key);
}
