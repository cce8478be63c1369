# The runstream roles for docker-compose.yml: one image, the role is the command.
# The pages' browser libraries (uPlot, Swagger UI) come from npm by package-lock.json, in a Node stage of its own.
FROM node:20-slim AS dashboard-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund

FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml setup.py MANIFEST.in package.json package-lock.json constraints.txt ./
COPY --from=dashboard-deps /app/node_modules node_modules
COPY runstream runstream
COPY base base
COPY schemas schemas
COPY artifacts artifacts
COPY eventlog eventlog
COPY sdk sdk
COPY ingest ingest
COPY projector projector
COPY store store
COPY api api
COPY mlflow_api mlflow_api
COPY lifecycle lifecycle
COPY webhooks webhooks
COPY server server
RUN pip install --no-cache-dir -c constraints.txt ".[server]" && rm -rf node_modules
ENTRYPOINT ["runstream"]
