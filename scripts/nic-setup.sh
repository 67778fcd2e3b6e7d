#!/usr/bin/env bash
# Prepares a host for `mirador run` on a real NIC (as root).
#   scripts/nic-setup.sh hugepages [PAGES]   reserve PAGES 2 MiB hugepages (default 2048 = 4 GiB)
#                                            and mount hugetlbfs on /dev/hugepages
#   scripts/nic-setup.sh bind PCI_ADDR       hand a port to vfio-pci (Intel and most NICs)
#   scripts/nic-setup.sh unbind PCI_ADDR DRIVER   give it back to its kernel driver (e.g. ice)
#   scripts/nic-setup.sh status              hugepages and which driver holds each NIC
# Mellanox/NVIDIA ConnectX ports are not bound: their mlx5 driver is bifurcated
# and DPDK drives them beside the kernel (packages rdma-core, ibverbs-providers);
# pass them to EAL with -a PCI_ADDR. See the README, "Live capture".
set -euo pipefail

devbind() {
  command -v dpdk-devbind.py >/dev/null || {
    echo "nic-setup: dpdk-devbind.py missing: apt-get install dpdk" >&2; exit 2; }
  dpdk-devbind.py "$@"
}

case "${1:-status}" in
  hugepages)
    pages=${2:-2048}
    echo "$pages" > /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
    mountpoint -q /dev/hugepages || { mkdir -p /dev/hugepages; mount -t hugetlbfs nodev /dev/hugepages; }
    grep -E "HugePages_(Total|Free)" /proc/meminfo
    ;;
  bind)
    pci=${2:?PCI address, e.g. 0000:3b:00.0}
    modprobe vfio-pci
    devbind --bind=vfio-pci "$pci"
    devbind --status-dev net
    ;;
  unbind)
    pci=${2:?PCI address}; driver=${3:?kernel driver, e.g. ice, i40e, ixgbe}
    devbind --bind="$driver" "$pci"
    ;;
  status)
    grep -E "HugePages_(Total|Free)|Hugepagesize" /proc/meminfo
    if command -v dpdk-devbind.py >/dev/null; then dpdk-devbind.py --status-dev net; fi
    ;;
  *)
    sed -n 2,10p "$0" >&2; exit 2
    ;;
esac
