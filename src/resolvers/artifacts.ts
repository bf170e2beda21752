import { builder } from '../builder.js';
import { ArtifactNode } from '../schema/artifact.js';
import { actor } from './ids.js';

builder.queryField('artifacts', (t) =>
  t.prismaConnection({
    type: 'Artifact',
    cursor: 'id',
    authScopes: { read: true },
    description: 'Metadata zips, newest first.',
    totalCount: (_parent, _args, ctx) => ctx.services.artifacts.count(),
    resolve: (query, _root, _args, ctx) => ctx.services.artifacts.list(query),
  }),
);

builder.mutationField('uploadArtifact', (t) =>
  t.field({
    type: ArtifactNode,
    description:
      'Uploads a metadata zip (package.xml at its root) with the GraphQL multipart request spec; use its id as params.artifactId of DEPLOY or VALIDATE.',
    authScopes: { submitTasks: true },
    args: { file: t.arg({ type: 'File', required: true }) },
    errors: { dataField: { name: 'artifact' } },
    resolve: async (_root, { file }, ctx) => ctx.services.artifacts.upload(actor(ctx), file.name, new Uint8Array(await file.arrayBuffer())),
  }),
);
