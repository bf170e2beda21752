import { builder } from '../builder.js';

export const ArtifactSourceEnum = builder.enumType('ArtifactSource', { values: ['UPLOAD', 'RETRIEVE'] as const });

export const ArtifactNode = builder.prismaNode('Artifact', {
  description: 'A metadata zip: uploaded for deployments, or produced by a RETRIEVE task.',
  id: { field: 'id' },
  authScopes: { read: true },
  fields: (t) => ({
    fileName: t.exposeString('fileName'),
    sizeBytes: t.exposeInt('sizeBytes'),
    sha256: t.exposeString('sha256'),
    source: t.expose('source', { type: ArtifactSourceEnum }),
    createdBy: t.exposeString('createdBy'),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    lastUsedAt: t.expose('lastUsedAt', {
      type: 'DateTime',
      description:
        'When it was created or last named by a submitted or retried task, a new schedule or a new webhook rule (to the hour). The workers delete it SWITCHYARD_ARTIFACT_RETENTION_DAYS after this unless an unfinished task, a schedule or a webhook rule names it.',
    }),
    downloadPath: t.string({
      description: 'GET it with the same Authorization header to download the zip.',
      resolve: (artifact) => `/artifacts/${artifact.id}`,
    }),
  }),
});
