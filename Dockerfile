# The runstream roles for docker-compose.yml: one image, the role is the command.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml constraints.txt ./
COPY runstream runstream
COPY ingest ingest
COPY projector projector
COPY api api
COPY schemas schemas
RUN pip install --no-cache-dir -c constraints.txt .
ENTRYPOINT ["runstream"]
