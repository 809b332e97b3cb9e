# The runner itself as an image, driving the host's Docker engine (sibling containers):
#
#   docker build -t hear/runner .
#   docker run --rm -v /var/run/docker.sock:/var/run/docker.sock -v /tmp:/tmp \
#       -v "$PWD/tasks:/tasks" -v "$PWD/results:/results" \
#       hear/runner run --model-image hear/naive:latest --tasks-dir /tasks --results-dir /results
#
# The model's socket lives in a run directory under /tmp: sharing the host's /tmp at the
# same path lets the host's engine bind-mount it into the model container.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_BREAK_SYSTEM_PACKAGES=1
WORKDIR /opt/hear-runner
COPY pyproject.toml README.md ./
COPY runner runner
COPY plugins plugins
COPY images images
RUN python3 -m pip install "torch==2.13.0" && python3 -m pip install . && python3 -m compileall -q runner
ENTRYPOINT ["hear"]
