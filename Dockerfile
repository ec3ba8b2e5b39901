# The `ingesta` binary in a small image. Untested on the machines this
# project is built on (no base image can be pulled there); kept short so it
# is easy to check by reading.
#   docker build -t ingesta .
#   docker run --rm ingesta validate /etc/ingesta/orders-dwh/ingesta.yaml
FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends cmake libssl-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release -p ingesta && strip target/release/ingesta

FROM debian:bookworm-slim
# the binary links OpenSSL (TLS to PostgreSQL and Kafka) and zlib
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates libssl3 zlib1g \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/ingesta /usr/local/bin/ingesta
COPY examples /etc/ingesta
USER 65532:65532
WORKDIR /var/lib/ingesta
ENTRYPOINT ["ingesta"]
