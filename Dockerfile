FROM python:3.11-slim
WORKDIR /srv
COPY pyproject.toml README.md ./
COPY shared shared
COPY server server
COPY workers workers
COPY threadline threadline
# The installed package (with its Lua scripts and static files) is what runs: the
# source folders are removed so nothing is imported from the working directory.
RUN pip install --no-cache-dir . && rm -rf shared server workers threadline \
    && useradd --create-home threadline
USER threadline
WORKDIR /home/threadline
ENV DATA_DIR=/home/threadline/data
EXPOSE 8000
CMD ["threadline", "web"]
