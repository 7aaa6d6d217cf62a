FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY shared shared
COPY server server
COPY workers workers
COPY app app
RUN pip install --no-cache-dir .
EXPOSE 8000
CMD ["python", "-m", "server", "web"]
