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
WORKDIR /mirador
COPY --from=build /src/target/release/mirador /usr/local/bin/mirador
COPY pcaps pcaps
COPY signatures signatures
CMD ["mirador", "replay", "--out", "out", "pcaps"]
