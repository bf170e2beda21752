// Prisma CLI configuration, used by developers for `prisma generate` and `prisma migrate diff` (see
// docs/development.md). Everything runs offline through the JavaScript/Wasm engines and the pg adapter
// (../shared/STACK.md). The server applies migrations itself (src/db/migrate.ts), so nothing here runs in
// production.
import path from 'node:path';
import { defineConfig } from 'prisma/config';
import { PrismaPg } from '@prisma/adapter-pg';

// `prisma generate` reads the schema's `env("DATABASE_URL")` even though it never connects; the default
// keeps a fresh checkout's build working without any environment.
process.env.DATABASE_URL ??= 'postgresql://postgres@127.0.0.1:5432/switchyard';

export default defineConfig({
  experimental: { adapter: true },
  engine: 'js',
  schema: path.join('prisma', 'schema.prisma'),
  migrations: { path: path.join('prisma', 'migrations') },
  async adapter() {
    return new PrismaPg({
      connectionString: process.env.DATABASE_URL,
    });
  },
});
