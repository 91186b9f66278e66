# Multi-stage build: compile in the Rust image, run from a small Debian.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --bin strata

FROM debian:bookworm-slim
# CA certificates for object stores reached over HTTPS.
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/strata /usr/local/bin/strata
VOLUME /var/lib/strata
# Kafka clients, and Prometheus at /metrics.
EXPOSE 9092 9644
ENTRYPOINT ["strata", "--data-dir", "/var/lib/strata"]
CMD ["--listen", "0.0.0.0:9092", "--advertised-listener", "localhost:9092", "--metrics-listen", "0.0.0.0:9644"]
