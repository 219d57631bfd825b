# tickertag image for producer, workers and Flower. Training/serving hosts with a GPU can build
# FROM a CUDA base instead; the code picks CUDA when torch sees one.
FROM python:3.11-slim
WORKDIR /app
ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1
RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake \
    && rm -rf /var/lib/apt/lists/*
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md ./
COPY common common
COPY producer producer
COPY workers workers
COPY training training
COPY tickertag tickertag
COPY data data
RUN pip install -e '.[local]' "transformers<5" "huggingface_hub<1"
ENTRYPOINT ["tickertag"]
