"""Flows against tshark: count, packets and bytes of every TCP and UDP
conversation of each sample capture."""

from collections import Counter
from pathlib import Path

import pytest

from conftest import SAMPLES, mirador_conversations, replay, tshark_conversations


@pytest.mark.parametrize("pcap", SAMPLES, ids=lambda p: p.name)
def test_tcp_and_udp_flows_match_tshark(pcap: Path, tmp_path: Path):
    replay(tmp_path, pcap)
    theirs = tshark_conversations(pcap)
    ours = mirador_conversations(tmp_path)
    assert theirs, "tshark found no conversation: the sample is broken"

    def multiset(conv, proto_of, with_bytes):
        return Counter(
            (proto_of(k, c), c["endpoints"], c["frames"], c["bytes"] if with_bytes(c) else None)
            for k, c in conv.items()
        )

    reassembled = {c["endpoints"] for c in theirs.values() if c["reassembled"]}
    expected = multiset(theirs, lambda k, c: k[0], lambda c: c["endpoints"] not in reassembled)
    actual = multiset(ours, lambda k, c: c["proto"], lambda c: c["endpoints"] not in reassembled)
    assert actual == expected


def test_fragmented_datagram_is_one_packet_carrying_every_fragments_bytes(tmp_path: Path):
    """By design: tshark counts the frame that completes a datagram (its own
    length only); mirador counts the datagram once, with the wire bytes of all
    its fragments, so byte totals stay equal to what crossed the wire."""
    pcap = Path(__file__).resolve().parents[2] / "pcaps" / "tunnels.pcapng"
    replay(tmp_path, pcap)
    ours = mirador_conversations(tmp_path)
    flow = next(c for c in ours.values() if ("10.5.0.5", 7000) in c["endpoints"])
    # three fragments of 1514, 1514 and 82 bytes, and a 45-byte reply
    assert flow["frames"] == 2
    assert flow["bytes"] == 1514 + 1514 + 82 + 45
