FROM python:3.11-slim
WORKDIR /app
ENV HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
# The CPU build of torch; point PIP_EXTRA_INDEX_URL at a CPU wheel index when building elsewhere.
ARG PIP_EXTRA_INDEX_URL=""
RUN pip install --no-cache-dir torch==2.13.0
COPY pyproject.toml README.md ./
COPY indexer ./indexer
COPY service ./service
RUN pip install --no-cache-dir .
COPY data ./data
EXPOSE 8000
CMD ["sae-search", "serve", "--index", "/index/current", "--host", "0.0.0.0", "--port", "8000"]
