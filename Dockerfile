FROM python:3.11-slim
WORKDIR /app
ENV HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
# The CPU build of torch, from PyTorch's CPU wheel index: PyPI's Linux wheel pulls gigabytes of CUDA packages.
# Where that index cannot be reached, give --build-arg TORCH_INDEX_URL=<a mirror that holds the CPU wheel>.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
RUN pip install --no-cache-dir torch==2.13.0 --index-url ${TORCH_INDEX_URL}
COPY pyproject.toml README.md ./
COPY indexer ./indexer
COPY service ./service
RUN pip install --no-cache-dir .
COPY data ./data
EXPOSE 8000
CMD ["sae-search", "serve", "--index", "/index/current", "--host", "0.0.0.0", "--port", "8000"]
