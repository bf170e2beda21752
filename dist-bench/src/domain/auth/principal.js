export const cliPrincipal = {
    kind: 'cli',
    userId: null,
    userName: 'cli',
    tokenId: null,
    tokenName: null,
    role: 'OWNER',
};
/** The label stored as Task.requestedBy and AuditEntry.actor. */
export function actorLabel(principal) {
    return principal.kind === 'cli' ? 'cli' : `${principal.userName}/${principal.tokenName ?? '?'}`;
}
