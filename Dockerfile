# The provisioner image: a static-ish release build on Debian slim.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin provisioner

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/provisioner /usr/local/bin/provisioner
USER 65534:65534
ENV LISTEN_ADDR=0.0.0.0:3000 LOG_FORMAT=json
EXPOSE 3000
ENTRYPOINT ["provisioner"]
CMD ["serve"]
