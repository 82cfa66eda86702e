# Generated files (templ, CSS) are committed, so the image needs neither npm
# nor templ: only the Go toolchain.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/taskrace .
# The example asynq application (compose's optional `example` service).
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/workload ./examples/workload

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/taskrace /taskrace
COPY --from=build /out/workload /workload
USER nonroot:nonroot
EXPOSE 8080
# A worker serves no HTTP: docker-compose.yml overrides this with `healthcheck --redis`
# (with plain docker: --health-cmd '/taskrace healthcheck --redis').
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 CMD ["/taskrace", "healthcheck"]
ENTRYPOINT ["/taskrace"]
CMD ["serve"]
