# Multi-stage build: compile in the Rust image, run from a small Debian.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --bin strata

FROM debian:bookworm-slim
COPY --from=build /src/target/release/strata /usr/local/bin/strata
VOLUME /var/lib/strata
EXPOSE 9092
ENTRYPOINT ["strata", "--data-dir", "/var/lib/strata"]
CMD ["--listen", "0.0.0.0:9092", "--advertised-listener", "localhost:9092"]
