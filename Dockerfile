# The runner itself as an image, driving the host's Docker engine (sibling containers).
#
#   hear image build . --tag hear/runner     (offline: wheels prepared on the host from
#                                             requirements.txt; or plain `docker build`
#                                             after `pip wheel -r requirements.txt -w wheels`)
#   docker run --rm -v /var/run/docker.sock:/var/run/docker.sock \
#       -v "$PWD/tasks:/tasks:ro" -v "$PWD/results:/results" -v hear-cache:/cache \
#       hear/runner run --model-image hear/naive:latest --tasks-dir /tasks --results-dir /results
#
# Inside this container the engine's files are not visible, so model containers are
# reached over their attach stream (stdin/stdout); --transport socket needs /tmp shared
# with the host at the same path (-v /tmp:/tmp).
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_BREAK_SYSTEM_PACKAGES=1 \
    PIP_ROOT_USER_ACTION=ignore PYTHONUNBUFFERED=1 HEAR_CACHE_DIR=/cache

COPY wheels /tmp/hear-wheels
COPY requirements.txt /tmp/hear-requirements.txt
RUN python3 -m pip install --no-index --no-deps --find-links /tmp/hear-wheels -r /tmp/hear-requirements.txt

WORKDIR /opt/hear-runner
COPY pyproject.toml setup.py README.md ./
COPY hear_runner hear_runner
COPY plugins plugins
# images/ is installed as hear_runner/images (setup.py): `--model NAME` builds from it.
COPY images images
# Built here with the setuptools from the lock (no network); bytecode compiled at build time.
RUN python3 -m pip install --no-index --no-deps --no-build-isolation . \
    && rm -rf /tmp/hear-wheels /tmp/hear-requirements.txt build \
    && python3 -m compileall -q "$(python3 -c 'import hear_runner, os; print(os.path.dirname(os.path.dirname(hear_runner.__file__)))')"
VOLUME /cache
ENTRYPOINT ["hear"]
