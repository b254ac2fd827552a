# syntax=docker/dockerfile:1
# grant-operator image: a release build on Debian, run on distroless (glibc, CA
# certificates, no shell, no package manager) as a non-root user.
#
#   docker build -t grant-operator:dev .
#   kind load docker-image grant-operator:dev

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /build
# Dependencies first: this layer is reused until Cargo.toml or Cargo.lock change.
# --no-default-features: the image carries no vendor sandboxes (`demo` is for laptops).
COPY Cargo.toml Cargo.lock ./
RUN mkdir src \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs \
 && cargo build --release --locked --no-default-features --bin grant-operator \
 && rm -rf src
COPY src ./src
# The stub's artefacts are older than the real sources; touch makes cargo rebuild them.
RUN touch src/main.rs src/lib.rs \
 && cargo build --release --locked --no-default-features --bin grant-operator \
 && cp target/release/grant-operator /grant-operator

# distroless/cc: glibc and libgcc for the binary (ring; mimalloc is linked in);
# :nonroot runs as uid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /grant-operator /usr/local/bin/grant-operator
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/grant-operator"]
CMD ["run"]
