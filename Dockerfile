# Switchyard application image: API (`switchyard serve`) and workers (`switchyard worker`) share it.
# Build stage: install everything, generate the Prisma client, compile TypeScript.
FROM node:20.20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY prisma ./prisma
COPY prisma.config.ts tsconfig.json ./
COPY src ./src
# The child snapshot's script is bundled here (rolldown is a development dependency); the module bundles are
# built in the runtime stage, below, and each worker makes its child snapshot from the script when it starts.
RUN npx prisma generate && npx tsc -p tsconfig.json && node dist/scripts/build-child-snapshot.js && npm prune --omit=dev

# Runtime stage: only what runs, as an unprivileged user.
FROM node:20.20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/prisma/migrations ./prisma/migrations
COPY package.json ./
COPY bin ./bin
# The bundles of jsforce and node-vault that task children load are built here, in the stage that runs them:
# each records the size and modification time of every node_modules file it holds, and children use it only
# while they match.
RUN node dist/scripts/build-module-bundles.js
RUN mkdir -p /var/lib/switchyard/artifacts && chown -R node:node /var/lib/switchyard
USER node
ENV SWITCHYARD_ARTIFACT_DIR=/var/lib/switchyard/artifacts \
    HOST=0.0.0.0 \
    PORT=4000
EXPOSE 4000
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||4000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
ENTRYPOINT ["node", "bin/switchyard.js"]
CMD ["serve"]
