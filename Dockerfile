# tickertag image for producer, workers, Flower and ner-api. CPU torch by default; a GPU host
# builds it with TORCH_INDEX_URL=https://pypi.org/simple (PyPI's Linux torch wheels bundle CUDA,
# as docker-compose.yml's train-worker-gpu does); the code picks CUDA when torch sees one.
FROM python:3.11-slim
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
WORKDIR /app
ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1
RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake \
    && rm -rf /var/lib/apt/lists/*
RUN pip install torch==2.13.0 --index-url "${TORCH_INDEX_URL}"
COPY pyproject.toml README.md ./
COPY common common
COPY producer producer
COPY workers workers
COPY training training
COPY distil distil
COPY linking linking
COPY cascade cascade
COPY tickertag tickertag
COPY data data
RUN pip install -e '.[local]' "transformers<5" "huggingface_hub<1"
ENTRYPOINT ["tickertag"]
