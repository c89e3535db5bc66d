# A static tiny-forge in an image of its own, for CI jobs that run in containers with the Docker
# socket mounted. FROM scratch: no base image to pull, and no CA store either, so the binary
# carries Mozilla's roots (add a private CA with SSL_CERT_FILE or settings.ca_file). Build it with
# scripts/docker-image, which first builds the static binary this file copies
# (target/static/.../tiny-forge). How to run it: README.md, "As a container".
#
#   docker network create tiny-forge
#   docker run --rm -v /var/run/docker.sock:/var/run/docker.sock \
#     -v /etc/tiny-forge:/etc/tiny-forge:ro -v /var/lib/tiny-forge:/var/lib/tiny-forge \
#     --network tiny-forge -e NPM_PASSWORD \
#     tiny-forge:latest --config /etc/tiny-forge/config.toml deploy shop dev pr-7
FROM scratch
COPY target/static/x86_64-unknown-linux-gnu/release/tiny-forge /tiny-forge
ENTRYPOINT ["/tiny-forge"]
CMD ["--help"]
