# syntax=docker/dockerfile:1
# One image for every subcommand: `penny aggregator` (the chart's
# StatefulSet), `penny local`, `penny top`, …, and `penny-agent`, the same
# source built with -tags agentonly: `penny agent` alone, which the chart's
# DaemonSet runs (half the binary, half the resident memory: docs/agent.md).
#
#   make image            # docker build -t penny:dev .
#
# The binary is static (CGO_ENABLED=0; the eBPF objects are embedded, so no
# clang and no C library are needed) and runs on distroless/static. No
# Docker engine runs in CI, so CI cannot build this file; `make chart-lint`
# does not need it. What it relies on was checked by hand:
# `CGO_ENABLED=0 go build -trimpath ./cmd/penny` builds, and `file` says
# the result is "statically linked" (`ldd`: "not a dynamic executable").

FROM golang:1.26-bookworm AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-trimpath
# Modules first, so that source changes reuse the download layer.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go build -ldflags="-s -w" -o /penny ./cmd/penny && \
    go build -ldflags="-s -w" -tags agentonly -o /penny-agent ./cmd/penny

FROM gcr.io/distroless/static-debian12
COPY --from=build /penny /penny-agent /usr/local/bin/
# The chart sets the user: root (uid 0) for the agent, whose eBPF
# capabilities only take effect for uid 0, and 65532 for the aggregator.
ENTRYPOINT ["penny"]
