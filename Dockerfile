# Ladle as a static, non-root image.
#
#   docker build -t ladle:dev .
#   docker run --rm -p 8080:8080 ladle:dev serve --demo --data-dir /data
#
# The binary is pure Go (modernc SQLite, no cgo), built with CGO_ENABLED=0,
# so the final stage needs nothing but CA certificates and time zones, which
# distroless/static carries. It runs as uid 65532 (nonroot); /data is a
# volume for the embedded default (SQLite, embedded NATS, files).
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags "-s -w" -o /out/ladle ./cmd/ladle

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ladle /usr/local/bin/ladle
USER 65532:65532
WORKDIR /data
VOLUME ["/data"]
ENV LADLE_DATA_DIR=/data
EXPOSE 8080 9090
ENTRYPOINT ["/usr/local/bin/ladle"]
CMD ["serve"]
