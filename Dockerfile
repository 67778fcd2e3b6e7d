# Builds mirador the same way scripts/demo.sh does; the default command runs the demo.
FROM debian:bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl sudo \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY scripts/setup.sh scripts/setup.sh
RUN scripts/setup.sh --build
ENV PATH="/root/.cargo/bin:${PATH}"
COPY . .
RUN cargo build --release --locked --bin mirador

FROM debian:bookworm-slim
# DPDK's runtime libraries and poll-mode drivers (net_pcap, net_af_packet, NICs),
# without the headers: every librte package libdpdk-dev depends on.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
       $(apt-cache depends libdpdk-dev | grep -o 'librte-[a-z0-9-]*' | sort -u) \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /mirador
COPY --from=build /src/target/release/mirador /usr/local/bin/mirador
COPY pcaps pcaps
COPY signatures signatures
CMD ["mirador", "run", "--out", "out"]
